"""db_serve during a move: a previous storage's file, with the checks and headers of any."""

import pytest
from asgiref.sync import async_to_sync
from django.http import Http404
from django.test import AsyncClient
from django.utils.http import http_date

from tests.factories import ReceiptOnDiskFactory
from tests.models import Receipt
from warehouse.streams import STREAM_CHUNK_SIZE
from warehouse.views import db_serve

pytestmark = pytest.mark.django_db

CONTENT = bytes(range(256)) * 4  # 1 KiB
LARGE = bytes(range(256)) * (3 * STREAM_CHUNK_SIZE // 256 + 7)  # streamed, several chunks


def on_disk(content: bytes = CONTENT, filename: str = "scan.pdf", **fields) -> str:
    """Save a receipt the way the site did before the move; return the URL of its file now."""
    receipt = ReceiptOnDiskFactory(file__filename=filename, file__data=content, **fields)
    return Receipt.objects.get(pk=receipt.pk).file.url


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_a_previous_storage_file_is_served_whole(client, previous_storage):
    response = client.get(on_disk())
    assert response.status_code == 200
    assert body(response) == CONTENT
    assert (response["Content-Length"], response["Accept-Ranges"]) == ("1024", "bytes")


def test_it_gets_the_security_headers_of_every_download(client, previous_storage):
    response = client.get(on_disk())
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["Cache-Control"] == "private"


def test_its_type_and_download_name_come_from_its_own_name(client, previous_storage):
    response = client.get(on_disk(filename="scan.pdf"))
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="scan.pdf"'


def test_active_content_is_sent_as_bytes_to_download(client, previous_storage):
    response = client.get(on_disk(b"<script>alert(1)</script>", filename="page.html"))
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'


def test_a_range_of_it_is_206_with_exactly_those_bytes(client, previous_storage):
    response = client.get(on_disk(), headers={"Range": "bytes=1000-"})
    assert response.status_code == 206
    assert response["Content-Range"] == "bytes 1000-1023/1024"
    assert body(response) == CONTENT[1000:]


def test_a_large_one_is_streamed_byte_for_byte(client, previous_storage):
    response = client.get(on_disk(LARGE))
    assert response.streaming
    assert body(response) == LARGE


def test_a_range_of_a_large_one_is_streamed_exactly(client, previous_storage):
    end = 300000 + 2 * STREAM_CHUNK_SIZE  # longer than a chunk
    response = client.get(on_disk(LARGE), headers={"Range": f"bytes=300000-{end}"})
    assert (response.status_code, response.streaming) == (206, True)
    assert body(response) == LARGE[300000 : end + 1]


def test_under_asgi_a_large_one_is_streamed_byte_for_byte(previous_storage):
    url = on_disk(LARGE)

    async def fetch():
        response = await AsyncClient().get(url)
        assert response.is_async
        return b"".join([chunk async for chunk in response.streaming_content])

    assert async_to_sync(fetch)() == LARGE


def test_it_is_validated_by_its_modification_time(client, previous_storage):
    url = on_disk()
    last_modified = client.get(url)["Last-Modified"]
    response = client.get(url, headers={"If-Modified-Since": last_modified})
    assert response.status_code == 304
    assert "ETag" not in response


def test_a_file_changed_since_is_sent_again(client, previous_storage):
    url = on_disk()
    response = client.get(url, headers={"If-Modified-Since": http_date(0)})
    assert response.status_code == 200


def test_a_row_outside_the_queryset_is_404(client, previous_storage):
    assert client.get(on_disk(title="secret")).status_code == 404


def test_a_file_no_row_names_is_404_though_the_previous_storage_has_it(client, previous_storage):
    url = on_disk()
    (previous_storage / "receipts" / "other.pdf").write_bytes(CONTENT)
    assert client.get(url.rsplit("/", 2)[0] + "/other.pdf").status_code == 404


def test_a_file_gone_from_the_previous_storage_is_404(client, previous_storage):
    url = on_disk()
    for file in previous_storage.rglob("*.pdf"):
        file.unlink()
    assert client.get(url).status_code == 404


def test_without_a_previous_storage_such_a_name_is_404_as_before(
    client, previous_storage, settings
):
    url = on_disk()
    settings.WAREHOUSE_PREVIOUS_STORAGE = None
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(
    "name", ["../outside.txt", "receipts/../../outside.txt", "/etc/hostname", "a" * 5000]
)
def test_a_name_the_previous_storage_cannot_look_up_is_404(rf, previous_storage, name):
    previous_storage.mkdir()
    (previous_storage.parent / "outside.txt").write_bytes(b"secret")
    with pytest.raises(Http404):
        db_serve(rf.get("/"), name)
