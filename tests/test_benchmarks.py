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
        timeout=900,  # a fresh process per measurement, a server for db_serve's
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def installed(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(module) for module in modules)


@pytest.mark.skipif(
    not installed("matplotlib", "db_file_storage", "gunicorn"),
    reason="matplotlib, django-db-file-storage or gunicorn is not installed "
    "(pip install -e '.[bench]')",
)
def test_the_storage_benchmark_measures_every_system_and_draws_its_chart(tmp_path):
    printed = run_benchmark(
        "storage.py",
        "--sizes",
        "1KiB,1MiB",
        "--repetitions",
        "1",
        "--huge-gib",
        "0",
        "--json",
        str(tmp_path / "storage.json"),
        "--chart",
        str(tmp_path / "storage.png"),
    )
    assert "failed" not in printed
    assert printed.count("django-db-file-storage") == 4  # two sizes, save and read
    assert printed.count("db_serve (gunicorn)") == 2  # two sizes, read only
    assert (tmp_path / "storage.png").stat().st_size > 0


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
    assert printed.count("x a bare relay") == 2


@pytest.mark.skipif(
    not shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or not shutil.which("curl"),
    reason="gunicorn or curl is not installed (pip install -e '.[bench]')",
)
def test_the_upload_benchmark_compares_both_handlers():
    printed = run_benchmark("uploads.py", "--size-mib", "2", "--repetitions", "1")
    assert "temporary disk 0 bytes" in printed
