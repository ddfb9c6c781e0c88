"""Byte ranges of a download (RFC 9110, section 14): parsing only, no I/O.

A malformed ``Range`` header is ignored, as RFC 9110 allows: the client gets
the whole file with 200, which every client handles. So are a range unit
other than ``bytes`` and a list of several ranges (serving those as
``multipart/byteranges`` buys a client little for a private download). A
well-formed range that starts past the end is unsatisfiable: 416.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from django.utils.http import parse_http_date_safe

# One range of bytes: "a-b", "a-" or "-n", with ASCII digits only (str.isdigit()
# would take "٣" too), and the white space RFC 9110 tolerates around it.
_SINGLE_RANGE = re.compile(
    r"bytes[ \t]*=[ \t]*(?P<first>[0-9]*)[ \t]*-[ \t]*(?P<last>[0-9]*)[ \t]*"
)
# Longer numbers than any object can have are malformed, not a reason to build huge ints.
_MAX_DIGITS = 20


class ByteRange(NamedTuple):
    """``length`` bytes from ``start``: what a 206 sends."""

    start: int
    length: int

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.start + self.length - 1}/{size}"


class UnsatisfiableRangeError(Exception):
    """The range starts past the end: answer 416 with ``Content-Range: bytes */size``."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range ``header`` asks of a ``size``-byte file, or None to send it all.

    Raises :class:`UnsatisfiableRangeError` for a well-formed range beyond the end.
    """
    if not header:
        return None
    match = _SINGLE_RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match["first"], match["last"]
    if (not first and not last) or len(first) > _MAX_DIGITS or len(last) > _MAX_DIGITS:
        return None
    if not first:
        # The last n bytes.
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise UnsatisfiableRangeError
        return ByteRange(max(0, size - suffix), min(suffix, size))
    start = int(first)
    if last and int(last) < start:
        return None  # "5-3" is invalid: ignored
    if start >= size:
        raise UnsatisfiableRangeError
    end = min(int(last), size - 1) if last else size - 1
    return ByteRange(start, end - start + 1)


def if_range_allows(header: str | None, etag: str | None, last_modified: int | None) -> bool:
    """Whether ``If-Range`` lets the ``Range`` header count (no header: it does).

    An entity tag must match strongly; a date must be exactly the file's
    ``Last-Modified`` (RFC 9110, section 13.1.5). A weak tag never matches.
    """
    if header is None:
        return True
    header = header.strip()
    if header.startswith(('"', "W/")):
        return etag is not None and header == etag
    date = parse_http_date_safe(header)
    return date is not None and last_modified is not None and date == last_modified
