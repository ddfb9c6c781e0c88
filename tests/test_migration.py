"""Moving a FileSystemStorage site over, as README.rst's guide does it: no file broken at any step.

The site had ``ReceiptOnDisk``: a ``FileField`` in MEDIA_ROOT with
``upload_to`` folders. It switches the field to ``DbFileField`` (``Receipt``,
the same table) with the previous storage configured, deploys, imports in
batches, verifies and drops the previous storage. After every step each
row's file opens, sizes and downloads with its very bytes, and
``warehouse_verify`` passes.
"""

import hashlib
import io
import os
import shutil
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import ReceiptOnDiskFactory
from tests.models import Receipt
from warehouse import registry
from warehouse.io import CHUNK_SIZE
from warehouse.names import is_large_object_name, oid_of

# The import commits a row at a time: the point is what other sessions see between.
pytestmark = pytest.mark.django_db(transaction=True)

SIZES = {"empty.txt": 0, "note.txt": 17, "scan.pdf": 4096, "photo.jpg": CHUNK_SIZE + 3}
BATCH = 2  # files per warehouse_import run


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def run(*args: str) -> tuple[int, str]:
    """Run a command as manage.py would; return its exit status and stdout."""
    out = io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=io.StringIO())
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def site(previous_storage: Path) -> dict[str, bytes]:
    """The site before the move: a receipt per file, saved in MEDIA_ROOT; their bytes by title."""
    contents = {title: os.urandom(size) for title, size in SIZES.items()}
    for title, content in contents.items():
        ReceiptOnDiskFactory(title=title, file__filename=title, file__data=content)
    return contents


def assert_every_file_whole(client, contents: dict[str, bytes]) -> None:
    """Each receipt's file opens, sizes and downloads with its bytes; warehouse_verify passes."""
    receipts = list(Receipt.objects.all())
    assert {receipt.title for receipt in receipts} == set(contents)
    for receipt in receipts:
        content = contents[receipt.title]
        with receipt.file.open("rb") as file:
            assert file.read() == content, receipt.file.name
        assert receipt.file.size == len(content)
        response = client.get(receipt.file.url)
        assert response.status_code == 200, receipt.file.url
        assert body(response) == content
    status, out = run("warehouse_verify")
    assert status == 0, out


def names() -> list[str]:
    return list(Receipt.objects.order_by("pk").values_list("file", flat=True))


def test_before_the_switch_the_rows_hold_names_in_upload_to_folders(site):
    assert all(name.startswith("receipts/") for name in names())


def test_after_the_switch_and_deploy_no_file_is_broken(client, site):
    assert_every_file_whole(client, site)


def test_after_one_batch_of_the_import_no_file_is_broken(client, site):
    assert run("warehouse_import", "tests.Receipt.file", "--limit", str(BATCH))[0] == 0
    assert sum(is_large_object_name(name) for name in names()) == BATCH
    assert_every_file_whole(client, site)


def test_a_file_uploaded_during_the_move_goes_into_a_large_object(client, site):
    run("warehouse_import", "tests.Receipt.file", "--limit", str(BATCH))
    Receipt.objects.create(title="new.txt", file=ContentFile(b"new", name="new.txt"))
    assert is_large_object_name(Receipt.objects.get(title="new.txt").file.name)
    assert_every_file_whole(client, {**site, "new.txt": b"new"})


def test_after_the_import_in_batches_every_file_is_in_a_large_object(client, site):
    while run("warehouse_import", "tests.Receipt.file", "--limit", str(BATCH))[1].startswith(
        "stopped"
    ):
        assert_every_file_whole(client, site)
    assert all(is_large_object_name(name) for name in names())
    assert_every_file_whole(client, site)


def test_after_the_import_each_files_sha256_is_the_originals(site):
    run("warehouse_import", "tests.Receipt.file", "--limit", str(BATCH))
    run("warehouse_import", "tests.Receipt.file")
    for receipt in Receipt.objects.all():
        row = registry.lookup(oid_of(receipt.file.name), "default")
        assert (row.size, row.sha256) == (len(site[receipt.title]), sha256(site[receipt.title]))


def test_after_dropping_the_previous_storage_and_its_files_no_file_is_broken(
    client, site, previous_storage, settings
):
    run("warehouse_import", "tests.Receipt.file")
    settings.WAREHOUSE_PREVIOUS_STORAGE = None
    shutil.rmtree(previous_storage)
    assert_every_file_whole(client, site)


def test_export_puts_the_files_back_where_they_were_before_the_move(site, tmp_path):
    before = dict(Receipt.objects.values_list("title", "file"))
    run("warehouse_import", "tests.Receipt.file")
    run("warehouse_export", "tests.Receipt.file", "--to-location", str(tmp_path / "back"))
    assert dict(Receipt.objects.values_list("title", "file")) == before
    for title, name in before.items():
        assert (tmp_path / "back" / name).read_bytes() == site[title]
