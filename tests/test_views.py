"""db_serve streams a stored file; the seed's serve example guards it by owner."""

import os
import urllib.error
import urllib.request

import pytest
from asgiref.sync import async_to_sync
from django.core.files.base import ContentFile
from django.db import connections
from django.test import AsyncClient

from tests.conftest import transaction_state
from tests.factories import InvoiceFactory, UserFactory
from warehouse.storage import db_file_storage
from warehouse.views import STREAM_CHUNK_SIZE

pytestmark = pytest.mark.django_db

MISSING = f"{2**32 - 1}.pdf"


def stored(content: bytes = b"%PDF-1.7 body", name: str = "x.pdf") -> str:
    return db_file_storage.save(name, ContentFile(content))


def test_it_sends_a_small_file_whole_from_the_view(client):
    response = client.get(f"/serve/{stored(b'the bytes')}")
    assert response.status_code == 200
    assert not response.streaming
    assert response.content == b"the bytes"


def test_it_streams_a_file_larger_than_a_chunk(client):
    content = b"x" * (STREAM_CHUNK_SIZE + 1)
    response = client.get(f"/serve/{stored(content)}")
    assert response.streaming
    assert b"".join(response.streaming_content) == content


def test_it_sends_the_length(client):
    response = client.get(f"/serve/{stored(b'12345')}")
    assert response["Content-Length"] == "5"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("x.pdf", "application/pdf"), ("x.png", "image/png"), ("x", "application/octet-stream")],
)
def test_it_guesses_the_content_type_from_the_extension(client, name, content_type):
    response = client.get(f"/serve/{stored(name=name)}")
    assert response["Content-Type"] == content_type


def test_it_forbids_sniffing_and_active_content(client):
    response = client.get(f"/serve/{stored()}")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def test_it_keeps_private_files_out_of_shared_caches(client):
    assert client.get(f"/serve/{stored()}")["Cache-Control"] == "private"


def test_it_streams_in_bounded_chunks_after_a_backends_first_read(client, fresh_backends):
    content = os.urandom(6 * STREAM_CHUNK_SIZE + 1)
    chunks = list(client.get(f"/serve/{stored(content)}").streaming_content)
    # The first read of a backend asks for several chunks (warehouse.io.read_size_to_ask).
    assert max(len(chunk) for chunk in chunks) <= STREAM_CHUNK_SIZE
    assert b"".join(chunks) == content


def test_a_range_short_of_the_end_is_never_read_past(client, fresh_backends):
    content = os.urandom(6 * STREAM_CHUNK_SIZE)
    end = 2 * STREAM_CHUNK_SIZE + 10
    response = client.get(f"/serve/{stored(content)}", HTTP_RANGE=f"bytes=10-{end}")
    chunks = list(response.streaming_content)
    assert max(len(chunk) for chunk in chunks) <= STREAM_CHUNK_SIZE
    assert b"".join(chunks) == content[10 : end + 1]


def test_a_missing_object_is_404(client):
    assert client.get(f"/serve/{MISSING}").status_code == 404


@pytest.mark.parametrize("name", ["abc.pdf", "-1", "0", "016384", str(2**32), "1.a.b"])
def test_a_malformed_name_is_404(client, name):
    assert client.get(f"/serve/{name}").status_code == 404


def test_head_sends_the_headers_without_the_body(client):
    response = client.head(f"/serve/{stored(b'12345')}")
    assert response.status_code == 200
    assert response["Content-Length"] == "5"
    assert response.content == b""


def test_head_under_asgi_sends_the_headers_without_the_body():
    name = stored(b"12345")

    async def fetch():
        return await AsyncClient().head(f"/serve/{name}")

    response = async_to_sync(fetch)()
    assert (response.status_code, response["Content-Length"]) == (200, "5")


def test_other_methods_are_not_allowed(client):
    assert client.post(f"/serve/{stored()}").status_code == 405


def test_the_owner_downloads_their_invoice(client):
    invoice = InvoiceFactory(data__data=b"mine")
    client.force_login(invoice.owner)
    response = client.get(f"/invoice/{invoice.data.name}")
    assert response.content == b"mine"


def test_another_user_gets_403(client):
    invoice = InvoiceFactory()
    client.force_login(UserFactory())
    assert client.get(f"/invoice/{invoice.data.name}").status_code == 403


def test_an_anonymous_user_is_sent_to_log_in(client):
    invoice = InvoiceFactory()
    assert client.get(f"/invoice/{invoice.data.name}").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_it_streams_after_an_atomic_request_has_committed(client):
    content = b"sent after the view's transaction " * STREAM_CHUNK_SIZE
    name = stored(content)
    connections["default"].settings_dict["ATOMIC_REQUESTS"] = True
    try:
        response = client.get(f"/serve/{name}")
    finally:
        connections["default"].settings_dict["ATOMIC_REQUESTS"] = False
    assert b"".join(response.streaming_content) == content
    response.close()
    assert transaction_state() == (True, False, [], 0, False)


@pytest.mark.django_db(transaction=True)
def test_a_download_abandoned_part_way_ends_its_transaction(client):
    response = client.get(f"/serve/{stored(b'x' * (2 * STREAM_CHUNK_SIZE))}")
    next(iter(response.streaming_content))
    response.close()
    assert transaction_state() == (True, False, [], 0, False)


def test_under_asgi_it_streams_through_an_async_iterator():
    content = b"async bytes " * STREAM_CHUNK_SIZE
    name = stored(content)

    async def fetch():
        response = await AsyncClient().get(f"/serve/{name}")
        assert response.is_async
        return b"".join([chunk async for chunk in response.streaming_content])

    assert async_to_sync(fetch)() == content


@pytest.mark.django_db(transaction=True)
def test_a_real_http_server_sends_the_file(live_server):
    content = bytes(range(256)) * 4096
    name = stored(content)
    with urllib.request.urlopen(f"{live_server.url}/serve/{name}") as response:
        assert response.headers["Content-Length"] == str(len(content))
        assert response.read() == content


@pytest.mark.django_db(transaction=True)
def test_a_real_http_server_answers_404_for_a_missing_file(live_server):
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{live_server.url}/serve/{MISSING}")
    assert error.value.code == 404
    error.value.close()


@pytest.mark.django_db(transaction=True)
def test_a_real_http_server_answers_head_without_a_body(live_server):
    # Whether the headers keep Content-Length is the server's business (Django 4.2's
    # development server drops it for HEAD); the test client checks what the view sends.
    name = stored(b"12345")
    request = urllib.request.Request(f"{live_server.url}/serve/{name}", method="HEAD")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
        assert response.read() == b""
