"""What a stored file's name means: one grammar, for Python and for SQL alike.

A name is the oid of its large object, without leading zeros, and what the
storage kept of the uploaded name's extension: ``"16384"``, ``"16384.pdf"``.
Everything after the first dot is extension, so ``"16384.tar.gz"`` names
object 16384 too; a slash or backslash anywhere makes a string no name of
ours. The reference checks match rows with :data:`PATTERN` in SQL and
:func:`oid_of` parses with the same pattern here, so what a row holds and
what the storage opens can never disagree.

Any other non-empty string may be a name another storage gave a file: what
rows hold before ``warehouse_import`` moves their files into large objects
(``"invoices/2026/hello.txt"``), served meanwhile by the storage a site used
before (:mod:`warehouse.previous`).
"""

from __future__ import annotations

import os
import re

from warehouse.objects import MAX_OID

# The oid, then the extension. Valid as a Python and as a PostgreSQL regular expression.
PATTERN = r"([1-9][0-9]{0,9})(\.[^/\\]*)?"
_NAME = re.compile(PATTERN)
# An oid has at most 10 digits; names must fit a FileField's max_length.
OID_DIGITS = 10
_UNSAFE_IN_EXTENSION = re.compile(r"[^A-Za-z0-9_-]")


def oid_of(name: str) -> int:
    """Return the oid a storage name refers to; ``FileNotFoundError`` for any other string."""
    match = _NAME.fullmatch(name) if isinstance(name, str) and "\x00" not in name else None
    if match is None or int(match[1]) > MAX_OID:
        raise FileNotFoundError(f"{name!r} is not the name of a large object")
    return int(match[1])


def is_large_object_name(name: object) -> bool:
    """Whether ``name`` names a large object, as :func:`oid_of` parses it."""
    try:
        oid_of(name)  # type: ignore[arg-type]
    except FileNotFoundError:
        return False
    return True


def is_other_storage_name(name: object) -> bool:
    """Whether ``name`` may be another storage's: a non-empty ``str`` naming no large object.

    A NUL is nobody's: no file system takes it, and PostgreSQL refuses it in text.
    """
    return (
        isinstance(name, str)
        and name != ""
        and "\x00" not in name
        and not is_large_object_name(name)
    )


def extension_of(name: str) -> str:
    """The extension to keep from an uploaded name, stripped of what a URL or shell would mind."""
    ext = os.path.splitext(os.path.basename(name))[1]
    ext = _UNSAFE_IN_EXTENSION.sub("", ext[1:])
    return f".{ext}" if ext else ""


def oid_in_sql(column: str) -> str:
    """SQL for the oid a text ``column`` names, NULL when it names none (as :func:`oid_of`)."""
    digits = f"substring({column} FROM '^{PATTERN}$')"
    return f"CASE WHEN {digits}::bigint <= {MAX_OID} THEN {digits}::bigint::oid END"
