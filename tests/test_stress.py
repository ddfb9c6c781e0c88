"""Many threads create, read, replace, delete and copy files through plain get()/save()/delete().

Instances are kept and reused, so most saves and deletes go through one
loaded before another thread changed the row: what a busy site does. Once
they are done, no row may name a missing object (lost), no object may be
named by no row (leaked), and the cleanup's dry run must find nothing.

``make test`` runs a short variant; ``make stress`` the full one
(``WAREHOUSE_STRESS_THREADS=16 WAREHOUSE_STRESS_OPERATIONS=2000``), bounded
by ``WAREHOUSE_STRESS_SECONDS`` too.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import IntegrityError, connections, transaction

from tests.conftest import large_object_oids
from tests.models import Document
from warehouse.storage import oid_of

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = int(os.environ.get("WAREHOUSE_STRESS_THREADS", 4))
OPERATIONS = int(os.environ.get("WAREHOUSE_STRESS_OPERATIONS", 60))  # per thread
SECONDS = float(os.environ.get("WAREHOUSE_STRESS_SECONDS", 600))
ROWS = 12  # few rows, so that threads meet on them
# What a caller must expect when another thread got there first. IntegrityError:
# Django inserts a stale instance whose row was deleted anew, under its old primary
# key, and two threads doing so at once collide on it.
EXPECTED = (Document.DoesNotExist, FileNotFoundError, IntegrityError)


class Worker(threading.Thread):
    """One thread's share of the operations, in autocommit or each in atomic()."""

    def __init__(self, number: int, operations: int, deadline: float, *, atomic: bool) -> None:
        super().__init__(name=f"stress-{number}")
        self.random = random.Random(number)
        self.operations, self.deadline, self.atomic = operations, deadline, atomic
        self.loaded: list[Document] = []  # instances kept, to go stale
        self.done: Counter[str] = Counter()
        self.unexpected: list[BaseException] = []

    def run(self) -> None:
        try:
            for _ in range(self.operations):
                if time.monotonic() > self.deadline:
                    break
                operation = self.random.choice(
                    [self.create, self.read, self.replace, self.replace, self.delete, self.copy]
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

    def upload(self) -> ContentFile:
        return ContentFile(self.random.randbytes(64), name="upload.pdf")

    def create(self) -> None:
        Document.objects.create(file=self.upload())

    def read(self) -> None:
        document = self.instance()
        with document.file.open("rb") as file:
            file.read()

    def replace(self) -> None:
        document = self.instance()
        document.file = self.upload()
        document.save()

    def delete(self) -> None:
        document = self.instance()
        self.loaded = [each for each in self.loaded if each is not document]
        document.delete()

    def copy(self) -> None:
        copy = Document.objects.create(file=self.instance().file.name)
        copy.delete()


@pytest.mark.parametrize("atomic", [False, True], ids=["autocommit", "atomic"])
def test_concurrent_operations_through_stale_instances_lose_and_leak_nothing(atomic):
    for _ in range(ROWS):
        Document.objects.create(file=ContentFile(b"first", name="first.pdf"))
    deadline = time.monotonic() + SECONDS
    workers = [Worker(number, OPERATIONS, deadline, atomic=atomic) for number in range(THREADS)]
    began = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - began

    done = sum((worker.done for worker in workers), Counter())
    print(
        f"\n{THREADS} threads, {sum(done.values())} operations in {elapsed:.1f} s "
        f"({sum(done.values()) / elapsed:.0f} ops/s): {dict(done)}"
    )
    assert [repr(exc) for worker in workers for exc in worker.unexpected] == []
    # Had every operation met an expected error, nothing would have been tested.
    assert all(done[operation] for operation in ("create", "replace", "delete")), dict(done)
    named = {
        oid_of(name)
        for row in Document.objects.values_list("file", "attachment")
        for name in row
        if name
    }
    objects = large_object_oids()
    assert named - objects == set(), "lost: rows name objects that are gone"
    assert objects - named == set(), "leaked: objects no row names"
    out = StringIO()
    call_command("warehouse_cleanup", "--grace-hours", "0", stdout=out)
    assert "0 (0 bytes) orphaned" in out.getvalue()
