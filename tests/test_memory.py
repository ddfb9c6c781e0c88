"""Saving and reading a large file streams it: memory does not grow with the file."""

import hashlib
import io
import tracemalloc

import pytest
from django.core.files.base import File

from warehouse.storage import db_file_storage

pytestmark = pytest.mark.django_db

FILE_SIZE = 64 * 1024**2  # bytes
BLOCK = 1024**2  # bytes
# A few chunks and buffers, far below the file: a whole-file read would need 64 MiB.
PEAK_LIMIT = 8 * 1024**2  # bytes


class GeneratedUpload(File):
    """An upload that makes its bytes as they are read, so that only the storage holds any."""

    def __init__(self, size: int) -> None:
        super().__init__(io.BytesIO(), name="big.bin")
        self._size = size

    def chunks(self, chunk_size=None):
        for start in range(0, self._size, BLOCK):
            yield start.to_bytes(8, "big") * (BLOCK // 8)


def expected_digest(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in GeneratedUpload(size).chunks():
        digest.update(chunk)
    return digest.hexdigest()


def test_saving_and_reading_a_large_file_takes_bounded_memory():
    tracemalloc.start()
    try:
        name = db_file_storage.save("big.bin", GeneratedUpload(FILE_SIZE))
        digest = hashlib.sha256()
        with db_file_storage.open(name) as file:
            for chunk in file.chunks():
                digest.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == expected_digest(FILE_SIZE)
    assert peak < PEAK_LIMIT
