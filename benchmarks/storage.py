"""Saving and reading whole files: warehouse, raw lobject, bytea, disk, django-db-file-storage.

    python benchmarks/storage.py [--sizes 1KiB,1MiB,64MiB,512MiB] [--repetitions 3]
        [--huge-gib 4] [--json benchmarks/results/storage.json] [--chart docs/storage.png]

One embedded PostgreSQL (or ``DATABASE_URL``). Every measurement runs in a
fresh process, so that its peak memory is its own; the repetitions are
interleaved (each one runs every system at every size before the next), and
every ratio compares two systems of the same repetition. Small files are
timed over many operations: 1 KiB over 200 files, 1 MiB over 20.

Systems: psycopg2's ``lobject`` at 256 KiB and 1 MiB chunks (the ceiling of
this design), ``DbFileStorage`` (``save()``, ``open()`` + ``read()``),
``DbFileIO`` (``open_large_object``), ``db_serve`` (reads only: GET through
gunicorn on 127.0.0.1, serving benchmarks/serving_site.py, of files the
storage saved), a ``bytea`` column, Django's ``FileSystemStorage`` and
django-db-file-storage (base64 in a text column).
A system that fails at a size (out of memory, over PostgreSQL's 1 GB field
limit) is shown as failed. Then one round trip of a ``--huge-gib`` file
through ``DbFileStorage``, which the column-based systems cannot store.

Files are read as a view or a copy reads them, chunk by chunk, except by the
column-based systems, which hold a file whole anyway. Client memory is the
growth of the process's peak RSS during the operation (for ``db_serve``, the
server's: the HTTP client only counts bytes); the backend's is the largest
RSS growth of any PostgreSQL process meanwhile (shared buffers it touched
included).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KIB, MIB = 1024, 1024**2
BLOCK = MIB  # bytes a generated file yields at a time
RAW = ("raw lobject 256 KiB", "raw lobject 1 MiB")
SERVED = "db_serve (gunicorn)"  # reads only: its files are saved by DbFileStorage
SYSTEMS = (
    *RAW,
    "DbFileStorage",
    "DbFileIO",
    SERVED,
    "bytea column",
    "FileSystemStorage",
    "django-db-file-storage",
)


def operations_for(size: int) -> int:
    """Files per measurement: enough that a small file's time is not the clock's."""
    return 200 if size <= 64 * KIB else 20 if size <= 4 * MIB else 1


def blocks(size: int) -> Iterator[bytes]:
    """The file's bytes, a block at a time: incompressible, never whole in memory."""
    for start in range(0, size, BLOCK):
        seed = hashlib.sha256(start.to_bytes(8, "big")).digest()
        block = hashlib.shake_256(seed).digest(min(BLOCK, size - start))
        yield block


# -- in the child process ---------------------------------------------------------------


def child(system: str, size: int, url: str, media: str) -> dict:
    """Save then read ``operations_for(size)`` files with ``system``; times and memory."""
    sys.path.insert(0, str(REPO))
    import django
    from django.conf import settings

    from dev_database import settings_from_url

    settings.configure(
        DATABASES={"default": settings_from_url(url)},
        INSTALLED_APPS=["warehouse"],
        USE_TZ=True,
        MEDIA_ROOT=media,
    )
    django.setup()
    from django.db import connection

    from warehouse.connections import kept_open

    connection.ensure_connection()
    _quiet_server_log(connection)
    with kept_open():  # as in a request: the package's connections stay open between files
        if system == SERVED:
            with _served(url) as (server, read):
                return _child_measured(system, size, read, _RssWatcher(server.processes))
        return _child_measured(system, size)


def _quiet_server_log(connection) -> None:
    """Keep a failed statement's text out of the server's log, where a superuser may.

    A ``bytea`` column failing at 512 MiB logs its statement with the file in
    hex: a gigabyte of log per repetition, 8 GiB once, on a disk that filled.
    """
    from django.db import DatabaseError

    with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
        cursor.execute("SET log_min_error_statement = panic")


def _child_measured(
    system: str, size: int, served: Callable | None = None, server: _RssWatcher | None = None
) -> dict:
    """Time ``system``'s saves, then its reads: ``served`` reads in place of its own."""
    save, read, clean = _system("DbFileStorage" if served else system)
    read = served or read
    count = operations_for(size)
    watcher = _RssWatcher(_postgres_processes)
    result: dict = {}
    try:
        handles, seconds, client, backend = _measured(
            lambda: [save(size) for _ in range(count)], watcher
        )
        if not served:  # the storage's saves, measured as DbFileStorage's
            result["save"] = {"seconds": seconds, "client_mib": client, "backend_mib": backend}
        for handle in handles:  # untimed: what a first read after a write pays (hint bits,
            read(handle, size)  # the backend's first touch of shared buffers) varies by system
        _, seconds, client, backend = _measured(
            lambda: [read(h, size) for h in handles], watcher, server
        )
        result["read"] = {"seconds": seconds, "client_mib": client, "backend_mib": backend}
        clean(handles)
    finally:
        watcher.stop()
        if server:
            server.stop()
    result["files"] = count
    return result


def _measured(
    run: Callable[[], list], watcher: _RssWatcher, server: _RssWatcher | None = None
) -> tuple[list, float, ...]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    watcher.reset()
    if server:
        server.reset()
    started = time.perf_counter()
    handles = run()
    seconds = time.perf_counter() - started
    client = (
        server.peak() / MIB
        if server
        else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / KIB  # KiB -> MiB
    )
    return handles, seconds, client, watcher.peak() / MIB


@contextlib.contextmanager
def _served(url: str) -> Iterator[tuple]:
    """gunicorn serving db_serve, and ``read(name, size)`` that GETs a file chunk by chunk."""
    import http.client

    sys.path.insert(0, str(REPO / "benchmarks"))
    from serving import Server

    from warehouse.io import READ_SIZE

    server = Server("gunicorn", url)

    def read(name: str, size: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
        connection.request("GET", f"/file/{name}")
        response, got = connection.getresponse(), 0
        assert response.status == 200, response.status
        while data := response.read(READ_SIZE):
            got += len(data)
        connection.close()
        assert got == size, (got, size)

    try:
        yield server, read
    finally:
        server.stop()


def _postgres_processes() -> Iterator:
    import psutil

    for process in psutil.process_iter(["name"]):
        if process.info["name"] and "postgres" in process.info["name"]:
            yield process


class _RssWatcher:
    """The largest RSS growth of any of ``processes()``, polled every 20 ms."""

    def __init__(self, processes: Callable[[], Iterator]) -> None:
        import psutil

        self._psutil = psutil
        self._processes = processes
        self._base: dict[int, int] = {}
        self._grown = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        self._base = {}
        for process in self._processes():
            with contextlib.suppress(self._psutil.Error):
                self._base[process.pid] = process.memory_info().rss
        self._grown = 0

    def peak(self) -> int:
        self._poll()
        return self._grown

    def _poll(self) -> None:
        for process in self._processes():
            with contextlib.suppress(self._psutil.Error):
                rss = process.memory_info().rss
                base = self._base.setdefault(process.pid, rss)
                self._grown = max(self._grown, rss - base)

    def _watch(self) -> None:
        while not self._done.wait(0.02):
            self._poll()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def _system(name: str) -> tuple[Callable, Callable, Callable]:
    """``save(size) -> handle``, ``read(handle, size)`` and ``clean(handles)`` of a system."""
    from django.core.files.base import ContentFile, File
    from django.db import connection

    from warehouse.io import PREPARING_FACTOR, READ_SIZE

    class Generated(File):
        def __init__(self, size: int) -> None:
            super().__init__(io.BytesIO(), name="file.bin")
            self._size = size

        def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
            return blocks(self._size)

        @property
        def size(self) -> int:  # type: ignore[override]
            return self._size

    def whole(size: int) -> bytes:
        return b"".join(blocks(size))

    def check(got: int, size: int) -> None:
        assert got == size, (got, size)

    if name in RAW:
        chunk = 256 * KIB if "256" in name else MIB
        raw = connection.connection

        def save(size: int) -> int:
            lobject = raw.lobject(0, "wb")
            for block in blocks(size):
                for start in range(0, len(block), chunk):
                    lobject.write(block[start : start + chunk])
            lobject.close()
            raw.commit()
            return lobject.oid

        primed = [False]

        def read(loid: int, size: int) -> None:
            # As warehouse.io.read_size_to_ask(): the backend's first read asks for four times
            # the chunk, or every read after it grows and trims the backend's heap again.
            lobject, got = raw.lobject(loid, "rb"), 0
            while data := lobject.read(chunk if primed[0] else PREPARING_FACTOR * chunk):
                primed[0] = True
                got += len(data)
            lobject.close()
            raw.commit()
            check(got, size)

        def clean(loids: list[int]) -> None:
            for loid in loids:
                raw.lobject(loid, "n").unlink()
            raw.commit()

        raw.autocommit = False
        return save, read, clean

    if name in ("DbFileStorage", "FileSystemStorage", "django-db-file-storage"):
        if name == "DbFileStorage":
            from warehouse.storage import db_file_storage as storage

            path = "file.bin"
        elif name == "FileSystemStorage":
            from django.core.files.storage import FileSystemStorage

            storage, path = FileSystemStorage(), "file.bin"
        else:
            from db_file_storage.storage import DatabaseFileStorage

            _bench_file_model()
            storage = DatabaseFileStorage()
            path = "warehouse.BenchFile/content/name/mimetype/file.bin"

        def save(size: int) -> str:
            # django-db-file-storage reads the file whole (read(), not chunks()).
            content = ContentFile(whole(size)) if "db-file" in name else Generated(size)
            return storage.save(path, content)

        def read(handle: str, size: int) -> None:
            if "db-file" in name:  # it holds the file whole in memory anyway
                with storage.open(handle) as file:
                    return check(len(file.read()), size)
            with storage.open(handle) as file:  # as a view or a copy reads: chunk by chunk
                check(sum(len(chunk) for chunk in file.chunks(READ_SIZE)), size)

        def clean(handles: list[str]) -> None:
            for handle in handles:
                storage.delete(handle)

        return save, read, clean

    if name == "DbFileIO":
        from warehouse.io import open_large_object

        def save(size: int) -> int:
            with open_large_object(0, "wb") as file:
                for block in blocks(size):
                    file.write(block)
                return file.raw.loid

        def read(loid: int, size: int) -> None:
            with open_large_object(loid, "rb", buffering=0) as file:
                check(sum(len(chunk) for chunk in iter(lambda: file.read(READ_SIZE), b"")), size)

        def clean(loids: list[int]) -> None:
            from warehouse.storage import db_file_storage

            for loid in loids:
                db_file_storage.delete(str(loid))

        return save, read, clean

    # A bytea column: what a site without large objects does.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_bytea (id serial PRIMARY KEY, data bytea)")

    def save(size: int) -> int:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_bytea (data) VALUES (%s) RETURNING id", [whole(size)])
            return cursor.fetchone()[0]

    def read(row: int, size: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT data FROM bench_bytea WHERE id = %s", [row])
            check(len(cursor.fetchone()[0]), size)

    def clean(rows: list[int]) -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM bench_bytea WHERE id = ANY(%s)", [rows])

    return save, read, clean


def _bench_file_model() -> None:
    """django-db-file-storage's model: content, name and type in one row (its README's)."""
    from django.db import connection, models

    class BenchFile(models.Model):
        content = models.TextField()
        name = models.CharField(max_length=255)
        mimetype = models.CharField(max_length=50)

        class Meta:
            app_label = "warehouse"
            db_table = "bench_db_file_storage"

        def __str__(self) -> str:
            return self.name

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_db_file_storage (id serial PRIMARY KEY, "
            "content text NOT NULL, name varchar(255) NOT NULL, mimetype varchar(50) NOT NULL)"
        )


# -- in the parent ----------------------------------------------------------------------


def measure(system: str, size: int, url: str, media: str) -> dict | None:
    """One measurement in a fresh process; None when the system failed at this size."""
    process = subprocess.run(
        [sys.executable, __file__, "--child", system, str(size), url, media],
        capture_output=True,
        text=True,
    )
    if process.returncode != 0:
        last = (process.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  {system} at {_size(size)} failed: {last[:160]}", file=sys.stderr)
        return None
    return json.loads(process.stdout.splitlines()[-1])


def _size(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"


def _parse_size(text: str) -> int:
    number, unit = text[:-3], text[-3:].lower()
    return int(number) * {"kib": KIB, "mib": MIB, "gib": 1024 * MIB}[unit]


def mib_s(result: dict, step: str, size: int) -> float:
    return size * result["files"] / MIB / result[step]["seconds"]


def summarize(runs: dict, sizes: list[int]) -> dict:
    """Per system, size and step: throughputs, ratios to raw (and to bytea), memory."""
    summary: dict = {}
    for size in sizes:
        for step in ("save", "read"):
            repetitions = runs[size]
            for system in SYSTEMS:
                speeds, to_raw, to_bytea, client, backend = [], [], [], [], []
                for repetition in repetitions:
                    result = repetition.get(system)
                    if result is None or step not in result:
                        continue
                    speed = mib_s(result, step, size)
                    raws = [mib_s(repetition[r], step, size) for r in RAW if repetition.get(r)]
                    speeds.append(speed)
                    if raws:
                        to_raw.append(speed / max(raws))
                    if repetition.get("bytea column"):
                        to_bytea.append(speed / mib_s(repetition["bytea column"], step, size))
                    client.append(result[step]["client_mib"])
                    backend.append(result[step]["backend_mib"])
                summary.setdefault(system, {}).setdefault(step, {})[size] = {
                    "mib_s": speeds,
                    "vs_raw": to_raw,
                    "vs_bytea": to_bytea,
                    "client_mib": max(client) if client else None,
                    "backend_mib": max(backend) if backend else None,
                }
    return summary


def table(summary: dict, sizes: list[int]) -> str:
    lines = []
    for step in ("save", "read"):
        lines.append(f"\n{step}: median MiB/s (min-max), x best raw lobject per repetition, "
                     "client / backend peak MiB")  # fmt: skip
        for size in sizes:
            lines.append(f"  {_size(size)}")
            for system in SYSTEMS:
                cell = summary[system][step][size]
                if system == SERVED and step == "save":
                    continue
                if not cell["mib_s"]:
                    lines.append(f"    {system:24} failed")
                    continue
                speeds = cell["mib_s"]
                line = (
                    f"    {system:24} {statistics.median(speeds):9.1f} "
                    f"({min(speeds):.1f}-{max(speeds):.1f})  "
                    f"{statistics.median(cell['vs_raw']):.2f}x raw "
                    f"[{', '.join(f'{r:.2f}' for r in cell['vs_raw'])}]"
                )
                if size <= 64 * KIB and cell["vs_bytea"]:
                    line += f"  {statistics.median(cell['vs_bytea']):.2f}x bytea"
                line += f"  {cell['client_mib']:.1f} / {cell['backend_mib']:.1f}"
                lines.append(line)
    return "\n".join(lines)


def chart(summary: dict, sizes: list[int], path: Path, machine: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, 2, figsize=(12, 13))
    rows = (
        ("throughput", "MiB/s (median)", lambda c: statistics.median(c["mib_s"])),
        ("client peak memory growth", "MiB", lambda c: max(c["client_mib"], 0.1)),
        ("PostgreSQL backend peak memory growth", "MiB", lambda c: max(c["backend_mib"], 0.1)),
    )
    for column, step in enumerate(("save", "read")):
        for system in SYSTEMS:
            cells = summary[system][step]
            points = [(s / MIB, cells[s]) for s in sizes if cells[s]["mib_s"]]
            if not points:
                continue
            for row, (_, _, value) in enumerate(rows):
                axes[row][column].plot([x for x, _ in points], [value(c) for _, c in points],
                                       marker="o", label=system)  # fmt: skip
        for row, (title, unit, _) in enumerate(rows):
            axes[row][column].set_title(f"{step}: {title}")
            axes[row][column].set_ylabel(unit)
            axes[row][column].set_xscale("log")
            axes[row][column].set_yscale("log")
            axes[row][column].set_xlabel("file size (MiB)")
            axes[row][column].grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.suptitle(f"python benchmarks/storage.py on {machine}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def machine() -> str:
    import platform

    cores = os.cpu_count()
    return f"{platform.node() or 'this machine'}, {cores} cores, Python {platform.python_version()}"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, system, size, url, media = sys.argv
        print(json.dumps(child(system, int(size), url, media)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1KiB,1MiB,64MiB,512MiB")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--huge-gib", type=int, default=4, help="0 to skip")
    results = REPO / "benchmarks" / "results"
    parser.add_argument("--json", type=Path, default=results / "storage.json")
    parser.add_argument("--chart", type=Path, default=REPO / "docs" / "storage.png")
    parser.add_argument("--from-json", type=Path, help="print and draw a saved run only")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        sizes = saved["sizes"]
        runs = {size: saved["runs"][str(size)] for size in sizes}
        report(summarize(runs, sizes), sizes, saved["huge"], saved["huge_gib"], args.chart,
               saved["machine"])  # fmt: skip
        return
    sizes = [_parse_size(text) for text in args.sizes.split(",")]
    sys.path.insert(0, str(REPO))
    from dev_database import embedded_server_url

    url = os.environ.get("DATABASE_URL") or embedded_server_url(REPO / ".pgdata" / "bench")
    sys.path.insert(0, str(REPO / "benchmarks"))
    import serving

    serving.configure(url)  # migrates the registry
    media = tempfile.mkdtemp(prefix="warehouse-bench-")
    try:
        runs: dict = {size: [] for size in sizes}
        for repetition in range(args.repetitions):
            for size in sizes:
                results = {}
                for system in SYSTEMS:
                    results[system] = measure(system, size, url, media)
                runs[size].append(results)
            print(f"repetition {repetition + 1} of {args.repetitions} done", file=sys.stderr)
        # Once, through DbFileStorage: what the column-based systems cannot store.
        huge = (
            measure("DbFileStorage", args.huge_gib * 1024 * MIB, url, media)
            if args.huge_gib
            else None
        )
    finally:
        shutil.rmtree(media, ignore_errors=True)
        _give_back_space(url)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    saved = {"machine": machine(), "sizes": sizes, "runs": runs}
    args.json.write_text(json.dumps({**saved, "huge": huge, "huge_gib": args.huge_gib}, indent=1))
    report(summarize(runs, sizes), sizes, huge, args.huge_gib, args.chart, machine())
    print(f"wrote {args.json}")


def _give_back_space(url: str) -> None:
    """VACUUM what the run deleted, so that the cluster does not keep a run's files each run.

    A run saves and deletes tens of GiB; autovacuum lets the space be reused
    but keeps it (``.pgdata/bench`` had grown to 34 GB, 70 GB once with its
    log). A VACUUM once the files are deleted cuts the empty pages off the
    tables' ends. A role that may not vacuum a table gets a warning, no more.
    """
    import psycopg2

    connection = psycopg2.connect(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for table in ("pg_largeobject", "pg_largeobject_metadata", "bench_bytea",
                          "bench_db_file_storage"):  # fmt: skip
                with contextlib.suppress(psycopg2.Error):  # a table this run did not make
                    cursor.execute(f"VACUUM {table}")
    finally:
        connection.close()


def report(
    summary: dict, sizes: list[int], huge: dict | None, gib: int, path: Path, made_on: str
) -> None:
    print(table(summary, sizes))
    if huge is not None:
        size = gib * 1024 * MIB
        print(f"\n{gib} GiB through DbFileStorage: save {mib_s(huge, 'save', size):.0f} "
              f"MiB/s, read {mib_s(huge, 'read', size):.0f} MiB/s, client peak +"
              f"{max(huge['save']['client_mib'], huge['read']['client_mib']):.1f} MiB")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    chart(summary, sizes, path, made_on)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
