"""The benchmark scripts still run: a broken one would only be noticed when needed."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SERVERS = ("gunicorn", "uvicorn")

pytestmark = pytest.mark.skipif(
    "DATABASE_URL" in os.environ, reason="the benchmarks write to DATABASE_URL's database"
)


def run_benchmark(script: str, *args: str) -> str:
    """Run a benchmark with tiny sizes; return what it printed."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_memory_benchmark_round_trips_a_small_file():
    assert "read back identical" in run_benchmark("memory.py", "--size-mib", "2")


def test_the_reading_connection_benchmark_compares_with_a_baseline():
    printed = run_benchmark(
        "reading_connection.py", "--baseline", "HEAD", "--repetitions", "1", "--requests", "5"
    )
    assert printed.count("this tree / baseline:") == 2


@pytest.mark.skipif(
    not all(shutil.which(server, path=str(Path(sys.executable).parent)) for server in SERVERS),
    reason="gunicorn and uvicorn are not installed (pip install -e '.[bench]')",
)
def test_the_serving_benchmark_runs_both_servers():
    printed = run_benchmark(
        "serving.py",
        "--size-mib",
        "2",
        "--requests",
        "5",
        "--repetitions",
        "1",
        "--download-repetitions",
        "1",
    )
    assert "gunicorn: 2 MiB download" in printed
    assert "uvicorn: 2 MiB download" in printed
