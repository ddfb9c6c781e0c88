"""A hot standby of the test server: a second PostgreSQL that replays it by streaming.

What a site points ``WAREHOUSE_DB_FOR_READ`` at: a physical replica. It is
made as one is made in production, with ``pg_basebackup -R`` from the server
the tests run on (the embedded one, or ``DATABASE_URL``'s when it runs on
this machine), with that server's own binaries so that the copy is in their
format, and started in a temporary directory on a free port of 127.0.0.1.
Taken once the test database exists, the copy holds it under the same name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from warehouse import connections as own_connections

# Enough for a base backup of a test cluster on a busy machine; only a broken setup waits it out.
START_SECONDS = 120  # seconds
# How long replay may take to reach the primary's position before a test fails.
CATCH_UP_SECONDS = 60  # seconds


def why_no_standby(primary: BaseDatabaseWrapper) -> str | None:
    """Why a standby of ``primary``'s server cannot be made here, or None when it can."""
    with primary.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            return "a base backup, and pausing replay, need a superuser"
    bindir, data_directory = _server_paths(primary)
    if not all((bindir / program).is_file() for program in ("pg_basebackup", "pg_ctl")):
        return f"the server's binaries are not on this machine ({bindir})"
    if not data_directory.is_dir():
        return f"the server's data directory is not on this machine ({data_directory})"
    if os.geteuid() == 0 and data_directory.stat().st_uid == 0:
        return "PostgreSQL does not run as root, and the server's data belongs to root"
    return None


@contextlib.contextmanager
def running_standby(primary: BaseDatabaseWrapper) -> Iterator[Standby]:
    """A hot standby of ``primary``'s server while the block runs; stopped and removed after."""
    standby = Standby(primary)
    try:
        standby.start()
        yield standby
    finally:
        standby.stop()


@contextlib.contextmanager
def database_alias(alias: str, settings_dict: dict[str, Any]) -> Iterator[None]:
    """``alias`` in Django's connections while the block runs, as if ``DATABASES`` named it.

    A test mirror of "default" to the test machinery: never created nor
    flushed, which a read-only standby holding the test database needs.
    """
    test = {**settings_dict["TEST"], "MIRROR": "default"}
    connections.settings[alias] = {**settings_dict, "TEST": test}
    try:
        yield
    finally:
        connections[alias].close()
        own_connections.close_all()
        del connections[alias]
        del connections.settings[alias]


class Standby:
    """A hot standby streaming from the server of a Django connection."""

    def __init__(self, primary: BaseDatabaseWrapper) -> None:
        self._bindir, data_directory = _server_paths(primary)
        self._configuration = _configuration_files(primary)
        # PostgreSQL refuses to run as root: as root, run it as the primary's owner does.
        self._user = data_directory.stat().st_uid if os.geteuid() == 0 else None
        self._primary = dict(primary.settings_dict)
        self.data_dir = Path(tempfile.mkdtemp(prefix="warehouse-standby-"))
        if self._user is not None:
            os.chown(self.data_dir, self._user, -1)
        self.port = _free_port()

    @property
    def settings_dict(self) -> dict[str, Any]:
        """The primary's settings (its test database's name too), at the standby's address."""
        return {**self._primary, "HOST": "127.0.0.1", "PORT": str(self.port)}

    def start(self) -> None:
        """Copy the primary with ``pg_basebackup -R`` and start the copy as a hot standby."""
        primary = self._primary
        address = [("-h", primary["HOST"]), ("-p", primary["PORT"]), ("-U", primary["USER"])]
        # A fast checkpoint, or the backup waits for a spread one (minutes); no fsync
        # for a copy thrown away after the tests.
        self._run(
            "pg_basebackup",
            "-D",
            self.data_dir,
            "-R",
            "--checkpoint=fast",
            "--no-sync",
            "--no-password",
            *[part for option, value in address if value for part in (option, value)],
        )
        self._complete_configuration()
        self._run(
            "pg_ctl",
            "start",
            "-D",
            self.data_dir,
            "-l",
            self.data_dir / "standby.log",
            "-w",
            "-t",
            START_SECONDS,
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c hot_standby=on -c cluster_name=warehouse-standby",
        )

    def _complete_configuration(self) -> None:
        """Give the copy the configuration files that live outside a data directory.

        Debian keeps a cluster's in ``/etc/postgresql/<version>/<cluster>``, which
        ``pg_basebackup`` does not copy. The access rules are the primary's; the
        server settings are the defaults and those on the command line (the
        primary's own name its data directory and port, which are not the copy's).
        """
        for name, source in self._configuration.items():
            target = self.data_dir / name
            if target.exists():
                continue
            target.write_text(source.read_text() if source else "")
            if self._user is not None:
                os.chown(target, self._user, -1)

    def stop(self) -> None:
        """Stop the standby at once and remove its data: it is thrown away."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                try:
                    self._run("pg_ctl", "stop", "-D", self.data_dir, "-m", "immediate", "-w")
                except (RuntimeError, subprocess.TimeoutExpired):
                    _kill_postmaster(self.data_dir)
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def catch_up(self, primary: str = "default", standby: str = "standby") -> None:
        """Wait until the standby has replayed everything the primary committed so far."""
        with connections[primary].cursor() as cursor:
            # Commits are flushed before they return: the flushed position covers them all.
            cursor.execute("SELECT pg_current_wal_flush_lsn()")
            (position,) = cursor.fetchone()
        deadline = time.monotonic() + CATCH_UP_SECONDS
        with connections[standby].cursor() as cursor:
            while True:
                cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [position])
                if cursor.fetchone()[0]:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"the standby did not replay up to {position}")
                time.sleep(0.01)

    @contextlib.contextmanager
    def replay_paused(self, standby: str = "standby") -> Iterator[None]:
        """Within the block the standby receives the primary's changes but applies none.

        Pausing takes effect before the next record: nothing the primary
        commits in the block is seen on the standby until it ends.
        """
        with connections[standby].cursor() as cursor:
            cursor.execute("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            with connections[standby].cursor() as cursor:
                cursor.execute("SELECT pg_wal_replay_resume()")

    def _run(self, program: str, *args: object) -> None:
        env = dict(os.environ)
        if self._primary["PASSWORD"]:
            env["PGPASSWORD"] = self._primary["PASSWORD"]
        try:
            subprocess.run(
                [str(self._bindir / program), *map(str, args)],
                check=True,
                capture_output=True,
                text=True,
                env=env,
                user=self._user,
                timeout=START_SECONDS,
            )
        except subprocess.CalledProcessError as exc:
            log = self.data_dir / "standby.log"
            raise RuntimeError(
                f"{program} failed: {exc.stderr.strip()}"
                + (f"\n{log.read_text()}" if log.exists() else "")
            ) from exc


def _server_paths(primary: BaseDatabaseWrapper) -> tuple[Path, Path]:
    """The directory of the server's binaries, and its data directory (superusers may ask)."""
    with primary.cursor() as cursor:
        cursor.execute("SELECT setting FROM pg_config WHERE name = 'BINDIR'")
        (bindir,) = cursor.fetchone()
        cursor.execute("SHOW data_directory")
        (data_directory,) = cursor.fetchone()
    return Path(bindir), Path(data_directory)


def _configuration_files(primary: BaseDatabaseWrapper) -> dict[str, Path | None]:
    """The primary's access rules, and no server settings (see ``_complete_configuration``)."""
    with primary.cursor() as cursor:
        cursor.execute("SELECT current_setting('hba_file'), current_setting('ident_file')")
        hba, ident = cursor.fetchone()
    return {"postgresql.conf": None, "pg_hba.conf": Path(hba), "pg_ident.conf": Path(ident)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _kill_postmaster(data_dir: Path) -> None:
    """Kill the standby's postmaster, by the pid it wrote, when ``pg_ctl stop`` could not."""
    with contextlib.suppress(OSError, ValueError):
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)
