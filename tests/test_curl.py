"""curl against a real HTTP server on 127.0.0.1: whole files, ranges, and a resumed download."""

import hashlib
import shutil
import subprocess

import pytest
from django.core.files.base import ContentFile

from warehouse.storage import db_file_storage

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]

CONTENT = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)  # 8 MiB, no repeats to hide


@pytest.fixture
def url(live_server):
    name = db_file_storage.save("big.bin", ContentFile(CONTENT))
    return f"{live_server.url}/serve/{name}"


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["curl", "--silent", "--show-error", *args], capture_output=True, timeout=60
    )


def test_curl_downloads_the_whole_file(url, tmp_path):
    assert curl("--fail", "-o", str(tmp_path / "out"), url).returncode == 0
    assert (tmp_path / "out").read_bytes() == CONTENT


def test_curl_downloads_a_range(url, tmp_path):
    assert (
        curl("--fail", "-r", "1000000-1999999", "-o", str(tmp_path / "part"), url).returncode == 0
    )
    assert (tmp_path / "part").read_bytes() == CONTENT[1000000:2000000]


def test_curl_resumes_a_cut_off_download(url, tmp_path):
    target = tmp_path / "resumed"
    # What a cut-off download leaves: its first bytes. Cut by a range, since neither
    # curl's --limit-rate with --max-time (all 8 MiB once came within 3 s at 512 KB/s,
    # the kernel's socket buffers taking them) nor a timer cuts it reliably.
    assert curl("--fail", "-r", "0-999999", "-o", str(target), url).returncode == 0
    assert target.stat().st_size == 1000000
    assert curl("--fail", "-C", "-", "-o", str(target), url).returncode == 0
    assert target.read_bytes() == CONTENT
