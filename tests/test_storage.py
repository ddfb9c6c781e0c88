"""DbFileStorage: Django's Storage API over large objects, in the caller's transaction."""

import io

import pytest
from django.core.files.base import ContentFile, File
from django.core.files.storage import storages
from django.db import DatabaseError, transaction
from django.test import override_settings
from django.utils import timezone

from tests.conftest import SimulatedError, large_object_content, large_object_oids
from tests.factories import UploadFactory
from tests.models import Document
from warehouse.models import StoredFile
from warehouse.storage import DbFile, DbFileIO, DbFileStorage, db_file_storage, oid_of

pytestmark = pytest.mark.django_db

MALFORMED_NAMES = ["", "../x", "abc.pdf", "-1", "0", "016384.pdf", str(2**32), "1/2.pdf", "12.a\\b"]


def test_save_names_the_file_after_its_oid_and_extension():
    name = db_file_storage.save("a/report.PDF", UploadFactory())
    assert name == f"{oid_of(name)}.PDF"


def test_save_without_extension_gives_the_bare_oid():
    name = db_file_storage.save("README", UploadFactory())
    assert name == str(oid_of(name))


def test_save_keeps_only_safe_characters_of_the_extension():
    name = db_file_storage.save("evil.p<d>f", UploadFactory())
    assert name.endswith(".pdf")


def test_save_stores_the_bytes():
    name = db_file_storage.save("x.pdf", UploadFactory(content=b"%PDF invoice"))
    assert large_object_content(oid_of(name)) == b"%PDF invoice"


def test_save_accepts_any_file_like_object():
    name = db_file_storage.save("x.bin", io.BytesIO(b"plain file object"))
    assert large_object_content(oid_of(name)) == b"plain file object"


def test_save_never_asks_whether_a_name_exists(monkeypatch):
    def refuse(name):
        raise AssertionError("exists() was called")

    monkeypatch.setattr(db_file_storage, "exists", refuse)
    db_file_storage.save("x.pdf", UploadFactory())


def test_save_fits_the_name_into_max_length():
    name = db_file_storage.save("x.averylongextension", UploadFactory(), max_length=14)
    assert len(name) <= 14


def test_a_save_that_fails_part_way_leaves_no_object():
    class FailingUpload(File):
        def chunks(self, chunk_size=None):
            yield b"first chunk"
            raise SimulatedError

    objects_before = large_object_oids()
    with pytest.raises(SimulatedError):
        db_file_storage.save("x.pdf", FailingUpload(io.BytesIO(), name="x.pdf"))
    assert large_object_oids() == objects_before


def test_a_save_rolled_back_with_its_atomic_block_leaves_no_object():
    objects_before = large_object_oids()
    with pytest.raises(SimulatedError), transaction.atomic():
        db_file_storage.save("x.pdf", UploadFactory())
        raise SimulatedError
    assert large_object_oids() == objects_before


def test_open_reads_the_file():
    name = db_file_storage.save("x.txt", UploadFactory(content=b"content"))
    with db_file_storage.open(name) as file:
        assert file.read() == b"content"


def test_open_returns_a_django_file_named_after_the_object():
    name = db_file_storage.save("x.txt", UploadFactory())
    with db_file_storage.open(name) as file:
        assert isinstance(file, DbFile)
        assert file.name == name


def test_the_size_of_an_open_file_comes_from_the_object(tmp_path, monkeypatch):
    name = db_file_storage.save("x.txt", UploadFactory(content=b"12345"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(b"a local file with the same name")
    with db_file_storage.open(name) as file:
        assert file.size == 5


def test_open_in_text_mode_decodes():
    name = db_file_storage.save("x.txt", UploadFactory(content="grüße\n".encode()))
    with db_file_storage.open(name, "r") as file:
        assert file.read() == "grüße\n"


def test_open_for_writing_replaces_the_content():
    name = db_file_storage.save("x.txt", UploadFactory(content=b"old"))
    with db_file_storage.open(name, "wb") as file:
        file.write(b"new")
    assert large_object_content(oid_of(name)) == b"new"


def test_open_for_appending_adds_to_the_end():
    name = db_file_storage.save("x.txt", UploadFactory(content=b"old"))
    with db_file_storage.open(name, "ab") as file:
        file.write(b"+more")
        assert file.size == 8
    assert large_object_content(oid_of(name)) == b"old+more"


def test_chunks_of_an_open_file_give_the_content_back():
    content = bytes(range(256)) * 1000
    name = db_file_storage.save("x.bin", UploadFactory(content=content))
    with db_file_storage.open(name) as file:
        assert b"".join(file.chunks(1000)) == content


def test_a_closed_file_reopens_the_object_not_a_local_path():
    name = db_file_storage.save("x.txt", UploadFactory(content=b"again"))
    file = db_file_storage.open(name)
    file.close()
    with file.open() as reopened:
        assert reopened.read() == b"again"


@pytest.mark.parametrize("name", MALFORMED_NAMES)
def test_a_malformed_name_does_not_exist(name, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert not db_file_storage.exists(name)


@pytest.mark.parametrize("name", MALFORMED_NAMES)
def test_opening_a_malformed_name_is_filenotfounderror(name, django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(FileNotFoundError):
        db_file_storage.open(name)


def test_opening_a_missing_object_is_filenotfounderror():
    with pytest.raises(FileNotFoundError):
        db_file_storage.open(f"{2**32 - 1}.pdf")


def test_exists_is_true_for_a_saved_file():
    assert db_file_storage.exists(db_file_storage.save("x.pdf", UploadFactory()))


def test_exists_is_false_for_a_missing_object():
    assert not db_file_storage.exists(f"{2**32 - 1}.pdf")


def test_size_is_the_length_of_the_object():
    name = db_file_storage.save("x.pdf", UploadFactory(content=b"123"))
    assert db_file_storage.size(name) == 3


def test_uploaded_name_is_the_name_the_file_was_uploaded_as():
    name = db_file_storage.save("Rechnung März.pdf", UploadFactory(name="scans/Rechnung März.pdf"))
    assert db_file_storage.uploaded_name(name) == "Rechnung März.pdf"


def test_uploaded_name_of_an_unregistered_object_is_its_storage_name():
    name = db_file_storage.save("x.pdf", UploadFactory())
    StoredFile.objects.filter(oid=oid_of(name)).delete()
    assert db_file_storage.uploaded_name(name) == name


@pytest.mark.parametrize("name", ["abc.pdf", "999999.pdf"])
def test_uploaded_name_of_a_malformed_or_missing_name_is_that_name(name):
    assert db_file_storage.uploaded_name(name) == name


def test_size_of_a_missing_name_is_filenotfounderror():
    with pytest.raises(FileNotFoundError):
        db_file_storage.size(f"{2**32 - 1}.pdf")


def test_delete_unlinks_the_object():
    name = db_file_storage.save("x.pdf", UploadFactory())
    db_file_storage.delete(name)
    assert oid_of(name) not in large_object_oids()


def test_delete_of_a_missing_name_is_not_an_error():
    db_file_storage.delete(f"{2**32 - 1}.pdf")
    db_file_storage.delete("not-ours.pdf")


def test_delete_without_a_name_is_a_valueerror():
    with pytest.raises(ValueError):
        db_file_storage.delete("")


def test_a_delete_rolled_back_with_its_atomic_block_leaves_the_object():
    name = db_file_storage.save("x.pdf", UploadFactory(content=b"survivor"))
    with pytest.raises(SimulatedError), transaction.atomic():
        db_file_storage.delete(name)
        assert not db_file_storage.exists(name)
        raise SimulatedError
    assert large_object_content(oid_of(name)) == b"survivor"


def test_a_delete_that_fails_for_another_reason_raises(make_object):
    name = db_file_storage.save("x.pdf", UploadFactory())
    with transaction.atomic():
        with transaction.get_connection().cursor() as cursor:
            # Only the owner may unlink; make the object someone else's.
            cursor.execute("CREATE ROLE warehouse_stranger")
            cursor.execute(f"ALTER LARGE OBJECT {oid_of(name)} OWNER TO warehouse_stranger")
            cursor.execute("CREATE ROLE warehouse_tester")
            cursor.execute("SET LOCAL ROLE warehouse_tester")
        with pytest.raises(DatabaseError):
            db_file_storage.delete(name)
        transaction.set_rollback(True)


def test_url_joins_the_base_url_and_the_name():
    assert DbFileStorage("/invoice").url("12.pdf") == "/invoice/12.pdf"


def test_url_defaults_to_warehouse_base_url():
    assert DbFileStorage().url("12.pdf") == "/warehouse/12.pdf"


@override_settings(WAREHOUSE_BASE_URL="/files/")
def test_url_follows_the_setting_when_it_changes():
    assert db_file_storage.url("12.pdf") == "/files/12.pdf"


def test_listdir_lists_a_saved_file_by_its_name():
    name = db_file_storage.save("x.pdf", UploadFactory())
    directories, files = db_file_storage.listdir("")
    assert directories == []
    assert name in files


def test_listdir_lists_the_name_a_row_holds_not_one_rebuilt_from_the_upload():
    # The field cleans the name ("x.tar gz" becomes "x.tar_gz") before the storage sees it.
    document = Document.objects.create(file=ContentFile(b"archive", name="x.tar gz"))
    assert document.file.name.endswith(".tar_gz")
    assert document.file.name in db_file_storage.listdir("")[1]


def test_listdir_lists_an_unregistered_object_by_its_oid(make_object):
    loid = make_object(b"made outside the storage")
    assert str(loid) in db_file_storage.listdir("")[1]


def test_listdir_of_a_subdirectory_is_filenotfounderror():
    with pytest.raises(FileNotFoundError):
        db_file_storage.listdir("invoices")


def test_the_accessed_time_is_not_implemented_and_says_why():
    with pytest.raises(NotImplementedError, match="no access time"):
        db_file_storage.get_accessed_time(db_file_storage.save("x.pdf", UploadFactory()))


@pytest.mark.parametrize("method", ["get_created_time", "get_modified_time"])
def test_times_of_a_saved_file_come_from_the_registry(method):
    before = timezone.now()
    name = db_file_storage.save("x.pdf", UploadFactory())
    assert before <= getattr(db_file_storage, method)(name) <= timezone.now()


@pytest.mark.parametrize("method", ["get_created_time", "get_modified_time"])
def test_times_of_an_unregistered_object_are_not_implemented_and_say_how(make_object, method):
    with pytest.raises(NotImplementedError, match="warehouse_register"):
        getattr(db_file_storage, method)(str(make_object(b"x")))


@pytest.mark.parametrize("method", ["get_created_time", "get_modified_time"])
def test_times_of_a_missing_name_are_filenotfounderror(method):
    with pytest.raises(FileNotFoundError):
        getattr(db_file_storage, method)(f"{2**32 - 1}.pdf")


def test_path_is_not_available():
    with pytest.raises(NotImplementedError):
        db_file_storage.path("12.pdf")


def test_the_storage_deconstructs_to_its_public_path():
    assert DbFileStorage("/invoice").deconstruct() == (
        "warehouse.storage.DbFileStorage",
        ("/invoice",),
        {},
    )


def test_dbfileio_is_importable_from_the_storage_module():
    from warehouse import io as warehouse_io

    assert DbFileIO is warehouse_io.DbFileIO


@override_settings(
    STORAGES={
        "default": {"BACKEND": "warehouse.storage.DbFileStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
)
def test_it_can_be_the_default_storage_in_storages():
    name = storages["default"].save("x.pdf", ContentFile(b"via STORAGES"))
    assert large_object_content(oid_of(name)) == b"via STORAGES"


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
class TestReadAndWriteAliases:
    """Reads go to WAREHOUSE_DB_FOR_READ, unless the write alias is mid-transaction."""

    @override_settings(WAREHOUSE_DB_FOR_READ="replica")
    def test_a_file_saved_in_the_current_transaction_can_be_read_back(self):
        with transaction.atomic():
            name = db_file_storage.save("x.txt", UploadFactory(content=b"not committed yet"))
            assert db_file_storage.exists(name)
            with db_file_storage.open(name) as file:
                assert file.read() == b"not committed yet"

    @override_settings(WAREHOUSE_DB_FOR_READ="replica")
    def test_outside_a_transaction_reads_use_the_read_alias(self, django_assert_num_queries):
        name = db_file_storage.save("x.txt", UploadFactory())
        with django_assert_num_queries(1, connection=transaction.get_connection("replica")):
            assert db_file_storage.exists(name)

    @override_settings(WAREHOUSE_DB_FOR_WRITE="replica")
    def test_saves_go_to_the_write_alias(self, django_assert_num_queries):
        with django_assert_num_queries(0, connection=transaction.get_connection("default")):
            db_file_storage.save("x.txt", UploadFactory())
