"""Reading an object for a download, in windows of short transactions.

A download lasts as long as its client takes, and a transaction held that
long holds back VACUUM with its snapshot. So the bytes are read in windows:
a window is one transaction of the package's, in one snapshot (REPEATABLE
READ) on a connection of the download's own, so that the bytes read are
those the registry's facts described at its start. A window ends once it
has read for ``WINDOW_SECONDS``, at the end of the range, and when the
client is slow: the reader thread waits over ``SLOW_CLIENT_SECONDS`` for
room ahead. Each later window first asks the registry whether the object is
still the one the download began with (size, SHA-256, time of
modification); if not, the download ends with an error rather than mix old
and new bytes. An unregistered object has nothing to compare, so it is read
in one transaction; so is an object read inside the caller's transaction.

A reader thread keeps up to ``READ_AHEAD_CHUNKS`` chunks ready while the
server hands them over, so that PostgreSQL and the server work side by side
(under ASGI the event loop takes them from it directly).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

from asgiref.sync import sync_to_async

from warehouse import registry, transactions
from warehouse.io import READ_SIZE, read_size_to_ask
from warehouse.objects import file_errors

logger = logging.getLogger("warehouse.views")

# Large enough that a round trip per chunk costs little next to sending it; the size
# reads are fastest at (warehouse.io.READ_SIZE). Measured: 512 MiB downloads under
# uvicorn at 830 MiB/s in 1 MiB chunks, 580 in 256 KiB ones; gunicorn's alike.
STREAM_CHUNK_SIZE = READ_SIZE
# How long one transaction may keep reading before the next window starts.
WINDOW_SECONDS = 1.0  # seconds
# A client slower than this to take a chunk is waited for with no transaction open.
SLOW_CLIENT_SECONDS = 0.05  # seconds
# Chunks read ahead of the server, so that PostgreSQL never waits for it to ask.
READ_AHEAD_CHUNKS = 4


class ObjectChangedError(OSError):
    """The object was replaced or rewritten while it was being sent."""


class Download:
    """One object being served: where it is read, and what the registry says of it.

    Made in the view (the routing, the existence and privilege check and the
    registry's facts cost one query); the bytes are read when sent.
    """

    def __init__(self, loid: int) -> None:
        self.loid = loid
        # One snapshot per window: the bytes are those the registry's facts describe.
        self._seat, self.facts = transactions.for_reading(loid, probe=registry.facts, snapshot=True)
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
        self._reader: _Reader | None = None

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

        With ``read_ahead``, a reader thread keeps up to ``READ_AHEAD_CHUNKS``
        chunks ready while the server hands them over, so that PostgreSQL is
        never idle waiting for the next request of a chunk (measured: reading
        one chunk ahead left it idle a third of the time). Never on the
        caller's connection, which belongs to the caller's thread.
        """
        if read_ahead and not self._joined:
            self._reader = _Reader(self, start, length)
            source = self._reader.chunks()
        else:
            source = self._read_in_turn(start, length)
        try:
            yield from source
        except Exception:
            logger.error("download of large object %s ended early", self.loid, exc_info=True)
            raise
        finally:
            self.close()

    def _read_in_turn(self, start: int, length: int) -> Iterator[bytes]:
        """Read a chunk, hand it over, read the next.

        A window that has read long enough ends before its chunk is handed
        over; the next read begins another. (Never for a range of one
        chunk, nor in the caller's transaction, which is not windowed.)
        """
        position, remaining = start, length
        while remaining > 0:
            read = self._read_at(position, remaining)
            position, remaining = position + len(read), remaining - len(read)
            if remaining and self._windowed and self._window_over():
                self._end_window()
            # A backend's first read may be several chunks long: handed over a chunk at a
            # time, so that what waits ahead stays READ_AHEAD_CHUNKS chunks.
            for at in range(0, len(read), STREAM_CHUNK_SIZE):
                yield read[at : at + STREAM_CHUNK_SIZE] if len(read) > STREAM_CHUNK_SIZE else read

    def _window_over(self) -> bool:
        return time.monotonic() - self._window_began > WINDOW_SECONDS

    def _read_at(self, position: int, remaining: int) -> bytes:
        """Read the next chunk at ``position``, in a new window if the last one ended."""
        if self._seat is None:
            self._begin_window()
        if self._at != position:
            self._at = self._call("seek", position, io.SEEK_SET)
        # A range that runs to the object's end cannot be read past: the end is its limit, and
        # a backend's first read may ask for more than the range holds (read_size_to_ask).
        to_the_end = self._size is not None and position + remaining >= self._size
        size = read_size_to_ask(
            self._seat.connection, STREAM_CHUNK_SIZE, limit=None if to_the_end else remaining
        )
        chunk = self._call("read", size)
        if not chunk or len(chunk) > remaining:
            raise ObjectChangedError(f"large object {self.loid} is not the length it was")
        self._at = position + len(chunk)
        return chunk

    def body(self, start: int, length: int, *, asynchronous: bool) -> _Body:
        """A response body for a range, closed by the server when the response ends."""
        self.streaming = True
        return (AsyncBody if asynchronous else Body)(self, start, length)

    async def async_chunks(self, start: int, length: int) -> AsyncIterator[bytes]:
        """:meth:`chunks` for ASGI: the event loop takes the reader thread's chunks itself.

        In the caller's transaction, whose connection belongs to the thread
        that owns it, each chunk is read in that thread instead.
        """
        if self._joined:
            async for chunk in self._in_callers_thread(self.chunks(start, length)):
                yield chunk
            return
        self._reader = _Reader(self, start, length, asyncio.get_running_loop())
        try:
            async for chunk in self._reader.async_chunks():
                yield chunk
        except Exception:
            logger.error("download of large object %s ended early", self.loid, exc_info=True)
            raise
        finally:
            await sync_to_async(self.close, thread_sensitive=True)()

    @staticmethod
    async def _in_callers_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
        step = sync_to_async(next, thread_sensitive=True)
        try:
            while (chunk := await step(chunks, None)) is not None:
                yield chunk
        finally:
            await sync_to_async(chunks.close, thread_sensitive=True)()

    def close(self) -> None:
        """End the transaction; the server calls this when the response ends or is dropped."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.stop()  # its read under way finishes before the transaction under it ends
        self._end_window()

    # -- windows ------------------------------------------------------------------

    def _begin_window(self) -> None:
        seat, now = transactions.for_reading(
            self.loid, self._alias, probe=registry.facts, snapshot=True
        )
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


class _Reader:
    """A thread that reads a download's chunks ahead of the server, in the download's windows.

    It holds a window (a transaction) while it reads, and for at most
    ``SLOW_CLIENT_SECONDS`` while it waits for room ahead: a slower client is
    waited for with no transaction open, and the next chunk is read in a new
    window. At most ``READ_AHEAD_CHUNKS`` chunks wait, plus one being read.
    """

    def __init__(
        self,
        download: Download,
        start: int,
        length: int,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._download = download
        # Under ASGI: the event loop to wake when a chunk is ready.
        self._loop, self._arrived = loop, asyncio.Event() if loop else None
        self._ahead: queue.Queue[bytes | BaseException | None] = queue.Queue(READ_AHEAD_CHUNKS)
        self._stopped = threading.Event()
        # In the request's context: the package's connections of the request, not new ones.
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run,
            args=(self._read, start, length),
            name="warehouse-reader",
            daemon=True,
        )
        self._thread.start()

    def chunks(self) -> Iterator[bytes]:
        while (item := self._ahead.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    async def async_chunks(self) -> AsyncIterator[bytes]:
        """:meth:`chunks` for the event loop, which never waits on the queue itself."""
        assert self._arrived is not None
        while True:
            try:
                item = self._ahead.get_nowait()
            except queue.Empty:
                # A chunk handed from now on sets the event after this clear: none is missed.
                self._arrived.clear()
                if self._ahead.empty():
                    await self._arrived.wait()
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        """Stop reading and wait until the reader's transaction is over."""
        self._stopped.set()
        # Room for a hand-over under way, so that the reader sees the stop instead of waiting.
        with contextlib.suppress(queue.Empty):
            while True:
                self._ahead.get_nowait()
        self._thread.join()

    def _read(self, start: int, length: int) -> None:
        download = self._download
        try:
            for chunk in download._read_in_turn(start, length):
                self._hand(chunk)
                if self._stopped.is_set():
                    break
            self._hand(None)
        except BaseException as exc:  # the server's thread raises it
            self._hand(exc)
        finally:
            download._end_window()

    def _hand(self, item: bytes | BaseException | None) -> None:
        if self._stopped.is_set():
            return
        try:
            self._ahead.put(item, timeout=SLOW_CLIENT_SECONDS)
        except queue.Full:
            if self._download._windowed:
                self._download._end_window()  # a slow client: wait with no transaction open
            self._ahead.put(item)  # stop() makes room
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self._loop.call_soon_threadsafe(self._arrived.set)  # type: ignore[union-attr]


class _Streamed(Protocol):
    """What a body streams: a :class:`Download`, or a previous storage's file."""

    def chunks(self, start: int, length: int, *, read_ahead: bool = False) -> Iterator[bytes]: ...

    def async_chunks(self, start: int, length: int) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class _Body:
    """A range of a download as a response body; Django calls ``close()`` when it ends."""

    def __init__(self, download: _Streamed, start: int, length: int) -> None:
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
