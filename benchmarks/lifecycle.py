"""What the file lifecycle costs: round trips and time to create, replace, delete, vs a baseline.

For this tree and for a baseline revision (by default the main before
"References", checked out from git into a temporary directory), each in a
database of its own migrated by that revision, in a fresh process:

* creating a row with a 1 KiB upload, replacing its file, deleting one row:
  round trips counted at the protocol (every connection through a counting
  proxy, so large-object calls and implicit BEGINs count), median time;
* ``QuerySet.delete()`` of 1,000 rows with files in a table of 100,000
  rows (the filler rows name objects that do not exist): round trips, time.

The tests app's ``Document`` is the model (its file columns are indexed, as
``db_index=True`` makes them). Variants take turns, so load on the machine
hits them alike.

    python benchmarks/lifecycle.py [--baseline REV] [--repetitions 3] [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from reading_connection import checkout  # noqa: E402

DEFAULT_BASELINE = "d57ee32"  # main before References
SINGLE_OPERATIONS = 50  # timed creates, replaces and deletes per process
BULK = 1000  # rows deleted by one QuerySet.delete()


def measure(url: str, rows: int) -> dict[str, float]:
    """In this process (the child): migrate, fill the table, measure each operation."""
    import django
    from django.conf import settings

    from dev_database import settings_from_url
    from tests.protocol import CountingProxy

    database = settings_from_url(url)
    proxy = CountingProxy(database["HOST"], database["PORT"])
    settings.configure(
        DATABASES={
            "default": {
                **database,
                "HOST": "127.0.0.1",
                "PORT": str(proxy.port),
                "OPTIONS": {**database["OPTIONS"], "sslmode": "disable"},
                "CONN_MAX_AGE": None,
            }
        },
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "warehouse", "tests"],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
    from django.core.files.base import ContentFile
    from django.core.management import call_command
    from django.db import connection

    from tests.models import Document

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:  # by SQL: the field refuses names of missing objects
        cursor.execute(
            "INSERT INTO tests_document (title, file, attachment) "
            "SELECT 'filler', (3000000000 + n) || '.pdf', '' FROM generate_series(1, %s) AS n",
            [rows],
        )
        cursor.execute("ANALYZE tests_document")

    def upload() -> ContentFile:
        return ContentFile(os.urandom(1024), name="invoice.pdf")

    def timed(operation) -> tuple[int, float]:
        proxy.reset()
        started = time.perf_counter()
        operation()
        return proxy.round_trips, time.perf_counter() - started

    results: dict[str, list[tuple[int, float]]] = {"create": [], "replace": [], "delete": []}
    made: list[Document] = []
    for _ in range(5 + SINGLE_OPERATIONS):  # the first five warm caches and connections
        results["create"].append(timed(lambda: made.append(Document.objects.create(file=upload()))))
        document = made.pop()

        def replace(document=document) -> None:
            document.file = upload()
            document.save()

        results["replace"].append(timed(replace))
        results["delete"].append(timed(document.delete))
    for kind in results:
        del results[kind][:5]
    for _ in range(BULK):
        Document.objects.create(title="doomed", file=upload())
    bulk = timed(lambda: Document.objects.filter(title="doomed").delete())
    summary = {
        f"{kind} {what}": statistics.median(values[index] for values in measured)
        for kind, measured in results.items()
        for index, what in enumerate(("round trips", "seconds"))
    }
    summary[f"delete {BULK} rows round trips"], summary[f"delete {BULK} rows seconds"] = bulk
    return summary


def run_child(source: Path, url: str, rows: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", url, str(rows)],
        capture_output=True,
        text=True,
        # The revision's warehouse first; the tests app (models, migrations, proxy) from here.
        env={**os.environ, "PYTHONPATH": f"{source}:{REPO}"},
        cwd=source,
    )
    if result.returncode:
        raise RuntimeError(f"the measuring process failed:\n{result.stderr}")
    return json.loads(result.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision to compare with")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000, help="filler rows in the table")
    args = parser.parse_args()

    from dev_database import embedded_server_url

    url = os.environ.get("DATABASE_URL") or embedded_server_url(REPO / ".pgdata" / "bench")
    import psycopg2

    names = {"baseline": "warehouse_bench_lifecycle_baseline", "this": "warehouse_bench_lifecycle"}
    admin = psycopg2.connect(url)
    admin.autocommit = True
    try:
        with tempfile.TemporaryDirectory() as directory:
            sources = {"baseline": checkout(args.baseline, Path(directory)), "this": REPO}
            measured: dict[str, list[dict[str, float]]] = {variant: [] for variant in sources}
            for _ in range(args.repetitions):
                for variant, source in sources.items():
                    with admin.cursor() as cursor:
                        cursor.execute(f"DROP DATABASE IF EXISTS {names[variant]}")
                        cursor.execute(f"CREATE DATABASE {names[variant]}")
                    measured[variant].append(
                        run_child(source, _with_database(url, names[variant]), args.rows)
                    )
        report(measured, args)
    finally:
        with admin.cursor() as cursor:
            for name in names.values():
                cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


def _with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def report(measured: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    print(
        f"File lifecycle on a table of {args.rows} rows, 1 KiB files, {args.repetitions} "
        f"repetitions (baseline {args.baseline}); round trips counted at the protocol"
    )
    for key in measured["this"][0]:
        baseline = [run[key] for run in measured["baseline"]]
        this = [run[key] for run in measured["this"]]
        if key.endswith("round trips"):
            print(
                f"  {key:<32} {statistics.median(baseline):>8.0f} -> {statistics.median(this):.0f}"
            )
        else:
            ratios = [new / old for old, new in zip(baseline, this, strict=True)]
            before, after = statistics.median(baseline) * 1e3, statistics.median(this) * 1e3
            print(
                f"  {key:<32} {before:>8.2f} ms -> {after:.2f} ms = "
                f"{statistics.median(ratios):.2f}x the time "
                f"(per repetition: {', '.join(f'{ratio:.2f}' for ratio in ratios)})"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(measure(sys.argv[2], int(sys.argv[3]))))
    else:
        sys.path.insert(0, str(REPO))
        main()
