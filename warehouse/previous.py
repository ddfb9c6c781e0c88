"""The storage a site kept its files in before large objects, read while they move.

Between switching a field to ``DbFileField`` and the end of
``warehouse_import``, its rows hold two kinds of names: large objects'
(``"16384.txt"``) and those the previous storage gave
(``"invoices/2026/hello.txt"``). Told of the previous storage
(``DbFileStorage(previous=...)`` or ``WAREHOUSE_PREVIOUS_STORAGE``), a
``DbFileStorage`` opens, sizes and serves the latter from it, for reading
only, so that no file is broken at any minute of the move. Which name is
which is :mod:`warehouse.names`'s decision.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import Storage, storages
from django.utils.module_loading import import_string

from warehouse.registry import Facts
from warehouse.streams import STREAM_CHUNK_SIZE, AsyncBody, Body

logger = logging.getLogger("warehouse.views")


def storage_named(spec: str) -> Storage:
    """Return the storage an alias of ``STORAGES`` or the dotted path of a storage class names.

    A class is instantiated without arguments, once.
    """
    if spec in storages.backends:
        return storages[spec]
    if "." in spec:
        return _instance_of(spec)
    aliases = ", ".join(sorted(storages.backends))
    raise ImproperlyConfigured(
        f"{spec!r} is neither an alias in STORAGES ({aliases}) nor the dotted path of a "
        "storage class."
    )


@functools.cache
def _instance_of(path: str) -> Storage:
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"Cannot import the storage class {path!r}: {exc}") from None
    # Checked before calling: instantiating an arbitrary class may do anything.
    if not (isinstance(cls, type) and issubclass(cls, Storage)):
        raise ImproperlyConfigured(f"{path!r} is not a storage class.")
    return cls()


def resolved(spec: Storage | str | None) -> Storage | None:
    """The storage ``spec`` gives: itself, or the one its alias or dotted path names."""
    if spec is None or isinstance(spec, Storage):
        return spec
    if isinstance(spec, str):
        return storage_named(spec)
    raise ImproperlyConfigured(
        "The previous storage is a Storage, an alias in STORAGES or the dotted path of a "
        f"storage class, not a {type(spec).__name__}."
    )


def opened_for_reading(storage: Storage, name: str, mode: str) -> Any:
    """Open a previous storage's file, for reading only: it is on its way out."""
    if set(mode) & set("wax+"):
        raise io.UnsupportedOperation(
            f"{name!r} is the previous storage's, which DbFileStorage only reads: "
            f"save the content as a new file instead of opening it with mode {mode!r}."
        )
    return storage.open(name, mode)


class PreviousDownload:
    """A file of the previous storage being served: what ``db_serve`` needs of a download.

    Its size and time come from the storage (a missing file is
    ``FileNotFoundError`` here, before a byte is sent); it is opened only
    when read, so a ``HEAD`` or a 304 opens nothing.
    """

    def __init__(self, storage: Storage, name: str) -> None:
        self._storage, self._name = storage, name
        self._file: IO[Any] | None = None
        self.size = storage.size(name)
        # Its name is its own, not a request's: the type may be guessed from it (registered).
        self.facts = Facts(
            exists=True,
            may_read=True,
            registered=True,
            size=self.size,
            modified=_modified_time(storage, name),
            name=name,
        )
        #: Whether a response body took the download over (and closes it when it ends).
        self.streaming = False

    def read(self, start: int, length: int) -> bytes:
        """Read a small range now, and close the file."""
        return b"".join(self._chunks(start, length))

    def chunks(self, start: int, length: int, *, read_ahead: bool = False) -> Iterator[bytes]:
        """Yield ``length`` bytes from ``start``; closes the file when done.

        ``read_ahead`` is the large objects' (see ``Download.chunks``): a
        previous storage's file is read in turn.
        """
        try:
            yield from self._chunks(start, length)
        except Exception:
            logger.error("download of %r ended early", self._name, exc_info=True)
            raise

    def _chunks(self, start: int, length: int) -> Iterator[bytes]:
        try:
            if self._file is None:
                self._file = self._storage.open(self._name, "rb")
            self._file.seek(start)
            while length > 0:
                chunk = self._file.read(min(STREAM_CHUNK_SIZE, length))
                if not chunk:
                    raise OSError(f"{self._name} ended before its length: changed while sent")
                length -= len(chunk)
                yield chunk
        finally:
            self.close()

    async def async_chunks(self, start: int, length: int) -> AsyncIterator[bytes]:
        """:meth:`chunks` for ASGI, each read in a worker thread so the event loop never waits."""
        chunks = self.chunks(start, length)
        step = sync_to_async(next, thread_sensitive=False)
        try:
            while (chunk := await step(chunks, None)) is not None:
                yield chunk
        finally:
            await sync_to_async(chunks.close, thread_sensitive=False)()

    def body(self, start: int, length: int, *, asynchronous: bool) -> Body | AsyncBody:
        """A response body for a range, closed by the server when the response ends."""
        self.streaming = True
        return (AsyncBody if asynchronous else Body)(self, start, length)

    def close(self) -> None:
        """Close the file, if it was opened."""
        file, self._file = self._file, None
        if file is not None:
            file.close()


def _modified_time(storage: Storage, name: str) -> datetime | None:
    try:
        return storage.get_modified_time(name)
    except NotImplementedError:
        return None  # served all the same, without Last-Modified
