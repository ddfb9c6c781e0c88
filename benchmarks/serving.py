"""db_serve through real servers on 127.0.0.1: a large download, its memory, small requests.

For gunicorn (WSGI) and uvicorn (ASGI), each serving benchmarks/serving_site.py:

* a large download's throughput, against raw psycopg2 ``lobject`` reads of
  the same object at the best of three chunk sizes, measured in this run
  (the issue's ceiling), and against a bare relay: the same reads sent to
  the same client over a plain socket by a few lines of Python, with a
  reader thread and no framework (what any psycopg2 server could reach on
  this machine, where PostgreSQL, the server and the client share the cores);
* the server's peak memory (all its processes) during that download, above
  its memory when idle;
* 1 KiB requests per second, against the same server sending the same bytes
  from a model's ``BinaryField``, in turns.

    python benchmarks/serving.py [--size-mib 512] [--requests 500] [--repetitions 3]

Needs gunicorn and uvicorn (``pip install gunicorn uvicorn``).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import django
import psutil
from django.conf import settings

REPO = Path(__file__).resolve().parent.parent
MIB = 1024**2
BLOCK = MIB  # bytes the generated upload yields at a time
SMALL = os.urandom(1024)
RAW_CHUNKS = (256 * 1024, MIB, 4 * MIB)  # bytes per lobject.read() of the baseline


def configure(url: str) -> None:
    settings.configure(
        DATABASES={"default": {**_settings_from_url(url)}},
        INSTALLED_APPS=["warehouse"],
        USE_TZ=True,
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", "warehouse", verbosity=0)


def _settings_from_url(url: str) -> dict:
    from dev_database import settings_from_url

    return settings_from_url(url)


def generated(size: int):
    from django.core.files.base import File

    class Generated(File):
        def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
            for start in range(0, size, BLOCK):
                yield hashlib.sha256(start.to_bytes(8, "big")).digest() * (BLOCK // 32)

    return Generated(io.BytesIO(), name="big.bin")


def raw_read_mib_s(url: str, loid: int, size: int) -> dict[int, float]:
    """The ceiling: psycopg2 lobject reads in one transaction, per chunk size."""
    import psycopg2

    from warehouse.io import PREPARING_FACTOR

    speeds = {}
    with psycopg2.connect(url) as connection:
        # As warehouse.io.read_size_to_ask(): the backend's first read asks for four times
        # the largest chunk, or every read after it grows and trims the backend's heap again.
        connection.lobject(loid, "rb").read(PREPARING_FACTOR * max(RAW_CHUNKS))
        connection.rollback()
        for chunk in RAW_CHUNKS:
            started = time.perf_counter()
            lobject = connection.lobject(loid, "rb")
            while lobject.read(chunk):
                pass
            lobject.close()
            connection.rollback()
            speeds[chunk] = size / MIB / (time.perf_counter() - started)
    return speeds


def relay_mib_s(url: str, loid: int, size: int, chunk: int) -> float:
    """A bare relay: lobject reads sent by a reader thread and a socket, received by curl."""
    import psycopg2

    from warehouse.io import PREPARING_FACTOR

    connection = psycopg2.connect(url)
    connection.lobject(loid, "rb").read(PREPARING_FACTOR * chunk)  # as the raw reads are
    connection.rollback()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(60)  # a curl that never connected does not leave the relay waiting

    def serve() -> None:
        client, _ = listener.accept()
        with client:
            client.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
            client.sendall(head.encode())
            ahead: queue.Queue[bytes] = queue.Queue(4)  # as warehouse.streams.READ_AHEAD_CHUNKS

            def read() -> None:
                lobject = connection.lobject(loid, "rb")
                while data := lobject.read(chunk):
                    ahead.put(data)
                ahead.put(b"")

            reader = threading.Thread(target=read)
            reader.start()
            while data := ahead.get():
                client.sendall(data)
            reader.join()

    server = threading.Thread(target=serve)
    server.start()
    try:
        elapsed = _curl(f"http://127.0.0.1:{listener.getsockname()[1]}/", size)
    finally:
        server.join()
        listener.close()
        connection.close()
    return size / MIB / elapsed


def _curl(url: str, size: int) -> float:
    """Seconds curl took to receive ``size`` bytes from ``url``: a client in C."""
    result = subprocess.run(
        ["curl", "--silent", "--fail", "--output", "/dev/null", "--write-out",
         "%{size_download} %{time_total}", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    received, elapsed = result.stdout.split()
    assert int(received) == size, (received, size)
    return float(elapsed)


class Server:
    """A server process on 127.0.0.1 and the memory of it and its children."""

    def __init__(self, kind: str, url: str, env: dict[str, str] | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        if kind == "gunicorn":
            command = [
                "gunicorn",
                "--chdir",
                str(REPO / "benchmarks"),
                "-w",
                "1",
                "-b",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "600",
                "serving_site:application",
            ]
        else:
            command = ["uvicorn", "--app-dir", str(REPO / "benchmarks"), "--host", "127.0.0.1",
                       "--port", str(self.port), "--log-level", "warning",
                       "serving_site:asgi_application"]  # fmt: skip
        env = {**os.environ, **(env or {}), "DATABASE_URL": url, "PYTHONPATH": str(REPO)}
        if kind == "uvicorn":
            env["CONN_MAX_AGE"] = "0"  # Django: no persistent connections under ASGI
        binary = Path(sys.executable).parent / command[0]
        self.process = subprocess.Popen([str(binary), *command[1:]], env=env)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"{kind} did not start"
                time.sleep(0.1)

    def processes(self) -> list[psutil.Process]:
        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True)]

    def rss(self) -> int:
        return sum(p.memory_info().rss for p in self.processes())

    def get(self, path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, body

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def download(server: Server, name: str, size: int, warm_up: str) -> tuple[float, float]:
    """MiB/s of one whole download, and the server's peak memory above idle in MiB.

    One small request first: a worker's first request imports views and opens
    connections, which is neither throughput nor memory of a download.
    """
    server.get(warm_up)
    idle, peak, done = server.rss(), [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], server.rss())
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        elapsed = _curl(f"http://127.0.0.1:{server.port}/file/{name}", size)
    finally:
        done.set()
        watcher.join()
    return size / MIB / elapsed, (peak[0] - idle) / MIB


def requests_per_second(server: Server, path: str, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        status, body = server.get(path)
        assert status == 200 and body == SMALL, status
    return count / (time.perf_counter() - started)


def measure_server(
    kind: str, url: str, big: str, small: str, size: int, args: argparse.Namespace
) -> dict:
    """Downloads against raw reads and a bare relay, then small files against a BinaryField."""
    from warehouse.storage import oid_of
    from warehouse.streams import STREAM_CHUNK_SIZE

    server = Server(kind, url)
    try:
        speeds, raws, relays, memories = [], [], [], []
        for _ in range(args.download_repetitions):
            # The ceilings measured right before, so that the machine's mood hits all three.
            raws.append(max(raw_read_mib_s(url, oid_of(big), size).values()))
            relays.append(relay_mib_s(url, oid_of(big), size, STREAM_CHUNK_SIZE))
            speed, memory = download(server, big, size, warm_up=f"/file/{small}")
            speeds.append(speed)
            memories.append(memory)
        files, blobs = [], []
        for _ in range(args.repetitions):
            files.append(requests_per_second(server, f"/file/{small}", args.requests))
            blobs.append(requests_per_second(server, "/blob/1", args.requests))
    finally:
        server.stop()
    to_raw = [speed / raw for speed, raw in zip(speeds, raws, strict=True)]
    to_relay = [speed / relay for speed, relay in zip(speeds, relays, strict=True)]
    to_blob = [file / blob for file, blob in zip(files, blobs, strict=True)]
    print(
        f"{kind}: {args.size_mib} MiB download {statistics.median(speeds):.0f} MiB/s "
        f"= {statistics.median(to_raw):.2f}x raw lobject reads at their best chunk size "
        f"(median {statistics.median(raws):.0f} MiB/s; target >= 0.8; per repetition "
        f"{_listed(to_raw)}) = {statistics.median(to_relay):.2f}x a bare relay (median "
        f"{statistics.median(relays):.0f} MiB/s; per repetition {_listed(to_relay)}); "
        f"server peak memory +{max(memories):.1f} MiB (target < 64); 1 KiB: "
        f"{statistics.median(files):.0f} req/s vs BinaryField {statistics.median(blobs):.0f} "
        f"req/s = {statistics.median(to_blob):.2f}x (target >= 0.7; per repetition "
        f"{_listed(to_blob)})"
    )
    return {
        "download_mib_s": speeds,
        "raw_read_mib_s": raws,
        "bare_relay_mib_s": relays,
        "download_vs_raw": to_raw,
        "download_vs_bare_relay": to_relay,
        "peak_memory_above_idle_mib": max(memories),
        "small_file_requests_per_s": files,
        "binaryfield_requests_per_s": blobs,
        "small_vs_binaryfield": to_blob,
    }


def _listed(ratios: list[float]) -> str:
    return ", ".join(f"{ratio:.2f}" for ratio in ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--repetitions", type=int, default=5, help="of the 1 KiB comparison")
    parser.add_argument("--download-repetitions", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    size = args.size_mib * MIB

    sys.path.insert(0, str(REPO))
    from dev_database import embedded_server_url

    url = os.environ.get("DATABASE_URL") or embedded_server_url(REPO / ".pgdata" / "bench")
    configure(url)
    from django.core.files.base import ContentFile
    from django.db import connection

    from warehouse.storage import db_file_storage

    big = db_file_storage.save("big.bin", generated(size))
    small = db_file_storage.save("small.pdf", ContentFile(SMALL))
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS warehouse_benchmark_blob (id int PRIMARY KEY, data bytea)"
        )
        cursor.execute(
            "INSERT INTO warehouse_benchmark_blob VALUES (1, %s) "
            "ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data",
            [SMALL],
        )
    results: dict = {"size_mib": args.size_mib}
    try:
        for kind in ("gunicorn", "uvicorn"):
            results[kind] = measure_server(kind, url, big, small, size, args)
    finally:
        db_file_storage.delete(big)
        db_file_storage.delete(small)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
