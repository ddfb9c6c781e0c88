"""Serve a stored file as a private download: ranges, validators, safe types, original names.

``db_serve`` checks ownership in one call when given the rows the user may
see, and answers 404 (not 403) when none holds the name, so that strangers
learn nothing::

    @login_required
    def invoice_file(request, filename):
        invoices = Invoice.objects.filter(owner=request.user)
        return db_serve(request, filename, queryset=invoices, field="data")

    path("invoice/<str:filename>", invoice_file)

Every header a download gets is decided in :func:`_file_headers`.

While a site moves its files in (:mod:`warehouse.previous`), a name that is
not a large object's is served from the previous storage of the field's
``DbFileStorage`` (of the default one without ``queryset``), with the same
checks and headers; route a ``<path:filename>`` then, since such names have
folders.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import unicodedata
from typing import Any
from urllib.parse import quote

from django.core.exceptions import FieldDoesNotExist, SuspiciousFileOperation
from django.core.files.storage import Storage
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Model, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    StreamingHttpResponse,
)
from django.utils.cache import get_conditional_response
from django.utils.http import http_date

from warehouse.previous import PreviousDownload
from warehouse.ranges import ByteRange, UnsatisfiableRangeError, if_range_allows, parse_range
from warehouse.registry import Facts
from warehouse.storage import DbFileStorage, db_file_storage, oid_of
from warehouse.streams import STREAM_CHUNK_SIZE, Download

__all__ = ["STREAM_CHUNK_SIZE", "db_serve"]

logger = logging.getLogger(__name__)

# Shown in the browser: types it renders without running anything of the file's.
INLINE_TYPES = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "text/plain",
        "audio/mpeg",
        "audio/ogg",
        "audio/wav",
        "audio/webm",
        "audio/flac",
        "audio/aac",
        "audio/mp4",
        "video/mp4",
        "video/webm",
        "video/ogg",
    }
)
# Types a browser would run or style with (HTML, SVG, XML, script, CSS...): sent as bytes.
_ACTIVE_TYPE = re.compile(r"html|xml|svg|script|css|wasm|^text/(?!plain$|csv$)")
# What may not reach a Content-Disposition file name: controls, quotes, separators.
_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f"\\/;]')
_ENCODED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip",
    "xz": "application/x-xz",
}
_UNSAFE_IN_ASCII_NAME = re.compile(r"[^A-Za-z0-9 !#$&+,.=@^_`{}~()\[\]'-]")


def db_serve(
    request: HttpRequest,
    filename: str,
    *,
    as_attachment: bool = False,
    download_name: str | None = None,
    queryset: QuerySet | None = None,
    field: str | None = None,
) -> HttpResponseBase:
    """Send the stored file ``filename``; 404 for a missing or malformed name.

    With ``queryset`` and ``field``, only a name that a row of ``queryset``
    holds in ``field`` is served. ``Range``, ``If-Range`` and the
    conditional headers are honoured.
    """
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    previous = None
    try:
        loid: int | None = oid_of(filename)  # before any query: a malformed name never reaches SQL
    except FileNotFoundError:
        # Not a large object's: the previous storage's while files move in, else nobody's.
        loid, previous = None, _previous_for(filename, queryset, field)
        if previous is None:
            raise Http404("No such file.") from None
    if queryset is not None and not queryset.filter(**{_required(field): filename}).exists():
        raise Http404("No such file.")
    download: Download | PreviousDownload | None = None
    try:
        download = Download(loid) if previous is None else PreviousDownload(previous, filename)
        return _respond(request, download, filename, as_attachment, download_name)
    except PermissionError:
        # The role may not read it: a deployment fault to fix, not the visitor's.
        logger.error("db_serve: may not read %r", filename, exc_info=True)
        raise Http404("No such file.") from None
    except (OSError, SuspiciousFileOperation) as exc:
        # Also unlinked between the check and the read of a small file: nothing was sent yet.
        # A previous storage's name may be one it cannot look up at all (a path out of
        # its location, too long, a file taken for a folder): as missing.
        if previous is None and not isinstance(exc, FileNotFoundError):
            raise
        raise Http404("No such file.") from None
    finally:
        if download is not None and not download.streaming:
            download.close()


def _previous_for(filename: str, queryset: QuerySet | None, field: str | None) -> Storage | None:
    """The previous storage that keeps ``filename``: the field's storage's, or the default's."""
    storage: Any = db_file_storage
    if queryset is not None and field:
        storage = _storage_of(queryset.model, field)
    return storage.previous_for(filename) if isinstance(storage, DbFileStorage) else None


def _storage_of(model: type[Model], lookup: str) -> Any:
    """The storage of the file field ``lookup`` reaches from ``model`` (``"attachments__file"``)."""
    found: Any = None
    for part in lookup.split(LOOKUP_SEP):
        try:
            found = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None  # the ownership check will say what is wrong with the lookup
        model = found.related_model or model
    return getattr(found, "storage", None)


def _required(field: str | None) -> str:
    if not field:
        raise TypeError("db_serve(queryset=...) needs field=, the name of the file field")
    return field


def _respond(
    request: HttpRequest,
    download: Download | PreviousDownload,
    filename: str,
    as_attachment: bool,
    download_name: str | None,
) -> HttpResponseBase:
    facts = download.facts
    # No digest, no ETag: an unregistered object's, or one a write it did not see made stale.
    etag = f'"{facts.sha256}"' if facts.sha256 else None
    last_modified = int(facts.modified.timestamp()) if facts.modified else None
    # 304 or 412 when a conditional header says so, before a byte is read.
    response = get_conditional_response(request, etag, last_modified)
    if response is None:
        response = _file_response(
            request, download, filename, etag, last_modified, as_attachment, download_name
        )
    if etag:
        response["ETag"] = etag
    if last_modified is not None:
        response["Last-Modified"] = http_date(last_modified)
    _security_headers(response)
    return response


def _file_response(
    request: HttpRequest,
    download: Download | PreviousDownload,
    filename: str,
    etag: str | None,
    last_modified: int | None,
    as_attachment: bool,
    download_name: str | None,
) -> HttpResponseBase:
    facts, size = download.facts, download.size
    range_counts = if_range_allows(request.headers.get("If-Range"), etag, last_modified)
    status, part = 200, ByteRange(0, size)
    try:
        wanted = parse_range(request.headers.get("Range"), size) if range_counts else None
    except UnsatisfiableRangeError:
        status = 416
    else:
        if wanted is not None:
            status, part = 206, wanted

    response: HttpResponseBase
    if request.method == "HEAD" or status == 416 or part.length == 0:
        response = HttpResponse(status=status)
    elif part.length <= STREAM_CHUNK_SIZE:
        # Small: read now and end the transaction; the response holds nothing open.
        response = HttpResponse(download.read(part.start, part.length), status=status)
    else:
        body = download.body(part.start, part.length, asynchronous=isinstance(request, ASGIRequest))
        response = StreamingHttpResponse(body, status=status)
    _file_headers(response, facts, filename, size, part, as_attachment, download_name)
    return response


def _file_headers(
    response: HttpResponseBase,
    facts: Facts,
    filename: str,
    size: int,
    part: ByteRange,
    as_attachment: bool,
    download_name: str | None,
) -> None:
    """Every header of a file response but the validators: decided here and nowhere else."""
    content_type = stored_type(facts, filename)
    inline = content_type in INLINE_TYPES and not as_attachment
    if _ACTIVE_TYPE.search(content_type):
        content_type = "application/octet-stream"
    if content_type == "text/plain" and facts.utf8:
        content_type += "; charset=utf-8"
    response["Content-Type"] = content_type
    response["Accept-Ranges"] = "bytes"
    if response.status_code == 416:
        response["Content-Range"] = f"bytes */{size}"
        response["Content-Length"] = "0"
    else:
        response["Content-Length"] = str(part.length)
    if response.status_code == 206:
        response["Content-Range"] = part.content_range(size)
    name = download_name or facts.name or filename
    response["Content-Disposition"] = content_disposition(name, inline=inline)


def _security_headers(response: HttpResponseBase) -> None:
    # User files: never let a browser run or guess them, nor a shared cache keep them.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private"


def stored_type(facts: Facts, filename: str) -> str:
    """The type of what was stored: by the registry's name, else its declared type.

    Never by the extension of the name in the request: ``16384.html`` asks
    for object 16384 whatever it was stored as. An unregistered object is
    bytes of unknown type.
    """
    if not facts.registered:
        return "application/octet-stream"
    content_type, encoding = mimetypes.guess_type(facts.name)
    if encoding:
        # "x.tar.gz" is a gzip file to the browser, as django.http.FileResponse has it.
        return _ENCODED_TYPES.get(encoding, "application/octet-stream")
    return content_type or facts.content_type or "application/octet-stream"


def content_disposition(name: str, *, inline: bool) -> str:
    """``inline`` or ``attachment`` with a file name no header or path can be smuggled through.

    An ASCII ``filename`` for every client, and ``filename*`` (RFC 6266) with
    the name in UTF-8 when it is not plain ASCII.
    """
    name = (
        _UNSAFE_IN_NAME.sub("_", name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip() or "download"
    )
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = _UNSAFE_IN_ASCII_NAME.sub("_", fallback).strip() or "download"
    header = f'{"inline" if inline else "attachment"}; filename="{fallback}"'
    if fallback != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header
