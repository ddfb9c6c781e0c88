"""The database of development: DATABASE_URL, or an embedded server its last user stops."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dev_database import settings_from_url

REPO = Path(__file__).resolve().parent.parent

# Joins the embedded server of the directory it is given, says so, and exits when
# its standard input closes.
USER = """
import sys
from dev_database import embedded_server_url
print(embedded_server_url(sys.argv[1]), flush=True)
sys.stdin.read()
"""


def test_a_socket_directory_in_the_query_is_the_host():
    settings = settings_from_url("postgresql://postgres:@/postgres?host=/tmp/pg")
    assert (settings["HOST"], settings["NAME"], settings["OPTIONS"]) == ("/tmp/pg", "postgres", {})


def test_a_network_url_keeps_its_host_and_options():
    settings = settings_from_url("postgresql://ann:s%40cret@db.local:5433/files?sslmode=require")
    assert (settings["HOST"], settings["PASSWORD"], settings["OPTIONS"]) == (
        "db.local",
        "s@cret",
        {"sslmode": "require"},
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A data directory of its own: initialised once, by the first user."""
    return tmp_path_factory.mktemp("embedded") / "data"


class User:
    """A process using the embedded server, as a test run or the demo does."""

    def __init__(self, data_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", USER, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"},
        )
        self.url = self.process.stdout.readline()
        assert self.url.startswith("postgresql://"), "the user did not get the server"

    def exit(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0
        self.process.stdout.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=60)
        self.process.stdin.close()
        self.process.stdout.close()


def running(data_dir: Path) -> bool:
    """Whether a postmaster runs on the directory: it removes its pid file when it stops."""
    return (data_dir / "postmaster.pid").exists()


def test_the_last_user_to_exit_stops_the_server(data_dir):
    first, second = User(data_dir), User(data_dir)
    first.exit()
    assert running(data_dir)
    second.exit()
    assert not running(data_dir)


def test_a_user_killed_without_exiting_does_not_keep_the_server_running(data_dir):
    killed, last = User(data_dir), User(data_dir)
    killed.kill()
    assert running(data_dir)
    last.exit()
    assert not running(data_dir)


def test_a_user_joining_after_a_stop_starts_the_server_again(data_dir):
    User(data_dir).exit()
    again = User(data_dir)
    assert running(data_dir)
    again.exit()


def test_an_empty_list_of_users_left_by_a_killed_process_does_not_stop_a_start(data_dir):
    # What the library's pid list is after a process was killed half-way through writing it.
    (data_dir / ".handle_pids.json").write_text("")
    user = User(data_dir)
    assert running(data_dir)
    user.exit()
    assert not running(data_dir)
