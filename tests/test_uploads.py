"""The upload handler: request bodies streamed into large objects, adopted when saved."""

import contextlib
import hashlib
import os
from datetime import datetime

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadhandler import StopFutureHandlers
from django.core.management import call_command
from django.test import RequestFactory

from tests.conftest import large_object_content, large_object_oids
from tests.models import Document
from warehouse.models import StoredFile
from warehouse.storage import oid_of
from warehouse.uploads import UPLOAD_CHUNK_SIZE, DbFileUploadHandler, DbUploadedFile

pytestmark = pytest.mark.django_db(transaction=True)

CONTENT = os.urandom(2 * UPLOAD_CHUNK_SIZE + 1000)  # more than one chunk


@pytest.fixture(autouse=True)
def upload_handler(tmp_path, settings):
    """The package's handler alone; Django's would write every upload to tmp_path."""
    settings.FILE_UPLOAD_HANDLERS = ["warehouse.uploads.DbFileUploadHandler"]
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    return tmp_path


def receiving(name: str, content_type: str = "text/plain") -> DbFileUploadHandler:
    """A handler that has begun receiving a file, as Django's parser drives it."""
    handler = DbFileUploadHandler(RequestFactory().post("/"))
    with contextlib.suppress(StopFutureHandlers):  # it takes the file for itself
        handler.new_file("file", name, content_type, None)
    return handler


def test_the_handler_takes_the_file_from_any_handler_after_it():
    handler = DbFileUploadHandler(RequestFactory().post("/"))
    with pytest.raises(StopFutureHandlers):
        handler.new_file("file", "mine.txt", "text/plain", None)
    handler.file.close()


def upload(client, path="/upload", name="Rechnung März.pdf", content=CONTENT, **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    file = SimpleUploadedFile(name, content, content_type="application/pdf")
    return client.post(path, {"file": file, **fields})


def test_an_upload_is_written_into_a_large_object_without_a_temporary_file(client, upload_handler):
    before = large_object_oids()
    response = upload(client, "/upload-unsaved")
    assert response.content == f"DbUploadedFile {len(CONTENT)}".encode()
    (loid,) = large_object_oids() - before
    assert large_object_content(loid) == CONTENT
    assert list(upload_handler.iterdir()) == []


def test_an_upload_is_registered_with_its_name_size_and_digest_as_an_upload(client):
    before = large_object_oids()
    upload(client, "/upload-unsaved")
    (loid,) = large_object_oids() - before
    row = StoredFile.objects.get(oid=loid)
    assert (row.name, row.size, row.sha256, row.upload) == (
        "Rechnung März.pdf",
        len(CONTENT),
        hashlib.sha256(CONTENT).hexdigest(),
        True,
    )


def test_saving_an_upload_to_a_file_field_adopts_its_object_without_a_copy(client):
    before = large_object_oids()
    name = upload(client).content.decode()
    assert large_object_oids() - before == {oid_of(name)}
    assert Document.objects.get().file.name == name
    assert name.endswith(".pdf")
    assert StoredFile.objects.get(oid=oid_of(name)).upload is False
    assert large_object_content(oid_of(name)) == CONTENT


def test_an_adopted_upload_is_registered_in_its_upload_to_folder_under_its_own_name(client):
    name = upload(client, "/upload-receipt").content.decode()
    row = StoredFile.objects.get(oid=oid_of(name))
    assert (row.name, row.upload) == (f"{datetime.now():receipts/%Y}/Rechnung März.pdf", False)


def test_an_upload_the_view_never_saves_is_cleaned_up_after_the_grace_period(client):
    before = large_object_oids()
    upload(client, "/upload-unsaved")
    (loid,) = large_object_oids() - before
    call_command("warehouse_cleanup", "--delete", verbosity=0)  # within the grace period
    assert loid in large_object_oids()
    StoredFile.objects.filter(oid=loid).update(created="2000-01-01T00:00Z")
    call_command("warehouse_cleanup", "--delete", verbosity=0)
    assert loid not in large_object_oids()


def test_under_atomic_requests_a_view_that_fails_leaves_no_upload_behind(client, atomic_requests):
    client.raise_request_exception = False
    before = large_object_oids()
    assert upload(client, then="fail").status_code == 500
    assert large_object_oids() == before
    assert not StoredFile.objects.exists()


def test_under_atomic_requests_a_saved_upload_commits_with_the_row(client, atomic_requests):
    name = upload(client).content.decode()
    assert Document.objects.get().file.name == name
    assert large_object_content(oid_of(name)) == CONTENT


def test_an_upload_saved_twice_is_adopted_once_and_copied_once(client):
    handler = receiving("twice.txt", "text/plain")
    handler.receive_data_chunk(b"twice", 0)
    uploaded = handler.file_complete(5)
    first = Document.objects.create(file=uploaded)
    second = Document.objects.create(file=uploaded)
    assert oid_of(first.file.name) == uploaded.loid != oid_of(second.file.name)
    assert large_object_content(oid_of(second.file.name)) == b"twice"
    uploaded.close()


def test_an_upload_saved_to_another_storage_is_copied_there(tmp_path):
    handler = receiving("elsewhere.txt", "text/plain")
    handler.receive_data_chunk(b"on disk", 0)
    uploaded = handler.file_complete(7)
    name = FileSystemStorage(location=tmp_path / "media").save("elsewhere.txt", uploaded)
    assert (tmp_path / "media" / name).read_bytes() == b"on disk"
    uploaded.close()


def test_an_upload_given_up_half_way_leaves_no_object():
    before = large_object_oids()
    handler = receiving("half.bin", "application/octet-stream")
    handler.receive_data_chunk(b"half", 0)
    handler.file.close()  # what Django's parser does on a skipped or stopped upload
    assert large_object_oids() == before


def test_an_upload_reads_like_any_uploaded_file():
    handler = receiving("read.txt", "text/plain")
    handler.receive_data_chunk(b"read me", 0)
    uploaded = handler.file_complete(7)
    assert isinstance(uploaded, DbUploadedFile)
    assert (uploaded.read(), uploaded.size, uploaded.content_type) == (b"read me", 7, "text/plain")
    uploaded.close()
    assert uploaded.closed


def test_an_upload_given_up_in_the_callers_transaction_is_unlinked_there():
    from django.db import connection, transaction

    with transaction.atomic():
        handler = receiving("half.bin", "application/octet-stream")
        handler.receive_data_chunk(b"half", 0)
        loid = handler.file.raw.loid
        handler.file.close()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_largeobject_metadata WHERE oid = %s", [loid])
            assert cursor.fetchone()[0] == 0
