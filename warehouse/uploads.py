"""Uploads streamed straight into large objects: no temporary file, no second copy.

Django's own handlers keep an upload in memory or in a temporary file, and
saving it to a ``DbFileStorage`` then copies it into the database: twice
the I/O, and temporary disk the size of the file. ``DbFileUploadHandler``
writes each chunk of the request body into a new large object as it
arrives, hashing it on the way; saving the upload to a file field of a
``DbFileStorage`` then adopts that object, copying nothing::

    FILE_UPLOAD_HANDLERS = ["warehouse.uploads.DbFileUploadHandler"]

or for one view, before it reads ``request.POST`` or ``request.FILES``::

    request.upload_handlers = [DbFileUploadHandler(request)]

In a transaction (``ATOMIC_REQUESTS``) each object joins it: a view that
fails leaves nothing behind. In autocommit each upload commits on its own,
with a registry row marked ``upload``: one the view never saves references
nothing, and ``warehouse_cleanup --delete`` unlinks it once the grace
period is over.
"""

from __future__ import annotations

import contextlib
import io
import weakref
from typing import Any

from asgiref.local import Local
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers
from django.core.signals import request_finished
from django.db import DatabaseError

from warehouse import registry
from warehouse.io import DbFileIO, open_large_object

__all__ = ["DbFileUploadHandler", "DbUploadedFile"]

# One lo_write per chunk received: larger chunks, fewer round trips, and a bounded buffer.
UPLOAD_CHUNK_SIZE = 1024**2  # bytes


class DbUploadedFile(UploadedFile):
    """An upload already in a large object of the write database.

    Reads open the object on first use (buffered: Django reads 64 KiB at a
    time), on the write database, where it is. The first save to a
    ``DbFileStorage`` of the same database adopts the object; any other
    save copies it.
    """

    def __init__(
        self,
        loid: int,
        *,
        using: str,
        name: str,
        content_type: str | None,
        size: int,
        sha256: str,
        charset: str | None = None,
        content_type_extra: dict[str, Any] | None = None,
    ) -> None:
        self._file: io.BufferedReader | None = None
        super().__init__(None, name, content_type, size, charset, content_type_extra)
        self.loid, self.using, self.sha256 = loid, using, sha256
        #: Whether a storage made the object its own; later saves copy it.
        self.adopted = False

    @property
    def file(self) -> io.BufferedReader:  # type: ignore[override]
        if self._file is None or self._file.closed:
            self._file = open_large_object(self.loid, "rb", using=self.using)
        return self._file

    @file.setter
    def file(self, value: io.BufferedReader | None) -> None:
        self._file = value

    @property
    def closed(self) -> bool:
        return self._file is None or self._file.closed

    def open(self, mode: str | None = None) -> DbUploadedFile:  # type: ignore[override]
        self.file.seek(0)
        return self

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class _Incoming:
    """The object an upload is being written to, as Django's parser sees it.

    The parser closes ``handler.file`` when it gives an upload up (a
    skipped file, a stopped upload): closing here then discards the object.
    When the parser raises instead (a malformed part, a body cut short, a
    failed write), nothing closes it: the end of the request does (see
    :func:`_discard_unfinished`), rather than leave its connection in a
    transaction until the garbage collector finds the file.
    """

    def __init__(self, raw: DbFileIO) -> None:
        self.raw = raw
        _unfinished().add(self)

    def finish(self) -> None:
        """Close the object, keeping it: commits where the transaction is the file's own."""
        _unfinished().discard(self)
        self.raw.close()

    def close(self) -> None:
        _unfinished().discard(self)
        if not self.raw.closed:
            self.raw.discard()


# Per thread (per async context, as Django's connections): the uploads this request
# began and neither finished nor gave up. Weak: the request's handlers hold them until
# its end; one made outside a request is collected as any file.
_receiving = Local()


def _unfinished() -> weakref.WeakSet[_Incoming]:
    try:
        return _receiving.uploads
    except AttributeError:
        _receiving.uploads = weakref.WeakSet()
        return _receiving.uploads


def _discard_unfinished(**kwargs: object) -> None:
    """At the end of a request, discard the uploads its parser left half-written."""
    for incoming in list(_unfinished()):
        # The connection may be gone with the error that stopped the parser: the
        # server rolled back what it held, and the other receivers must still run.
        with contextlib.suppress(DatabaseError):
            incoming.close()


class DbFileUploadHandler(FileUploadHandler):
    """Write each uploaded file into a new large object as the request body arrives."""

    chunk_size = UPLOAD_CHUNK_SIZE

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._digest = registry.Digest(
            check_utf8=registry.is_text(self.file_name or "", self.content_type)
        )
        self.file = _Incoming(DbFileIO(0, "wb", name=self.file_name))  # on the write alias
        raise StopFutureHandlers  # the file is this handler's: no other writes it anywhere

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self._digest.update(raw_data)
        self.file.raw.write(raw_data)
        return None  # consumed: no later handler sees it

    def file_complete(self, file_size: int) -> DbUploadedFile:
        raw = self.file.raw
        using = raw.using
        try:
            registry.record(
                raw.loid,
                name=self.file_name or "",
                content_type=self.content_type,
                digest=self._digest,
                connection=raw.connection,
                upload=True,
            )
        except BaseException:
            self.file.close()  # discards the object
            raise
        # Commits object and row together, where the transaction is the file's own.
        self.file.finish()
        return DbUploadedFile(
            raw.loid,
            using=using,
            name=self.file_name or "",
            content_type=self.content_type,
            size=self._digest.size,
            sha256=self._digest.sha256,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )

    def upload_interrupted(self) -> None:
        incoming = getattr(self, "file", None)
        if incoming is not None:
            incoming.close()


request_finished.connect(_discard_unfinished, dispatch_uid="warehouse.uploads.request_finished")
