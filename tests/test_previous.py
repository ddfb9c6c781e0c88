"""A DbFileStorage given the storage a site used before reads the names it gave from it."""

import io
from datetime import datetime

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, storages

from tests.factories import ReceiptOnDiskFactory
from tests.models import Receipt
from warehouse.names import is_large_object_name
from warehouse.storage import DbFileStorage, db_file_storage

pytestmark = pytest.mark.django_db

CONTENT = b"a receipt from before the move\n"


def folder() -> str:
    """Where upload_to="receipts/%Y" puts a file saved now."""
    return datetime.now().strftime("receipts/%Y")


@pytest.fixture
def on_disk(previous_storage) -> str:
    """The name of a receipt saved before the move, its file in MEDIA_ROOT."""
    return ReceiptOnDiskFactory(file__filename="hello.txt", file__data=CONTENT).file.name


def test_a_row_saved_before_the_move_holds_a_name_in_its_upload_to_folder(on_disk):
    assert on_disk == f"{folder()}/hello.txt"


def test_a_name_of_the_previous_storage_opens_from_it(on_disk):
    with Receipt.objects.get().file.open("rb") as file:
        assert file.read() == CONTENT


def test_its_existence_and_size_come_from_the_previous_storage(on_disk):
    assert db_file_storage.exists(on_disk)
    assert Receipt.objects.get().file.size == len(CONTENT)


def test_its_times_come_from_the_previous_storage(on_disk):
    assert db_file_storage.get_modified_time(on_disk) == storages["previous"].get_modified_time(
        on_disk
    )


def test_a_file_missing_from_the_previous_storage_does_not_exist(previous_storage):
    assert not db_file_storage.exists("receipts/gone.txt")
    with pytest.raises(FileNotFoundError):
        db_file_storage.open("receipts/gone.txt")


@pytest.mark.parametrize("mode", ["wb", "r+b", "ab", "xb"])
def test_a_name_of_the_previous_storage_is_never_opened_for_writing(on_disk, mode):
    with pytest.raises(io.UnsupportedOperation, match="only reads"):
        db_file_storage.open(on_disk, mode)
    with storages["previous"].open(on_disk) as file:
        assert file.read() == CONTENT


def test_a_large_object_name_is_never_looked_for_in_the_previous_storage(previous_storage):
    previous_storage.mkdir()
    (previous_storage / "4294967295.txt").write_bytes(CONTENT)
    assert not db_file_storage.exists("4294967295.txt")


def test_a_name_with_a_nul_is_nobodys(previous_storage):
    assert not db_file_storage.exists("receipts/a\x00.txt")


def test_the_url_of_a_previous_storage_name_is_under_the_base_url(on_disk):
    assert Receipt.objects.get().file.url == f"/warehouse/{folder()}/hello.txt"


def test_deleting_such_a_name_through_the_storage_deletes_it_there(on_disk, previous_storage):
    db_file_storage.delete(on_disk)
    assert not (previous_storage / on_disk).exists()


def test_replacing_the_file_of_a_row_keeps_the_previous_storage_file(on_disk, previous_storage):
    receipt = Receipt.objects.get()
    receipt.file = ContentFile(b"new", name="new.txt")
    receipt.save()
    assert (previous_storage / on_disk).read_bytes() == CONTENT


def test_deleting_a_row_keeps_its_previous_storage_file(on_disk, previous_storage):
    Receipt.objects.all().delete()
    assert (previous_storage / on_disk).read_bytes() == CONTENT


def test_a_new_file_saved_meanwhile_goes_into_a_large_object(on_disk):
    receipt = Receipt.objects.create(file=ContentFile(b"new", name="new.txt"))
    assert is_large_object_name(receipt.file.name)
    with Receipt.objects.get(pk=receipt.pk).file.open("rb") as file:
        assert file.read() == b"new"


def test_without_a_previous_storage_such_a_name_is_nobodys_as_before(on_disk, settings):
    settings.WAREHOUSE_PREVIOUS_STORAGE = None
    assert not db_file_storage.exists(on_disk)
    with pytest.raises(FileNotFoundError):
        db_file_storage.size(on_disk)
    db_file_storage.delete(on_disk)  # nothing of this storage's: nothing happens
    assert storages["previous"].exists(on_disk)


def test_the_constructor_argument_beats_the_setting(on_disk, tmp_path):
    elsewhere = FileSystemStorage(location=tmp_path / "elsewhere")
    elsewhere.save(on_disk, ContentFile(b"elsewhere"))
    with DbFileStorage(previous=elsewhere).open(on_disk) as file:
        assert file.read() == b"elsewhere"


def test_the_setting_may_name_a_storage_class(on_disk, settings):
    settings.WAREHOUSE_PREVIOUS_STORAGE = "django.core.files.storage.FileSystemStorage"
    assert db_file_storage.size(on_disk) == len(CONTENT)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("nowhere", "neither an alias in STORAGES"),
        ("no.such.Storage", "Cannot import"),
        ("tests.models.Receipt", "not a storage class"),
        ("warehouse.storage.DbFileStorage", "keeps large objects itself"),
        (42, "not a int"),
    ],
)
def test_a_setting_that_names_no_previous_storage_is_a_clear_error(settings, setting, message):
    settings.WAREHOUSE_PREVIOUS_STORAGE = setting
    with pytest.raises(ImproperlyConfigured, match=message):
        db_file_storage.exists("receipts/hello.txt")


def test_a_previous_storage_given_by_the_setting_stays_out_of_migrations(previous_storage):
    assert DbFileStorage().deconstruct() == ("warehouse.storage.DbFileStorage", (), {})
    assert "storage" not in Receipt._meta.get_field("file").deconstruct()[3]


def test_a_previous_storage_given_to_the_constructor_is_kept_in_migrations():
    assert DbFileStorage(previous="previous").deconstruct()[2] == {"previous": "previous"}
