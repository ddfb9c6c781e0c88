"""A large multipart upload through a real server: Django's upload handlers against the package's.

gunicorn (one sync worker) on 127.0.0.1 serves benchmarks/serving_site.py,
whose ``/upload`` saves the request's file to ``DbFileStorage``. ``curl``
posts the same file, in turns, to the server run with Django's default
handlers (the upload goes to a temporary file, then is copied into a large
object) and with ``warehouse.uploads.DbFileUploadHandler`` (the body goes
straight into the large object). Printed per handler: the median time,
its ratio to Django's per repetition, and the peak of the temporary
directory during the upload.

    python benchmarks/uploads.py [--size-mib 512] [--repetitions 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

import serving  # noqa: E402

MIB = 1024**2


def directory_size(path: Path) -> int:
    total = 0
    for entry in path.iterdir():
        with contextlib.suppress(FileNotFoundError):  # moved or deleted meanwhile
            total += entry.stat().st_size
    return total


def post(server: serving.Server, source: Path, temp_dir: Path) -> tuple[float, int, str]:
    """Seconds for one upload, the temporary directory's peak in bytes, the stored name."""
    peak, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], directory_size(temp_dir))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.perf_counter()
    result = subprocess.run(
        ["curl", "--silent", "--fail", "-F", f"file=@{source}",
         f"http://127.0.0.1:{server.port}/upload"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    done.set()
    watcher.join()
    return elapsed, peak[0], result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    from dev_database import embedded_server_url

    url = os.environ.get("DATABASE_URL") or embedded_server_url(REPO / ".pgdata" / "bench")
    serving.configure(url)
    from warehouse.storage import db_file_storage

    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "upload.bin"
        with source.open("wb") as file:
            for block in serving.generated(args.size_mib * MIB).chunks():
                file.write(block)
        servers, temp_dirs = {}, {}
        for handlers in ("django", "warehouse"):
            temp_dirs[handlers] = Path(work) / f"tmp-{handlers}"
            temp_dirs[handlers].mkdir()
            env = {"UPLOAD_HANDLERS": handlers, "FILE_UPLOAD_TEMP_DIR": str(temp_dirs[handlers])}
            servers[handlers] = serving.Server("gunicorn", url, env)
        times: dict[str, list[float]] = {"django": [], "warehouse": []}
        peaks: dict[str, int] = {"django": 0, "warehouse": 0}
        try:
            for _ in range(args.repetitions):
                for handlers, server in servers.items():  # in turns
                    elapsed, peak, name = post(server, source, temp_dirs[handlers])
                    assert db_file_storage.size(name) == args.size_mib * MIB
                    db_file_storage.delete(name)
                    times[handlers].append(elapsed)
                    peaks[handlers] = max(peaks[handlers], peak)
        finally:
            for server in servers.values():
                server.stop()
    speedups = [d / w for d, w in zip(times["django"], times["warehouse"], strict=True)]
    for handlers in ("django", "warehouse"):
        print(
            f"{handlers}: {args.size_mib} MiB upload in {statistics.median(times[handlers]):.2f} s "
            f"(min {min(times[handlers]):.2f}, max {max(times[handlers]):.2f}), temporary "
            f"disk peak {peaks[handlers] / MIB:.0f} MiB"
        )
    print(
        f"DbFileUploadHandler: {statistics.median(speedups):.2f}x as fast as Django's handlers "
        f"(target >= 1.5; per repetition {', '.join(f'{r:.2f}' for r in speedups)}), "
        f"temporary disk {peaks['warehouse']} bytes (target 0)"
    )
    if args.json:
        args.json.write_text(json.dumps({"seconds": times, "temp_peak_bytes": peaks}, indent=2))


if __name__ == "__main__":
    main()
