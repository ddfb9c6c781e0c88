"""What a save or a delete replaces is what the row holds, not what an instance once loaded.

Each test commits (``transaction=True``), as two requests of a site would:
one loads a row, the other changes it, then the first saves or deletes.
"""

import threading

import pytest
from django.core.files.base import ContentFile
from django.db import connections, transaction

from tests.conftest import large_object_oids
from tests.factories import DocumentFactory
from tests.models import Document
from warehouse.storage import db_file_storage, oid_of

pytestmark = pytest.mark.django_db(transaction=True)


def replace(document: Document, content: bytes = b"new") -> None:
    document.file = ContentFile(content, name="new.pdf")
    document.save()


def stale_and_fresh() -> tuple[Document, Document]:
    """Two instances of one row; the fresh one's file is then replaced and committed."""
    document = DocumentFactory()
    stale, fresh = Document.objects.get(pk=document.pk), Document.objects.get(pk=document.pk)
    replace(fresh, b"fresh")
    return stale, fresh


def oids_named_by_rows() -> set[int]:
    names = Document.objects.values_list("file", "attachment")
    return {oid_of(name) for row in names for name in row if name}


def test_a_stale_instance_saved_for_its_other_fields_keeps_the_rows_current_file():
    stale, fresh = stale_and_fresh()
    stale.title = "renamed"
    stale.save()
    assert Document.objects.get().file.name == fresh.file.name
    assert stale.file.name == fresh.file.name
    assert large_object_oids() == {oid_of(fresh.file.name)}


def test_a_stale_instance_replacing_its_file_unlinks_what_the_row_held():
    stale, _ = stale_and_fresh()
    replace(stale, b"stale")
    assert large_object_oids() == oids_named_by_rows() == {oid_of(stale.file.name)}


def test_a_stale_instance_clearing_its_file_unlinks_what_the_row_held():
    stale, _ = stale_and_fresh()
    stale.file = None
    stale.save()
    assert large_object_oids() == set()


def test_deleting_a_stale_instance_unlinks_what_the_row_held():
    stale, _ = stale_and_fresh()
    stale.delete()
    assert large_object_oids() == set()


def test_deleting_a_row_deleted_meanwhile_unlinks_nothing_more():
    stale, fresh = stale_and_fresh()
    other = DocumentFactory()
    fresh.delete()
    stale.delete()
    assert large_object_oids() == {oid_of(other.file.name)}


def test_a_refreshed_instance_replaces_the_file_the_row_holds_now():
    document = DocumentFactory()
    loaded = oid_of(document.file.name)
    now = db_file_storage.save("now.pdf", ContentFile(b"now"))
    Document.objects.filter(pk=document.pk).update(file=now)
    document.refresh_from_db()
    document.title = "renamed"
    document.save()
    assert oid_of(now) in large_object_oids()  # kept: the save did not change the file
    replace(document)
    assert oid_of(now) not in large_object_oids()
    assert loaded in large_object_oids()  # let go by update(), which has no lifecycle


def test_a_replace_that_waited_for_another_unlinks_what_that_one_wrote():
    """Two saves of one row at once: the second waits for the first's row lock."""
    document = DocumentFactory()
    first, second = Document.objects.get(pk=document.pk), Document.objects.get(pk=document.pk)
    first_saved, second_started = threading.Event(), threading.Event()
    errors = []

    def replace_and_hold() -> None:
        try:
            with transaction.atomic():
                replace(first, b"first")
                first_saved.set()
                # Commit only once the other save is waiting for the row.
                second_started.wait(timeout=30)
                _wait_until_a_session_waits_for_a_lock()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    other = threading.Thread(target=replace_and_hold)
    other.start()
    assert first_saved.wait(timeout=30)
    second_started.set()
    replace(second, b"second")
    other.join()
    assert errors == []
    assert Document.objects.get().file.name == second.file.name
    assert large_object_oids() == {oid_of(second.file.name)}


def _wait_until_a_session_waits_for_a_lock() -> None:
    with connections["default"].cursor() as cursor:
        for _ in range(3000):
            cursor.execute(
                "SELECT EXISTS (SELECT FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database())"
            )
            if cursor.fetchone()[0]:
                return
            threading.Event().wait(0.01)
    raise AssertionError("the other save never waited for the row lock")
