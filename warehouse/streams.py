"""Reading an object for a download, in windows of short transactions.

A download lasts as long as its client takes, and a transaction held that
long holds back VACUUM with its snapshot. So the bytes are read in windows:
a window is one transaction on the package's reading connection, ended once
it has read for ``WINDOW_SECONDS``, at the end of the range, and before a
chunk goes to a client that was slow (over ``SLOW_CLIENT_SECONDS``) to take
the previous one. Each later window first asks the registry whether the
object is still the one the download began with (size, SHA-256, time of
modification); if not, the download ends with an error rather than mix old
and new bytes. An unregistered object has nothing to compare, so it is read
in one transaction; so is an object read inside the caller's transaction.

Within a window, a helper thread reads the next chunk while the current one
is handed over, so that PostgreSQL and the server work side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from asgiref.sync import sync_to_async

from warehouse import registry, transactions
from warehouse.objects import file_errors

logger = logging.getLogger("warehouse.views")

# Large enough that a round trip per chunk costs little next to sending it.
STREAM_CHUNK_SIZE = 256 * 1024  # bytes
# How long one transaction may keep reading before the next window starts.
WINDOW_SECONDS = 1.0  # seconds
# A client slower than this to take a chunk gets every later chunk from a closed window.
SLOW_CLIENT_SECONDS = 0.05  # seconds


class ObjectChangedError(OSError):
    """The object was replaced or rewritten while it was being sent."""


class Download:
    """One object being served: where it is read, and what the registry says of it.

    Made in the view (the routing, the existence and privilege check and the
    registry's facts cost one query); the bytes are read when sent.
    """

    def __init__(self, loid: int) -> None:
        self.loid = loid
        self._seat, self.facts = transactions.for_reading(loid, probe=registry.facts)
        # Whether a window may end before the download does: not in the caller's
        # transaction, and only with a digest that tells a later window of changes.
        self._joined = self._seat.joined
        self._windowed = bool(self.facts.sha256) and not self._joined
        self._alias = self._seat.connection.alias
        self._lobject: Any = None
        self._at = 0  # where the open descriptor is
        self._window_began = time.monotonic()
        self._size = self.facts.size if self.facts.registered else None
        #: Whether a response body took the download over (and closes it when it ends).
        self.streaming = False
        self._helper: ThreadPoolExecutor | None = None
        self._ahead: Future[bytes] | None = None

    @property
    def size(self) -> int:
        """The length in bytes: the registry's, or measured on the object."""
        if self._size is None:
            self._size = self._call("seek", 0, io.SEEK_END)
            self._at = self._size
        return self._size

    def read(self, start: int, length: int) -> bytes:
        """Read a small range now, and end the transaction: the whole response in the view."""
        return b"".join(self.chunks(start, length))  # chunks() closes the download when done

    def chunks(self, start: int, length: int, *, read_ahead: bool = False) -> Iterator[bytes]:
        """Yield ``length`` bytes from ``start`` in chunks; closes the download when done.

        With ``read_ahead``, the next chunk is read by a helper thread while
        this one is handed over: PostgreSQL and the server then work at the
        same time instead of in turns (measured: a download took the sum of
        both). Never across a window's end, nor on the caller's connection.
        """
        position, remaining, slow = start, length, False
        if read_ahead:
            self._helper = ThreadPoolExecutor(1, "warehouse-read-ahead")
        try:
            while remaining > 0:
                if self._ahead is not None:
                    chunk, self._ahead = self._ahead.result(), None
                else:
                    chunk = self._read_at(position, remaining)
                position, remaining = position + len(chunk), remaining - len(chunk)
                window_over = time.monotonic() - self._window_began > WINDOW_SECONDS
                if remaining and self._windowed and (slow or window_over):
                    self._end_window()
                elif remaining and self._helper and not self._joined:
                    self._ahead = self._helper.submit(self._read_at, position, remaining)
                handed = time.monotonic()
                yield chunk
                slow = time.monotonic() - handed > SLOW_CLIENT_SECONDS
        except Exception:
            logger.error("download of large object %s ended early", self.loid, exc_info=True)
            raise
        finally:
            self.close()

    def _read_at(self, position: int, remaining: int) -> bytes:
        """Read the next chunk at ``position``, in a new window if the last one ended."""
        if self._seat is None:
            self._begin_window()
        if self._at != position:
            self._at = self._call("seek", position, io.SEEK_SET)
        chunk = self._call("read", min(STREAM_CHUNK_SIZE, remaining))
        if not chunk:
            raise ObjectChangedError(f"large object {self.loid} ended before its length")
        self._at = position + len(chunk)
        return chunk

    def body(self, start: int, length: int, *, asynchronous: bool) -> _Body:
        """A response body for a range, closed by the server when the response ends."""
        self.streaming = True
        return (AsyncBody if asynchronous else Body)(self, start, length)

    async def async_chunks(self, start: int, length: int) -> AsyncIterator[bytes]:
        """:meth:`chunks` for ASGI, stepped in the thread that owns the connection.

        The next step is asked for while the event loop sends this chunk, and
        the step itself finds its chunk read ahead: the database, that thread
        and the event loop work at the same time.
        """
        chunks = self.chunks(start, length, read_ahead=True)
        step = sync_to_async(next, thread_sensitive=True)
        pending = asyncio.ensure_future(step(chunks, None))
        try:
            while (chunk := await pending) is not None:
                pending = asyncio.ensure_future(step(chunks, None))
                yield chunk
        finally:
            # A read under way cannot be cancelled in its thread: let it finish, then close.
            with contextlib.suppress(BaseException):
                await pending
            await sync_to_async(chunks.close, thread_sensitive=True)()

    def close(self) -> None:
        """End the transaction; the server calls this when the response ends or is dropped."""
        if self._ahead is not None:
            # A read under way finishes before the transaction under it ends.
            wait([self._ahead])
            self._ahead = None
        if self._helper is not None:
            self._helper.shutdown(wait=False)
            self._helper = None
        self._end_window()

    # -- windows ------------------------------------------------------------------

    def _begin_window(self) -> None:
        seat, now = transactions.for_reading(self.loid, self._alias, probe=registry.facts)
        was = self.facts
        if (now.size, now.sha256, now.modified) != (was.size, was.sha256, was.modified):
            seat.release(commit=False)
            raise ObjectChangedError(f"large object {self.loid} changed while it was being sent")
        self._seat, self._window_began = seat, time.monotonic()

    def _end_window(self) -> None:
        seat, self._seat = self._seat, None
        if seat is not None:
            seat.release(commit=False)
        # Only now: psycopg2 sends lo_close for a descriptor dropped inside its transaction.
        # The next window's descriptor opens at 0: where _read_at seeks from.
        self._lobject, self._at = None, 0

    def _call(self, method: str, *args: Any) -> Any:
        if self._seat is None:
            raise ValueError(f"the download of large object {self.loid} was closed")
        seat = self._seat
        with file_errors(seat.connection, self.loid, lambda exc: seat.failed()):
            if self._lobject is None:
                self._lobject = seat.connection.connection.lobject(self.loid, "rb")
            return getattr(self._lobject, method)(*args)


class _Body:
    """A range of a download as a response body; Django calls ``close()`` when it ends."""

    def __init__(self, download: Download, start: int, length: int) -> None:
        self._download, self._start, self._length = download, start, length

    def close(self) -> None:
        # Under ASGI too Django calls it in the thread that owns the connection.
        self._download.close()


class Body(_Body):
    """For WSGI."""

    def __iter__(self) -> Iterator[bytes]:
        return self._download.chunks(self._start, self._length, read_ahead=True)


class AsyncBody(_Body):
    """For ASGI, which would otherwise read a sync iterator whole."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._download.async_chunks(self._start, self._length)
