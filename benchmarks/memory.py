"""Save and read back a large file through DbFileStorage; print peak memory and speed.

Memory is the process's peak resident set (ru_maxrss), against the same
process measured just before the first byte is stored. Speed is compared
with FileSystemStorage moving the same bytes in the same run, so the ratio
says what keeping files in PostgreSQL costs on this machine.

    python benchmarks/memory.py --size-mib 512
"""

from __future__ import annotations

import argparse
import hashlib
import io
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import django
from django.conf import settings

REPO = Path(__file__).resolve().parent.parent
BLOCK = 1024**2  # bytes: what the generated upload yields at a time
MIB = 1024**2


def configure() -> None:
    sys.path.insert(0, str(REPO))
    from warehouse.testing import database_settings

    settings.configure(
        DATABASES={"default": database_settings(REPO / ".pgdata" / "bench")},
        INSTALLED_APPS=["warehouse"],
        USE_TZ=True,
    )
    django.setup()
    from django.core.management import call_command

    # The registry's table: every save records a row in it.
    call_command("migrate", "warehouse", verbosity=0)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is in KiB


def generated_upload(size: int):
    """A Django File that makes its bytes while being read: the source holds nothing."""
    from django.core.files.base import File

    class GeneratedUpload(File):
        def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
            for start in range(0, size, BLOCK):
                yield start.to_bytes(8, "big") * (BLOCK // 8)

    return GeneratedUpload(io.BytesIO(), name="big.bin")


def round_trip(storage, size: int) -> tuple[float, float, str]:
    """Save then read back; return (save seconds, read seconds, sha256 of what was read)."""
    started = time.perf_counter()
    name = storage.save("big.bin", generated_upload(size))
    saved = time.perf_counter()
    digest = hashlib.sha256()
    with storage.open(name) as file:
        for chunk in file.chunks():
            digest.update(chunk)
    read = time.perf_counter()
    storage.delete(name)
    return saved - started, read - saved, digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    size = parser.parse_args().size_mib * MIB

    configure()
    from django.core.files.storage import FileSystemStorage

    from warehouse.storage import db_file_storage

    expected = hashlib.sha256()
    for chunk in generated_upload(size).chunks():
        expected.update(chunk)

    before = peak_rss_mib()
    db_save, db_read, db_digest = round_trip(db_file_storage, size)
    after = peak_rss_mib()
    with tempfile.TemporaryDirectory() as directory:
        fs_save, fs_read, fs_digest = round_trip(FileSystemStorage(directory), size)

    assert db_digest == expected.hexdigest() == fs_digest, "bytes read back differ"
    mib = size / MIB
    print(f"file: {mib:.0f} MiB, read back identical (sha256 {db_digest[:16]}...)")
    print(f"peak RSS before: {before:.1f} MiB, after DbFileStorage: {after:.1f} MiB")
    print(f"peak RSS growth while storing and reading: {after - before:.1f} MiB")
    for what, db, fs in (("save", db_save, fs_save), ("read", db_read, fs_read)):
        print(
            f"{what}: DbFileStorage {mib / db:.0f} MiB/s, FileSystemStorage {mib / fs:.0f} MiB/s, "
            f"ratio {fs / db:.2f}x the speed of the filesystem"
        )


if __name__ == "__main__":
    main()
