"""The benchmark scripts still run: a broken one would only be noticed when needed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


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
