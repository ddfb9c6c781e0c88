"""The benchmark scripts still run: a broken one would only be noticed when needed."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SERVERS = ("gunicorn", "uvicorn")


@pytest.mark.skipif("DATABASE_URL" in os.environ, reason="it would migrate DATABASE_URL's database")
def test_the_memory_benchmark_round_trips_a_small_file():
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "memory.py"), "--size-mib", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    assert "read back identical" in result.stdout


@pytest.mark.skipif(
    "DATABASE_URL" in os.environ, reason="it would write to DATABASE_URL's database"
)
def test_the_reading_connection_benchmark_compares_with_a_baseline():
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "reading_connection.py"),
            "--baseline",
            "HEAD",
            "--repetitions",
            "1",
            "--requests",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("this tree / baseline:") == 2


@pytest.mark.skipif("DATABASE_URL" in os.environ, reason="it writes to DATABASE_URL's database")
@pytest.mark.skipif(
    not all(shutil.which(server, path=str(Path(sys.executable).parent)) for server in SERVERS),
    reason="gunicorn and uvicorn are not installed (pip install -e '.[bench]')",
)
def test_the_serving_benchmark_runs_both_servers():
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "serving.py"),
            "--size-mib",
            "2",
            "--requests",
            "5",
            "--repetitions",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    assert "gunicorn: 2 MiB download" in result.stdout
    assert "uvicorn: 2 MiB download" in result.stdout
