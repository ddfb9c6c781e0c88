"""A site whose test settings use SQLite migrates and runs its file-free tests, warned once."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def manage(*args: str) -> subprocess.CompletedProcess:
    """Run a command of the site in tests/on_sqlite, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DJANGO_SETTINGS_MODULE": "tests.on_sqlite.settings",
        },
    )


def test_its_tests_run_and_pass():
    result = manage("test", "tests.on_sqlite")
    assert result.returncode == 0, result.stderr
    assert "Ran 3 tests" in result.stderr
    assert result.stderr.rstrip().splitlines()[-2:] == [
        "OK",
        "Destroying test database for alias 'default'...",
    ]


def test_migrate_runs_and_says_files_cannot_be_kept_there():
    result = manage("migrate")
    assert result.returncode == 0, result.stderr
    assert "(warehouse.W003) WAREHOUSE_DB_FOR_READ and WAREHOUSE_DB_FOR_WRITE" in result.stderr
    assert "Applying warehouse.0001_initial... OK" in result.stdout
