"""The test project as tests run it: in subprocesses, never imported, on a database of its own."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg2
from django.db import connections

REPO = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(REPO / "testproject" / "manage.py")]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(name: str) -> str:
    """The test server, as a URL the test project understands, for database ``name``."""
    settings = connections["default"].settings_dict
    host, port = settings["HOST"], settings["PORT"]
    credentials = f"{quote(settings['USER'])}:{quote(settings['PASSWORD'])}"
    if host.startswith("/"):
        return f"postgresql://{credentials}@/{name}?host={quote(host)}&port={port or 5432}"
    return f"postgresql://{credentials}@{host}:{port or 5432}/{name}"


def project_env(**extra: str) -> dict[str, str]:
    """The environment of the test project: its own settings, no warnings on stderr."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **extra}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # pytest-django's: the project has its own
    return env


@contextmanager
def project_database(purpose: str) -> Iterator[dict[str, str]]:
    """A new, migrated database on the test server; yield the project's environment for it."""
    name = f"warehouse_{purpose}_{os.getpid()}"
    admin = psycopg2.connect(database_url("postgres"))
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
        env = project_env(DATABASE_URL=database_url(name))
        manage("migrate", "--no-input", env=env)
        yield env
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def manage(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    """Run a management command of the test project; fail with its stderr if it fails."""
    done = subprocess.run(
        [*MANAGE, *args], env=env, capture_output=True, text=True, timeout=120, cwd=REPO
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def wait_until_served(url: str, process: subprocess.Popen | None = None) -> None:
    """Wait for the login page of the project at ``url`` to answer."""
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/accounts/login/", timeout=1).close()
            return
        except OSError:
            assert process is None or process.poll() is None, "the test project exited"
            assert time.monotonic() < deadline, "the test project did not start"
            time.sleep(0.2)
