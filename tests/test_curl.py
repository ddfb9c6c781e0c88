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
    # 8 MiB at 512 KB/s takes 16 s: cut off by --max-time well before the end, even if
    # curl's limiter lets a burst through (a 2 MB/s limit once let all of it through),
    # and after the first bytes even on a busy machine (1 s once gave none).
    cut = curl("--fail", "--limit-rate", "512K", "--max-time", "3", "-o", str(target), url)
    assert cut.returncode == 28  # cut off by --max-time
    assert 0 < target.stat().st_size < len(CONTENT)
    assert curl("--fail", "-C", "-", "-o", str(target), url).returncode == 0
    assert target.read_bytes() == CONTENT
