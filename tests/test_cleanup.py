"""warehouse_cleanup finds what nothing references, and unlinks it only when told to."""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from tests.conftest import (
    LEGACY,
    large_object_oids,
    open_transaction_in_another_thread,
    role_that_may_not_read,
)
from tests.factories import DocumentFactory
from tests.models import Document, LegacyBlob
from warehouse.management.commands.warehouse_cleanup import Command
from warehouse.models import StoredFile
from warehouse.storage import db_file_storage, oid_of

pytestmark = pytest.mark.django_db


class UnlinkingWhileSurveying(Command):
    """The cleanup, with another process unlinking an object just after the catalog listed it."""

    def __init__(self, victim: int) -> None:
        super().__init__()
        self.victim = victim

    def large_objects(self, using):
        listed = super().large_objects(using)
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT lo_unlink(%s)", [self.victim])
        return listed


def cleanup(*args: str, command: Command | str = "warehouse_cleanup") -> tuple[int, str, str]:
    """Run the command; return its exit status and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except CommandError as error:
        err.write(f"CommandError: {error}\n")  # as manage.py would print it
        return error.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def orphan(content: bytes = b"orphan") -> int:
    """A registered object no row points at, as a deleted row's file would be."""
    return oid_of(db_file_storage.save("orphan.pdf", ContentFile(content)))


def test_a_dry_run_deletes_nothing_and_exits_1():
    loid = orphan()
    status, out, _ = cleanup("--grace-hours", "0")
    assert status == 1
    assert "would delete 1" in out
    assert loid in large_object_oids()


def test_a_dry_run_counts_objects_and_bytes():
    orphan(b"123456")
    DocumentFactory()
    _, out, _ = cleanup("--grace-hours", "0")
    assert "1 (6 bytes) orphaned" in out
    assert "1 (" in out.split("referenced")[0]


def test_nothing_to_do_exits_0():
    DocumentFactory()
    status, out, _ = cleanup("--grace-hours", "0")
    assert status == 0
    assert "0 (0 bytes) orphaned" in out


def test_delete_unlinks_orphans_and_their_registry_rows():
    loid = orphan()
    status, out, _ = cleanup("--delete", "--grace-hours", "0")
    assert status == 0
    assert "deleted 1 objects, 0 failed" in out
    assert loid not in large_object_oids()
    assert not StoredFile.objects.filter(oid=loid).exists()


def test_delete_keeps_every_referenced_object():
    document = DocumentFactory()
    cleanup("--delete", "--grace-hours", "0")
    assert oid_of(document.file.name) in large_object_oids()


def test_delete_keeps_an_object_named_in_an_oid_column():
    loid = orphan()
    LegacyBlob.objects.create(loid=loid)
    cleanup("--delete", "--grace-hours", "0")
    assert loid in large_object_oids()


def test_delete_keeps_orphans_within_the_grace_period():
    loid = orphan()
    _, out, _ = cleanup("--delete")
    assert "1 (6 bytes) unreferenced within the grace period" in out
    assert loid in large_object_oids()


def test_unregistered_orphans_are_reported_but_kept_by_default(make_object):
    loid = make_object(b"made by DbFileIO")
    _, out, _ = cleanup("--delete", "--grace-hours", "0")
    assert "1 (16 bytes) unreferenced and unregistered" in out
    assert loid in large_object_oids()


def test_unregistered_orphans_go_when_included(make_object):
    loid = make_object(b"made by DbFileIO")
    cleanup("--delete", "--grace-hours", "0", "--include-unregistered")
    assert loid not in large_object_oids()


def test_delete_removes_registry_rows_whose_object_is_gone():
    loid = orphan()
    LegacyBlob.objects.create(loid=loid)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT lo_unlink(%s)", [loid])
    _, out, _ = cleanup("--delete", "--grace-hours", "0")
    assert "1 registry rows without object" in out


def test_delete_shows_progress_per_batch():
    for _ in range(3):
        orphan()
    _, _, err = cleanup("--delete", "--grace-hours", "0", "--batch-size", "2")
    assert err.splitlines() == ["cleanup: 2/3 objects", "cleanup: 3/3 objects"]


def test_a_bad_batch_size_is_refused():
    with pytest.raises(CommandError):
        call_command("warehouse_cleanup", "--batch-size", "0")


@pytest.mark.django_db(transaction=True)
def test_many_orphans_are_deleted_in_batches_under_the_lock_limit():
    # 12,000 unlinks in one transaction would overflow max_locks_per_transaction.
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT lo_from_bytea(0, '\\x00') FROM generate_series(1, 12000)")
    status, out, _ = cleanup("--delete", "--include-unregistered", "--grace-hours", "0")
    assert status == 0
    assert "deleted 12000 objects, 0 failed" in out
    assert large_object_oids() == set()


@pytest.mark.django_db(transaction=True)
def test_an_object_whose_row_an_open_transaction_is_saving_is_never_taken():
    name = db_file_storage.save("pending.pdf", ContentFile(b"about to be referenced"))
    with open_transaction_in_another_thread(lambda: Document.objects.create(file=name)):
        cleanup("--delete", "--grace-hours", "0")
    assert oid_of(name) in large_object_oids()
    assert Document.objects.get().file.name == name


@pytest.mark.django_db(transaction=True)
def test_an_object_saved_by_a_transaction_still_open_is_invisible_to_cleanup():
    with open_transaction_in_another_thread(
        lambda: db_file_storage.save("slow.pdf", ContentFile(b"slow")),
        lambda name: Document.objects.create(file=name),
    ) as name:
        cleanup("--delete", "--grace-hours", "0", "--include-unregistered")
    assert oid_of(name) in large_object_oids()


# -- objects that cannot be measured, columns that cannot be read ------------------------


def test_an_object_unlinked_while_the_survey_runs_is_left_out_of_it(make_object):
    make_object(b"stays")
    gone = make_object(b"unlinked meanwhile")
    status, out, _ = cleanup("--grace-hours", "0", command=UnlinkingWhileSurveying(gone))
    assert status == 0
    assert "1 (5 bytes) unreferenced and unregistered" in out
    assert "could not be measured" not in out


def test_an_object_the_role_may_not_read_is_counted_without_its_size(make_object):
    make_object(b"not mine to read")
    with role_that_may_not_read():
        status, out, _ = cleanup("--grace-hours", "0")
    assert status == 0
    assert "1 (0 bytes) unreferenced and unregistered" in out
    assert "1 objects could not be measured (counted as 0 bytes)" in out
    assert "permission denied for large object" in out.lower()


def test_an_object_the_role_may_not_read_leaves_the_callers_transaction_usable(make_object):
    make_object(b"not mine to read")
    with role_that_may_not_read():
        cleanup("--grace-hours", "0")
        assert cleanup("--grace-hours", "0")[0] == 0
    assert Document.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_object_the_role_may_not_read_leaves_autocommit_usable(make_object):
    make_object(b"not mine to read")
    with role_that_may_not_read():
        status, out, _ = cleanup("--grace-hours", "0")
        assert status == 0
        assert "1 objects could not be measured" in out
        assert not connections["default"].in_atomic_block
        assert cleanup("--grace-hours", "0")[0] == 0


def test_a_dry_run_warns_of_an_oid_column_the_role_may_not_read():
    with connections["default"].cursor() as cursor:
        cursor.execute("CREATE TABLE warehouse_test_secret (blob oid)")
    with role_that_may_not_read("warehouse_test_secret"):
        status, _, err = cleanup("--grace-hours", "0")
    assert status == 0
    assert "public.warehouse_test_secret.blob: not readable by this role" in err
    assert err.startswith("warning: ")


def test_delete_refuses_while_an_oid_column_is_unreadable_and_unlinks_nothing():
    loid = orphan()
    with connections["default"].cursor() as cursor:
        cursor.execute("CREATE TABLE warehouse_test_secret (blob oid)")
    with role_that_may_not_read("warehouse_test_secret"):
        status, _, err = cleanup("--delete", "--grace-hours", "0")
    assert status == 2
    assert "public.warehouse_test_secret.blob" in err
    assert loid in large_object_oids()


def test_delete_refuses_while_a_file_table_is_in_a_schema_off_the_search_path(make_model):
    loid = orphan()
    with connections["default"].cursor() as cursor:
        cursor.execute("CREATE SCHEMA warehouse_test_tenant")
        cursor.execute(f"CREATE TABLE warehouse_test_tenant.{LEGACY} (id serial, scan text)")
    make_model(LEGACY)
    status, _, err = cleanup("--delete", "--grace-hours", "0")
    assert status == 2
    assert "refusing to delete" in err
    assert "tests.WarehouseTestLegacyScan.scan: missing on this database" in err
    assert loid in large_object_oids()


def test_delete_refuses_while_an_app_migrated_here_is_not_installed():
    loid = orphan()
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES ('retired', '0001', now())"
        )
    status, _, err = cleanup("--delete", "--grace-hours", "0")
    assert status == 2
    assert "app 'retired': migrated on this database but not in INSTALLED_APPS" in err
    assert loid in large_object_oids()
