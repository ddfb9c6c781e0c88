"""What reading on the package's own connection costs: a 1 KiB read per request, against a baseline.

Each "request" is what a download view does: Django's request signals, one
ORM query on the caller's connection (the ownership check), then
``storage.open(name).read()`` of a 1 KiB file. It runs with
``CONN_MAX_AGE = 0`` (a new connection per request, Django's default) and
with persistent connections, for this tree and for a baseline revision (by
default the main before Transactions v2) checked out from git into a
temporary directory. Each measurement runs in a fresh process; the
variants take turns, so load on the machine hits them alike, and every
repetition gives a ratio of this tree against the baseline.

    python benchmarks/reading_connection.py [--baseline REV] [--repetitions 5] [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE = "34edefc"  # main before Transactions v2
CONTENT = os.urandom(1024)  # bytes: one small file
CONN_MAX_AGES = (0, 600)  # seconds: a connection per request, then persistent ones


def measure(url: str, name: str, conn_max_age: int, requests: int) -> dict[str, float]:
    """In this process (the child): time ``requests`` requests; return per-request seconds."""
    content = bytes.fromhex(os.environ["CONTENT_HEX"])  # what the parent stored
    import django
    from django.conf import settings

    from dev_database import settings_from_url

    settings.configure(
        DATABASES={"default": {**settings_from_url(url), "CONN_MAX_AGE": conn_max_age}},
        INSTALLED_APPS=["warehouse"],
        USE_TZ=True,
    )
    django.setup()
    from django.core.signals import request_finished, request_started
    from django.db import connection

    from warehouse.storage import db_file_storage

    def one_request() -> None:
        request_started.send(sender=None)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")  # the view's ownership check
        with db_file_storage.open(name) as file:
            assert file.read() == content
        request_finished.send(sender=None)

    for _ in range(20):  # warm: imports, caches, the first connection
        one_request()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        one_request()
        times.append(time.perf_counter() - started)
    return {"median": statistics.median(times), "mean": statistics.fmean(times)}


def checkout(revision: str, into: Path) -> Path:
    """The package as it was at ``revision``, from git, without touching the work tree."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", revision, "warehouse"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def run_child(source: Path, url: str, name: str, conn_max_age: int, requests: int) -> float:
    result = subprocess.run(
        [sys.executable, __file__, "--child", url, name, str(conn_max_age), str(requests)],
        check=True,
        capture_output=True,
        text=True,
        # The revision's warehouse first; dev_database (the URL's parsing) from here.
        env={**os.environ, "PYTHONPATH": f"{source}:{REPO}", "CONTENT_HEX": CONTENT.hex()},
        cwd=source,
    )
    return json.loads(result.stdout.splitlines()[-1])["median"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision to compare with")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per process")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from dev_database import embedded_server_url

    url = os.environ.get("DATABASE_URL") or embedded_server_url(REPO / ".pgdata" / "bench")
    import psycopg2

    with psycopg2.connect(url) as setup, setup.cursor() as cursor:
        cursor.execute("SELECT lo_from_bytea(0, %s)", [CONTENT])
        loid = cursor.fetchone()[0]
    try:
        with tempfile.TemporaryDirectory() as directory:
            variants = {
                f"baseline {args.baseline}": checkout(args.baseline, Path(directory)),
                "this tree": REPO,
            }
            report(variants, url, str(loid), args)
    finally:
        with psycopg2.connect(url) as setup, setup.cursor() as cursor:
            cursor.execute("SELECT lo_unlink(%s)", [loid])


def report(variants: dict[str, Path], url: str, name: str, args: argparse.Namespace) -> None:
    print(f"1 KiB read per request, {args.requests} requests per process, median per request")
    for conn_max_age in CONN_MAX_AGES:
        medians: dict[str, list[float]] = {variant: [] for variant in variants}
        for _ in range(args.repetitions):
            for variant, source in variants.items():
                medians[variant].append(run_child(source, url, name, conn_max_age, args.requests))
        print(f"\nCONN_MAX_AGE = {conn_max_age}")
        for variant, values in medians.items():
            print(
                f"  {variant:<20} {statistics.median(values) * 1e3:7.3f} ms "
                f"(min {min(values) * 1e3:.3f}, max {max(values) * 1e3:.3f})"
            )
        baseline, this = medians.values()
        ratios = [new / old for old, new in zip(baseline, this, strict=True)]
        print(
            f"  this tree / baseline: {statistics.median(ratios):.2f}x the time "
            f"(per repetition: {', '.join(f'{ratio:.2f}' for ratio in ratios)})"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        url, name, conn_max_age, requests = sys.argv[2:6]
        print(json.dumps(measure(url, name, int(conn_max_age), int(requests))))
    else:
        main()
