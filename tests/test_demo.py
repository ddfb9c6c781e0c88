"""The test project (``make demo``), run as a person runs it: its commands, its signals, its stop.

It runs in subprocesses, never imported (it has settings of its own): on a
database of its own on the test server, or, where how it starts and stops
is the point, on an embedded server of its own, as ``make demo`` does.
"""

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.demo_project import (
    MANAGE,
    REPO,
    free_port,
    manage,
    project_database,
    project_env,
    wait_until_served,
)

# Run in the test project by `manage.py shell`: the README's copy of a row, then the
# original deleted; prints what the copy's file still holds.
COPY_THEN_DELETE_THE_ORIGINAL = """
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from invoices.models import Invoice

owner = User.objects.create(username="copier")
original = Invoice.objects.create(owner=owner, data=ContentFile(b"the bytes", name="a.pdf"))
copy = Invoice.objects.get(pk=original.pk)
copy.pk = None
copy.save()
Invoice.objects.get(pk=original.pk).delete()
with Invoice.objects.get(pk=copy.pk).data.open() as file:
    print(file.read().decode())
"""

CHANGE_THE_PASSWORD = """
from django.contrib.auth.models import User

user = User.objects.get(username="demo")
user.set_password("changed in the demo")
user.save()
"""

CHECK_THE_PASSWORD = """
from django.contrib.auth.models import User

print(User.objects.get(username="demo").check_password("changed in the demo"))
"""


def last_line(done: subprocess.CompletedProcess) -> str:
    """What a ``shell -c`` script printed last (Django 5.2+ first says what it imported)."""
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def env():
    with project_database("demo") as env:
        yield env


def test_deleting_an_invoice_keeps_the_file_a_copy_of_it_still_uses(env):
    done = manage("shell", "-c", COPY_THEN_DELETE_THE_ORIGINAL, env=env)
    assert last_line(done) == "the bytes"


def test_the_demo_users_keep_a_changed_password_when_the_demo_starts_again(env):
    manage("demo_user", env=env)
    manage("shell", "-c", CHANGE_THE_PASSWORD, env=env)
    manage("demo_user", env=env)
    assert last_line(manage("shell", "-c", CHECK_THE_PASSWORD, env=env)) == "True"


def test_a_busy_port_is_named_with_how_to_choose_another_before_any_login_hint(env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = manage("demo", "--port", str(port), env=env, check=False)
    assert done.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in done.stderr
    assert f"make demo PORT={port + 1}" in done.stderr
    assert "Log in at" not in done.stdout


# -- starting and stopping, on an embedded server as `make demo` uses --------------------


@pytest.fixture(scope="module")
def pgdata(tmp_path_factory) -> Path:
    """The demo's embedded data directory: initialised by the first start, kept across them."""
    return tmp_path_factory.mktemp("demo") / "pgdata"


def running(pgdata: Path) -> bool:
    """Whether a postmaster runs on the directory: it removes its pid file when it stops."""
    return (pgdata / "postmaster.pid").exists()


class Demo:
    """``make demo`` in a process group of its own, as a terminal runs it."""

    def __init__(self, pgdata: Path) -> None:
        self.port = free_port()
        env = project_env(DEMO_PGDATA=str(pgdata))
        env.pop("DATABASE_URL", None)
        self.process = subprocess.Popen(
            [*MANAGE, "demo", "--port", str(self.port)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            # As a terminal starts it: with Ctrl-C's default. A suite run in the background
            # of a shell without job control inherits SIGINT ignored, and so would the demo.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        wait_until_served(f"http://127.0.0.1:{self.port}", self.process)

    def signal_group(self, signum: int) -> None:
        """What Ctrl-C (SIGINT) or ``kill -TERM -<pgid>`` does: every process of the group."""
        os.killpg(self.process.pid, signum)
        self.process.wait(timeout=60)

    def kill(self) -> None:
        """A crash: the Python process dies at once, running nothing at exit."""
        self.process.kill()
        self.process.wait(timeout=60)


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(lambda demo: demo.signal_group(signal.SIGINT), id="Ctrl-C"),
        pytest.param(lambda demo: demo.signal_group(signal.SIGTERM), id="SIGTERM to the group"),
    ],
)
def test_stopping_the_demo_stops_its_database_and_it_starts_again(pgdata, stop):
    stop(Demo(pgdata))
    assert not running(pgdata)
    again = Demo(pgdata)
    again.signal_group(signal.SIGINT)
    assert not running(pgdata)


def test_after_a_crash_the_demo_starts_again_and_then_stops_its_database(pgdata):
    Demo(pgdata).kill()
    again = Demo(pgdata)
    again.signal_group(signal.SIGTERM)
    assert not running(pgdata)
