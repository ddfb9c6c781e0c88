"""A proxy between the package and PostgreSQL that counts round trips at the protocol.

``assertNumQueries`` sees only what goes through Django's cursors: not the
large-object calls (libpq's fast-path ``F`` messages), nor the ``BEGIN``
psycopg2 sends by itself. Every message a client sends that waits for the
server's ``ReadyForQuery`` is one round trip: a simple query (``Q``), a
function call (``F``) or the ``Sync`` (``S``) that ends an extended query.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

ROUND_TRIP_MESSAGES = frozenset(b"QFS")
_NEGOTIATIONS = {80877103, 80877104}  # SSLRequest, GSSENCRequest: still before the startup


class CountingProxy:
    """Listens on 127.0.0.1 and forwards to one PostgreSQL server, counting round trips."""

    def __init__(self, host: str, port: str | int | None) -> None:
        port = int(port or 5432)
        if not host or host.startswith("/"):
            self._upstream: Any = f"{host or '/var/run/postgresql'}/.s.PGSQL.{port}"
            self._family = socket.AF_UNIX
        else:
            self._upstream, self._family = (host, port), socket.AF_INET
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.messages: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def round_trips(self) -> int:
        with self._lock:
            return sum(1 for kind in self.messages if ord(kind) in ROUND_TRIP_MESSAGES)

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                server = socket.socket(self._family, socket.SOCK_STREAM)
                server.connect(self._upstream)
                threading.Thread(
                    target=self._client_to_server, args=(client, server), daemon=True
                ).start()
                threading.Thread(target=_pipe, args=(server, client), daemon=True).start()

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        buffer, started = b"", False
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                server.sendall(data)
                buffer += data
                while True:
                    if not started:
                        if len(buffer) < 8 or len(buffer) < int.from_bytes(buffer[:4], "big"):
                            break
                        length = int.from_bytes(buffer[:4], "big")
                        started = int.from_bytes(buffer[4:8], "big") not in _NEGOTIATIONS
                        buffer = buffer[length:]
                        continue
                    if len(buffer) < 5 or len(buffer) < 1 + int.from_bytes(buffer[1:5], "big"):
                        break
                    with self._lock:
                        self.messages.append(chr(buffer[0]))
                    buffer = buffer[1 + int.from_bytes(buffer[1:5], "big") :]
        _close(client, server)


def _pipe(source: socket.socket, destination: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            destination.sendall(data)
    _close(source, destination)


def _close(*sockets: socket.socket) -> None:
    for each in sockets:
        with contextlib.suppress(OSError):
            each.shutdown(socket.SHUT_RDWR)
        each.close()


@contextlib.contextmanager
def package_connections_through(proxy_for: dict[str, Any]) -> Iterator[CountingProxy]:
    """Route the connections the package opens from now on (not the caller's) through a proxy.

    ``proxy_for`` is the alias's live settings dict, shared with every
    connection made from it; the caller's open connection keeps its socket.
    """
    from warehouse import connections as own_connections

    proxy = CountingProxy(proxy_for["HOST"], proxy_for["PORT"])
    saved = {key: proxy_for[key] for key in ("HOST", "PORT", "OPTIONS")}
    own_connections.close_all()
    proxy_for.update(
        HOST="127.0.0.1",
        PORT=str(proxy.port),
        OPTIONS={**proxy_for["OPTIONS"], "sslmode": "disable", "gssencmode": "disable"},
    )
    try:
        yield proxy
    finally:
        proxy_for.update(saved)
        own_connections.close_all()
        proxy.close()
