"""Many threads create, read, replace, delete, copy and download files at once.

Each thread has its own database connection and works through plain
get()/save()/delete(), and downloads through ``db_serve`` behind a real HTTP
server on 127.0.0.1. Instances are kept and reused, so most saves and deletes
go through one loaded before another thread changed the row: what a busy site
does. Once they are done, nothing may be lost (a row naming a missing object,
or bytes other than those written), nothing leaked (an object no row names),
no request may have got a 500, and ``warehouse_verify`` and the cleanup's dry
run must find nothing.

``make test`` runs a short variant; ``make stress`` the full one
(``WAREHOUSE_STRESS_THREADS=16 WAREHOUSE_STRESS_OPERATIONS=2000``), bounded
by ``WAREHOUSE_STRESS_SECONDS`` too, and writes its figures as JSON to
``WAREHOUSE_STRESS_REPORT`` (the README's "Load and versions" comes from them).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import date
from io import StringIO
from pathlib import Path

import django
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, connections, transaction

from tests.conftest import large_object_content, large_object_oids
from tests.models import Document
from warehouse.models import StoredFile
from warehouse.storage import oid_of

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = int(os.environ.get("WAREHOUSE_STRESS_THREADS", 4))
OPERATIONS = int(os.environ.get("WAREHOUSE_STRESS_OPERATIONS", 60))  # per thread
SECONDS = float(os.environ.get("WAREHOUSE_STRESS_SECONDS", 600))
REPORT = os.environ.get("WAREHOUSE_STRESS_REPORT")  # a path for the JSON figures; none: no report
ROWS = 12  # few rows, so that threads meet on them
# Mostly small files; some longer than one read of a download (streams.STREAM_CHUNK_SIZE).
SIZES = [64] * 12 + [8 * 1024] * 6 + [300 * 1024] * 2  # bytes
# What a caller must expect when another thread got there first. IntegrityError:
# Django inserts a stale instance whose row was deleted anew, under its old primary
# key, and two threads doing so at once collide on it.
EXPECTED = (Document.DoesNotExist, FileNotFoundError, IntegrityError)
NOT_FOUND = 404  # a download of a name another thread deleted meanwhile


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class Worker(threading.Thread):
    """One thread's share of the operations, in autocommit or each in atomic()."""

    def __init__(
        self, number: int, operations: int, deadline: float, *, atomic: bool, server: str
    ) -> None:
        super().__init__(name=f"stress-{number}")
        self.random = random.Random(number)
        self.operations, self.deadline, self.atomic = operations, deadline, atomic
        self.server = server
        self.loaded: list[Document] = []  # instances kept, to go stale
        self.done: Counter[str] = Counter()
        self.unexpected: list[BaseException] = []
        self.written: dict[str, str] = {}  # name -> SHA-256 of the bytes saved under it
        # (name, SHA-256) of every read and download: compared with `written` once all
        # threads are done, since another thread may not have noted its save yet.
        self.seen: list[tuple[str, str]] = []
        self.statuses: Counter[int] = Counter()  # of the downloads

    def run(self) -> None:
        try:
            for _ in range(self.operations):
                if time.monotonic() > self.deadline:
                    break
                operation = self.random.choice(
                    [
                        self.create,
                        self.read,
                        self.replace,
                        self.replace,
                        self.delete,
                        self.copy,
                        self.serve,
                    ]
                )
                try:
                    if self.atomic:
                        with transaction.atomic():
                            operation()
                    else:
                        operation()
                    self.done[operation.__name__] += 1
                except EXPECTED:
                    self.done["expected errors"] += 1
                except BaseException as exc:
                    self.unexpected.append(exc)
        finally:
            connections.close_all()

    def instance(self) -> Document:
        """A kept instance, maybe stale by now, or one loaded afresh."""
        if self.loaded and self.random.random() < 0.6:
            return self.random.choice(self.loaded)
        pks = list(Document.objects.values_list("pk", flat=True)[:ROWS])
        if not pks:
            raise Document.DoesNotExist
        document = Document.objects.get(pk=self.random.choice(pks))
        self.loaded = [*self.loaded[-5:], document]
        return document

    def upload(self) -> tuple[ContentFile, str]:
        """New bytes to save, and their SHA-256."""
        content = self.random.randbytes(self.random.choice(SIZES))
        return ContentFile(content, name="upload.pdf"), sha256(content)

    def create(self) -> None:
        upload, digest = self.upload()
        self.written[Document.objects.create(file=upload).file.name] = digest

    def read(self) -> None:
        document = self.instance()
        with document.file.open("rb") as file:
            self.seen.append((document.file.name, sha256(file.read())))

    def replace(self) -> None:
        document = self.instance()
        document.file, digest = self.upload()
        document.save()
        self.written[document.file.name] = digest

    def delete(self) -> None:
        document = self.instance()
        self.loaded = [each for each in self.loaded if each is not document]
        document.delete()

    def copy(self) -> None:
        copy = Document.objects.create(file=self.instance().file.name)
        copy.delete()

    def serve(self) -> None:
        """Download a file through the HTTP server, as a browser would."""
        name = self.instance().file.name
        try:
            with urllib.request.urlopen(f"{self.server}/serve/{name}", timeout=60) as response:
                content = response.read()
                self.statuses[response.status] += 1
        except urllib.error.HTTPError as error:
            error.close()
            self.statuses[error.code] += 1
            if error.code != NOT_FOUND:
                raise
            raise FileNotFoundError(name) from None
        self.seen.append((name, sha256(content)))


def survivors() -> set[str]:
    """The distinct names the rows hold now."""
    return {
        name for row in Document.objects.values_list("file", "attachment") for name in row if name
    }


def lost_names(names: set[str], written: dict[str, str], objects: set[int]) -> list[str]:
    """The names whose object is gone, or holds other bytes than saved, or than registered.

    The bytes are read by the server's own ``lo_get``, not by the code under test.
    """
    registered = dict(
        StoredFile.objects.filter(oid__in=[oid_of(name) for name in names]).values_list(
            "oid", "sha256"
        )
    )
    return sorted(
        name
        for name in names
        if oid_of(name) not in objects
        or written.get(name) != registered.get(oid_of(name))
        or written.get(name) != sha256(large_object_content(oid_of(name)))
    )


def server_version() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def exit_status(command: str, *args: str) -> tuple[int, str]:
    """Run a management command; return its exit status and what it printed."""
    out = StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture(scope="module")
def report():
    """Figures of each variant, written to ``WAREHOUSE_STRESS_REPORT`` once all have run."""
    figures: dict[str, dict] = {}
    yield figures
    if REPORT and figures:
        Path(REPORT).parent.mkdir(parents=True, exist_ok=True)
        machine = {"date": date.today().isoformat(), "cores": os.cpu_count()}
        Path(REPORT).write_text(json.dumps({**machine, "runs": figures}, indent=1) + "\n")


@pytest.mark.parametrize("atomic", [False, True], ids=["autocommit", "atomic"])
def test_concurrent_operations_through_stale_instances_lose_and_leak_nothing(
    atomic, live_server, report
):
    written: dict[str, str] = {}  # name -> SHA-256 of the bytes saved under it
    for _ in range(ROWS):
        upload = ContentFile(b"first", name="first.pdf")
        written[Document.objects.create(file=upload).file.name] = sha256(b"first")
    deadline = time.monotonic() + SECONDS
    workers = [
        Worker(number, OPERATIONS, deadline, atomic=atomic, server=live_server.url)
        for number in range(THREADS)
    ]
    began = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - began

    done = sum((worker.done for worker in workers), Counter())
    statuses = sum((worker.statuses for worker in workers), Counter())
    for worker in workers:
        written.update(worker.written)
    seen = [pair for worker in workers for pair in worker.seen]
    names = survivors()
    objects = large_object_oids()
    named = {oid_of(name) for name in names}
    lost = lost_names(names, written, objects)
    operations = sum(done.values())
    figures = {
        "threads": THREADS,
        "operations": operations,
        "seconds": round(elapsed, 1),
        "operations per second": round(operations / elapsed),
        "done": dict(done),
        "downloads": dict(statuses),
        "HTTP 500": statuses[500],
        "lost": len(lost),
        "leaked": len(objects - named),
        "PostgreSQL": server_version(),
        "Django": django.get_version(),
        "Python": platform.python_version(),
    }
    report["atomic" if atomic else "autocommit"] = figures
    print(f"\n{json.dumps(figures)}")

    assert statuses[500] == 0
    assert set(statuses) <= {200, NOT_FOUND}, dict(statuses)
    assert [repr(exc) for worker in workers for exc in worker.unexpected] == []
    # Had every operation met an expected error, nothing would have been tested.
    assert all(done[op] for op in ("create", "replace", "delete", "serve")), dict(done)
    assert [pair for pair in seen if written.get(pair[0]) != pair[1]] == [], "read other bytes"
    assert lost == []
    assert objects - named == set(), "leaked: objects no row names"
    assert len(objects) == len(names), "two names for one object"
    status, out = exit_status("warehouse_verify", "--grace-hours", "0")
    assert status == 0, out
    status, out = exit_status("warehouse_cleanup", "--grace-hours", "0")
    assert status == 0, out
    assert "0 (0 bytes) orphaned" in out
