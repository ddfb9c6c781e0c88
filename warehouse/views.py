"""Serve a stored file, streamed from its large object in bounded memory.

``db_serve`` does no access control: call it from a view that checks the
user may see the file, as in::

    @login_required
    def invoice_file(request, filename):
        if not Invoice.objects.filter(owner=request.user, data=filename).exists():
            return HttpResponseForbidden()
        return db_serve(request, filename)

    path("invoice/<str:filename>", invoice_file)
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    StreamingHttpResponse,
)
from django.utils.http import content_disposition_header

from warehouse.io import DbFileIO, large_object_size
from warehouse.storage import oid_of

logger = logging.getLogger(__name__)

# Large enough that a round trip per chunk costs little next to sending it.
STREAM_CHUNK_SIZE = 256 * 1024  # bytes
# Content types whose compression the browser undoes, as django.http.FileResponse maps them.
_ENCODED_TYPES = {
    "bzip2": "application/x-bzip",
    "gzip": "application/gzip",
    "xz": "application/x-xz",
}


class _LargeObjectRange:
    """The bytes ``start`` to ``start + length`` of an object, read when sent.

    The object is opened only when the server starts sending. Opening it in
    the view would tie its descriptor to the view's transaction (with
    ``ATOMIC_REQUESTS`` that transaction commits before the first byte is
    sent, closing the descriptor).
    """

    def __init__(self, loid: int, start: int, length: int) -> None:
        self.loid, self.start, self.length = loid, start, length
        self._remaining = length
        self._file: DbFileIO | None = None

    def _open(self) -> None:
        # Routed like every read: the reading connection, never the view's transaction.
        self._file = DbFileIO(self.loid, "rb")
        if self.start:
            self._file.seek(self.start)

    def _next_chunk(self) -> bytes:
        # Stop at the promised length even if the object grew meanwhile.
        chunk = self._file.read(min(STREAM_CHUNK_SIZE, self._remaining))
        self._remaining -= len(chunk)
        return chunk

    def close(self) -> None:
        """Close the object; the server calls this when the response ends or is dropped."""
        if self._file is not None:
            self._file.close()


class LargeObjectStream(_LargeObjectRange):
    """A range of an object as a WSGI response body."""

    def __iter__(self) -> Iterator[bytes]:
        self._open()
        try:
            while self._remaining > 0 and (chunk := self._next_chunk()):
                yield chunk
        finally:
            self.close()


class AsyncLargeObjectStream(_LargeObjectRange):
    """A range of an object for ASGI, which would otherwise read a sync iterator whole."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # thread_sensitive: every call runs in the thread that owns the connection.
        await sync_to_async(self._open)()
        try:
            while self._remaining > 0 and (chunk := await sync_to_async(self._next_chunk)()):
                yield chunk
        finally:
            await sync_to_async(self.close)()


def db_serve(
    request: HttpRequest,
    filename: str,
    *,
    as_attachment: bool = False,
    download_name: str | None = None,
) -> HttpResponseBase:
    """Stream the stored file ``filename``; 404 for a missing or malformed name."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    try:
        loid = oid_of(filename)
        size = large_object_size(loid)
    except FileNotFoundError:
        raise Http404(f"No stored file named {filename!r}.") from None
    except PermissionError:
        # The database role may not read it: a deployment fault to fix, not the visitor's.
        logger.error("db_serve: the database role may not read %r", filename, exc_info=True)
        raise Http404(f"No stored file named {filename!r}.") from None

    content_type = _content_type(filename)
    response: HttpResponseBase
    if request.method == "HEAD":
        # No body to stream, under WSGI or ASGI alike.
        response = HttpResponse(content_type=content_type)
    else:
        is_asgi = isinstance(request, ASGIRequest)
        stream = (AsyncLargeObjectStream if is_asgi else LargeObjectStream)(loid, 0, size)
        response = StreamingHttpResponse(stream, content_type=content_type)
    response["Content-Length"] = str(size)
    # User files: never let a browser run or guess them, nor a shared cache keep them.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private"
    if disposition := content_disposition_header(as_attachment, download_name or filename):
        response["Content-Disposition"] = disposition
    return response


def _content_type(filename: str) -> str:
    content_type, encoding = mimetypes.guess_type(filename)
    content_type = _ENCODED_TYPES.get(encoding, content_type)
    return content_type or "application/octet-stream"
