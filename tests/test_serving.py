"""db_serve as a private download endpoint: ranges, validators, types, names, ownership."""

import hashlib
import os
import re
import time

import pytest
from django.core.files.base import ContentFile
from django.db import connections
from django.utils.http import http_date

from tests.conftest import LONGER_THAN_READ_AHEAD, large_object_oids
from tests.factories import InvoiceFactory, UserFactory
from warehouse import streams
from warehouse.models import StoredFile
from warehouse.storage import db_file_storage, oid_of
from warehouse.views import content_disposition

pytestmark = pytest.mark.django_db

CONTENT = bytes(range(256)) * 4  # 1 KiB


def stored(content: bytes = CONTENT, name: str = "x.pdf") -> str:
    return db_file_storage.save(name, ContentFile(content))


def get(client, name: str, **headers):
    return client.get(f"/serve/{name}", headers=headers)


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# -- ranges ---------------------------------------------------------------------------


def test_a_full_download_says_it_accepts_ranges(client):
    response = get(client, stored())
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, 1023), ("bytes=-24", 1000, 1023)],
)
def test_a_range_is_206_with_exactly_those_bytes(client, header, start, end):
    response = get(client, stored(), Range=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/1024"
    assert response["Content-Length"] == str(end - start + 1)
    assert response["Accept-Ranges"] == "bytes"
    assert body(response) == CONTENT[start : end + 1]


def test_a_range_of_a_large_file_streams_exactly_those_bytes(client):
    content = bytes(range(256)) * 4096
    response = get(client, stored(content), Range="bytes=300000-700000")
    assert response.status_code == 206
    assert body(response) == content[300000:700001]


def test_an_unsatisfiable_range_is_416_with_the_size(client):
    response = get(client, stored(), Range="bytes=5000-")
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */1024"
    assert body(response) == b""


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-1", "bytes=9-3", "nonsense"])
def test_a_malformed_or_multiple_range_gets_the_whole_file(client, header):
    response = get(client, stored(), Range=header)
    assert response.status_code == 200
    assert body(response) == CONTENT


@pytest.mark.parametrize("validator", ["ETag", "Last-Modified"])
def test_if_range_with_the_current_validator_honours_the_range(client, validator):
    name = stored()
    current = get(client, name)[validator]
    assert get(client, name, Range="bytes=0-9", If_Range=current).status_code == 206


def test_if_range_with_a_stale_etag_sends_the_whole_file(client):
    response = get(client, stored(), Range="bytes=0-9", If_Range='"stale"')
    assert response.status_code == 200
    assert body(response) == CONTENT


# -- validators -------------------------------------------------------------------------


def test_the_etag_is_the_registered_sha256(client):
    response = get(client, stored())
    assert response["ETag"] == f'"{hashlib.sha256(CONTENT).hexdigest()}"'


def test_last_modified_is_the_registered_time(client):
    name = stored()
    modified = StoredFile.objects.get(oid=oid_of(name)).modified
    assert get(client, name)["Last-Modified"] == http_date(modified.timestamp())


def test_an_object_without_a_registry_row_gets_no_etag(client, make_object):
    response = get(client, str(make_object(b"unregistered")))
    assert response.status_code == 200
    assert "ETag" not in response
    assert body(response) == b"unregistered"


def test_an_object_whose_digest_was_cleared_gets_no_etag(client):
    name = stored()
    StoredFile.objects.filter(oid=oid_of(name)).update(sha256="")
    assert "ETag" not in get(client, name)


def test_a_write_in_place_changes_the_etag(client):
    name = stored()
    before = get(client, name)["ETag"]
    with db_file_storage.open(name, "r+b") as file:
        file.write(b"changed")
    assert get(client, name)["ETag"] not in (before, None)


def test_if_none_match_with_the_etag_is_304(client):
    name = stored()
    response = get(client, name, If_None_Match=get(client, name)["ETag"])
    assert response.status_code == 304
    assert response["Cache-Control"] == "private"
    assert body(response) == b""


def test_if_modified_since_the_last_modification_is_304(client):
    name = stored()
    response = get(client, name, If_Modified_Since=get(client, name)["Last-Modified"])
    assert response.status_code == 304


def test_if_match_with_another_etag_is_412(client):
    assert get(client, stored(), If_Match='"other"').status_code == 412


def test_if_unmodified_since_an_earlier_date_is_412(client):
    response = get(client, stored(), If_Unmodified_Since=http_date(time.time() - 86400))
    assert response.status_code == 412


# -- types ------------------------------------------------------------------------------


def test_the_type_comes_from_what_was_stored_not_from_the_request(client):
    name = stored(name="invoice.pdf")
    response = get(client, name.replace(".pdf", ".html"))
    assert response["Content-Type"] == "application/pdf"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("page.html", "application/octet-stream"),
        ("drawing.svg", "application/octet-stream"),
        ("app.js", "application/octet-stream"),
        ("style.css", "application/octet-stream"),
        ("data.xml", "application/octet-stream"),
        ("archive.zip", "application/zip"),
    ],
)
def test_anything_not_allowed_inline_is_an_attachment_and_never_active(client, name, content_type):
    response = get(client, stored(b"<script>alert(1)</script>", name=name))
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"].startswith("attachment;")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("scan.pdf", "application/pdf"), ("id.png", "image/png"), ("id.jpg", "image/jpeg")],
)
def test_documents_and_images_are_shown_inline(client, name, content_type):
    response = get(client, stored(name=name))
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"].startswith("inline;")


def test_as_attachment_makes_even_a_pdf_an_attachment(rf):
    from warehouse.views import db_serve

    response = db_serve(rf.get("/"), stored(), as_attachment=True)
    assert response["Content-Disposition"].startswith("attachment;")


def test_utf8_text_is_sent_with_its_charset(client):
    response = get(client, stored("Grüße\n".encode(), name="note.txt"))
    assert response["Content-Type"] == "text/plain; charset=utf-8"


def test_text_that_was_not_utf8_is_sent_without_a_charset(client):
    response = get(client, stored("Grüße\n".encode("latin-1"), name="note.txt"))
    assert response["Content-Type"] == "text/plain"


def test_every_answer_forbids_sniffing_running_and_shared_caching(client):
    name = stored()
    for response in (get(client, name), get(client, name, If_None_Match="*")):
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response["Content-Security-Policy"]
        assert response["Cache-Control"] == "private"


# -- names -------------------------------------------------------------------------------


def test_the_download_carries_the_original_name(client):
    response = get(client, stored(name="Rechnung März 2026 (final).pdf"))
    assert response["Content-Disposition"] == (
        'inline; filename="Rechnung Marz 2026 (final).pdf"; '
        "filename*=UTF-8''Rechnung%20M%C3%A4rz%202026%20%28final%29.pdf"
    )


def test_download_name_overrides_the_original_name(rf):
    from warehouse.views import db_serve

    response = db_serve(rf.get("/"), stored(), download_name="other.pdf")
    assert response["Content-Disposition"] == 'inline; filename="other.pdf"'


@pytest.mark.parametrize(
    "name", ['a"b.pdf', "a\r\nSet-Cookie: x=1.pdf", "../../etc/passwd", "a\\b.pdf", "a;b.pdf"]
)
def test_quotes_line_breaks_and_separators_never_reach_the_header(name):
    header = content_disposition(name, inline=False)
    fallback = re.fullmatch(r'attachment; filename="([^"]*)"(; filename\*=UTF-8\'\'(\S*))?', header)
    assert fallback is not None, header
    assert not {"\r", "\n", "/", "\\", ";"} & set(fallback[1])
    assert not {"\r", "\n", '"', ";", "/", "\\", " "} & set(fallback[3] or "")


# -- ownership ---------------------------------------------------------------------------


def test_the_owner_downloads_through_the_one_call_form(client):
    invoice = InvoiceFactory(data__data=b"mine")
    client.force_login(invoice.owner)
    response = client.get(f"/owned/{invoice.data.name}")
    assert response.status_code == 200
    assert body(response) == b"mine"


def test_a_stranger_gets_404_from_the_one_call_form(client):
    invoice = InvoiceFactory(data__data=b"not yours")
    client.force_login(UserFactory())
    assert client.get(f"/owned/{invoice.data.name}").status_code == 404


def test_a_name_with_another_extension_is_not_the_owned_name(client):
    invoice = InvoiceFactory()
    client.force_login(invoice.owner)
    other = invoice.data.name.replace(".pdf", ".html")
    assert client.get(f"/owned/{other}").status_code == 404


@pytest.mark.parametrize(
    "path", ["16384.pdf%00", "%00", "1" * 300, "16384%2F..%2Fx", "١٦٣٨٤.pdf", "16384.pdf%0d%0a"]
)
def test_hostile_names_are_404_in_the_one_call_form(client, path):
    client.force_login(UserFactory())
    assert client.get(f"/owned/{path}").status_code == 404


def test_other_methods_are_405_with_allow(client):
    response = client.post(f"/serve/{stored()}")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


# -- transactions held by a download -------------------------------------------------------


@pytest.fixture
def short_windows(monkeypatch):
    """Every chunk in a window of its own."""
    monkeypatch.setattr(streams, "WINDOW_SECONDS", 0)


def package_transactions_open() -> int:
    with connections["replica"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%%'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_a_slow_client_is_waited_for_with_no_transaction_open(client):
    content = os.urandom(LONGER_THAN_READ_AHEAD)
    chunks = iter(get(client, stored(content)).streaming_content)
    first = next(chunks)
    time.sleep(streams.SLOW_CLIENT_SECONDS * 10)  # the reader is waiting for room ahead
    assert package_transactions_open() == 0
    assert first + b"".join(chunks) == content


@pytest.mark.django_db(transaction=True)
def test_a_download_that_outlives_its_window_sends_every_byte_in_order(client, short_windows):
    content = os.urandom(LONGER_THAN_READ_AHEAD)
    chunks = iter(get(client, stored(content)).streaming_content)
    first = next(chunks)
    time.sleep(streams.SLOW_CLIENT_SECONDS * 2)
    assert first + b"".join(chunks) == content


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_a_file_rewritten_during_a_download_ends_it_rather_than_mix_bytes(client, short_windows):
    name = stored(b"a" * LONGER_THAN_READ_AHEAD)
    chunks = iter(get(client, name).streaming_content)
    received = next(chunks)
    with db_file_storage.open(name, "r+b") as file:
        file.write(b"b" * LONGER_THAN_READ_AHEAD)
    with pytest.raises(streams.ObjectChangedError):
        for chunk in chunks:  # chunks read before the rewrite may still come first
            received += chunk
    assert set(received) == {ord("a")}
    assert package_transactions_open() == 0


@pytest.mark.django_db(transaction=True)
def test_an_unregistered_file_rewritten_during_a_download_is_sent_as_it_was(client, make_object):
    loid = make_object(b"a" * (3 * streams.STREAM_CHUNK_SIZE))
    chunks = iter(get(client, str(loid)).streaming_content)
    first = next(chunks)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT lo_put(%s, 0, %s)", [loid, b"b" * (3 * streams.STREAM_CHUNK_SIZE)])
    assert first + b"".join(chunks) == b"a" * (3 * streams.STREAM_CHUNK_SIZE)


@pytest.mark.django_db(transaction=True)
def test_a_file_deleted_after_the_view_answered_is_sent_as_it_was_checked(client):
    content = os.urandom(2 * streams.STREAM_CHUNK_SIZE)
    name = stored(content)
    response = get(client, name)
    db_file_storage.delete(name)
    assert b"".join(response.streaming_content) == content  # the first window's snapshot
    assert oid_of(name) not in large_object_oids()


@pytest.mark.django_db(transaction=True)
def test_a_file_deleted_during_a_download_ends_it_in_its_next_window(client, short_windows):
    content = os.urandom(LONGER_THAN_READ_AHEAD)
    name = stored(content)
    chunks = iter(get(client, name).streaming_content)
    received = next(chunks)
    db_file_storage.delete(name)
    with pytest.raises(FileNotFoundError):
        for chunk in chunks:  # chunks read before the delete may still come first
            received += chunk
    assert content.startswith(received)


def the_check_followed_by(monkeypatch, change) -> None:
    """Commit ``change(loid)`` right after a download's registry check, once."""
    from warehouse import registry

    checked = registry.facts

    def facts_then_changed(connection, loid):
        found = checked(connection, loid)
        monkeypatch.setattr(registry, "facts", checked)
        change(loid)
        return found

    monkeypatch.setattr(registry, "facts", facts_then_changed)


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
def test_a_small_file_unlinked_right_after_the_check_is_sent_as_checked(client, monkeypatch):
    name = stored(CONTENT)

    def unlinked_by_someone_else(loid):
        with connections["replica"].cursor() as cursor:
            cursor.execute("SELECT lo_unlink(%s)", [loid])

    the_check_followed_by(monkeypatch, unlinked_by_someone_else)
    response = get(client, name)
    assert (response.status_code, response.content) == (200, CONTENT)


@pytest.mark.django_db(transaction=True)
def test_a_rewrite_committed_right_after_the_check_is_not_what_is_sent(client, monkeypatch):
    old, new = b"old " * 1000, b"new " * 1000
    name = stored(old)

    def rewritten(loid):
        with db_file_storage.open(name, "r+b") as file:
            file.write(new)

    the_check_followed_by(monkeypatch, rewritten)
    response = get(client, name)
    assert response.content == old
    assert response["ETag"] == f'"{hashlib.sha256(old).hexdigest()}"'
