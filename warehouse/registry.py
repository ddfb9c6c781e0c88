"""Keeping the registry true: a row made, refreshed and removed with its object.

Every function here runs in the caller's transaction, so a row and its
object are created or removed together or not at all. The registry is
skipped when the ``warehouse`` app is not installed: the storage works
without it, only ``vacuumlo`` safety and the stored facts are lost.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import hashlib
import mimetypes
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from django.apps import apps
from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from warehouse.io import READ_SIZE, DbFileIO
from warehouse.objects import insufficient_privilege, privilege_sql

if TYPE_CHECKING:
    from warehouse.models import StoredFile

NAME_LENGTH = 255  # characters, StoredFile.name's max_length


class Digest:
    """Size and SHA-256 of bytes as they stream past, so no second pass is needed.

    For text (``check_utf8``), also whether the bytes are valid UTF-8: what
    lets a download say ``charset=utf-8`` without reading the file again.
    """

    def __init__(self, *, check_utf8: bool = False) -> None:
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._checked = check_utf8
        self._utf8: Any = codecs.getincrementaldecoder("utf-8")() if check_utf8 else None

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._sha256.update(chunk)
        if self._utf8 is not None:
            try:
                self._utf8.decode(chunk)
            except UnicodeDecodeError:
                self._utf8 = None  # decided: no need to look further

    @property
    def utf8(self) -> bool | None:
        """Whether the bytes were valid UTF-8; None when not asked."""
        if not self._checked:
            return None
        try:
            return self._utf8 is not None and self._utf8.decode(b"", final=True) == ""
        except UnicodeDecodeError:
            return False

    def read_through(self, read: Callable[[int], bytes]) -> Digest:
        """Count and hash what ``read(size)`` returns until it returns less; return self."""
        while chunk := read(READ_SIZE):
            self.update(chunk)
            if len(chunk) < READ_SIZE:
                break  # a read returns less only at the end: no round trip to read nothing
        return self

    def passing(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Yield ``chunks`` unchanged, counting and hashing each."""
        for chunk in chunks:
            self.update(chunk)
            yield chunk

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


def enabled() -> bool:
    """Whether the registry exists: the warehouse app is installed."""
    return apps.is_installed("warehouse")


def app_label() -> str:
    """The label the app is installed under: its ``AppConfig`` may rename it."""
    return apps.get_containing_app_config(__name__).label


def _model() -> type[StoredFile]:
    # Imported when used: a site may use the storage without installing the app.
    from warehouse.models import StoredFile

    return StoredFile


def table() -> str:
    """The registry's table, quoted for SQL that joins it with the catalog."""
    return f'"{_model()._meta.db_table}"'


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """Around a read of the registry: a role that may not read its table gets ``PermissionError``.

    What an object the role may not read raises too, so that callers handle
    one error (``db_serve``: a 404, logged; never a 500).
    """
    try:
        yield
    except DatabaseError as exc:
        if not insufficient_privilege(exc):
            raise
        raise PermissionError(
            errno.EACCES,
            f"{str(exc).strip()}: this database role may not read the registry; "
            f"'GRANT SELECT ON {table()} TO <the role>' or 'manage.py warehouse_grant' lets it",
        ) from exc


def is_text(name: str, content_type: str | None = None) -> bool:
    """Whether a file is text, by the name it was stored under (else its declared type)."""
    guessed = mimetypes.guess_type(name)[0] or content_type or ""
    return guessed.startswith("text/")


def measure(loid: int, using: str, *, check_utf8: bool = False) -> Digest:
    """Read an object through and return its size and SHA-256."""
    with DbFileIO(loid, "rb", using=using) as file:
        return Digest(check_utf8=check_utf8).read_through(file.read)


def original_name(saved_as: str, uploaded_as: str | None = None) -> str:
    """The name to register: the folder a file was saved under, and the name it was uploaded as.

    The folder is ``upload_to``'s, or that of a previous storage's name
    (``"invoices/2026/hello.txt"``): ``warehouse_export`` puts the file back
    there. The uploaded name keeps what a storage's ``get_valid_name`` would
    have changed (``"Rechnung März.pdf"``). A name too long for the column
    loses its folder first, and NUL characters are dropped (see :func:`storable`).
    """
    name = posixpath.join(posixpath.dirname(saved_as), os.path.basename(uploaded_as or saved_as))
    name = storable(name)
    return name if len(name) <= NAME_LENGTH else os.path.basename(name)[-NAME_LENGTH:]


def storable(declared: str) -> str:
    """A name or type a client declared, as PostgreSQL's text can hold it: without NUL.

    The server refuses the whole row for one NUL; what a client says a file
    is called or holds is kept as well as it can be rather than refused.
    """
    return declared.replace("\x00", "")


def guess_content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def record(
    loid: int,
    *,
    name: str,
    content_type: str | None,
    digest: Digest,
    connection: BaseDatabaseWrapper,
    extension: str = "",
    upload: bool = False,
) -> None:
    """Create the row of an object just written, from facts gathered while writing it.

    On ``connection``, the one the object was written on: the row commits or
    rolls back with it, whether that is the caller's connection or the
    package's own (which the ORM cannot address).
    """
    if not enabled():
        return
    name = original_name(name or "")
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table()} (oid, name, extension, content_type, size, sha256, utf8, "
            "upload, created, modified) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                loid,
                name,
                extension[:NAME_LENGTH],
                (storable(content_type or "") or guess_content_type(name))[:NAME_LENGTH],
                digest.size,
                digest.sha256,
                digest.utf8,
                upload,
                now,
                now,
            ],
        )


def adopt(connection: BaseDatabaseWrapper, loid: int, *, extension: str, name: str) -> bool:
    """Make an upload a stored file, in the transaction saving it; False if it is no upload.

    The row keeps what the upload handler learnt (type, size, SHA-256), and
    ``name``, the upload's name in the folder it is saved under.
    """
    if not enabled():
        return True
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table()} SET upload = false, extension = %s, name = %s "
            "WHERE oid = %s AND upload",
            [extension[:NAME_LENGTH], original_name(name), loid],
        )
        return cursor.rowcount == 1


def register(
    loid: int, *, name: str = "", content_type: str | None = None, using: str
) -> StoredFile | None:
    """Register an object made without the storage (by DbFileIO, or before the registry).

    Reads it through once to learn its size and SHA-256; an existing row is
    brought up to date and keeps its name unless another is given.
    """
    if not enabled():
        return None
    row = _model().objects.using(using).filter(oid=loid).first()
    check_utf8 = is_text(name or (row.name if row else ""), content_type)
    digest = measure(loid, using, check_utf8=check_utf8)
    if row is None:
        record(
            loid,
            name=name,
            content_type=content_type,
            digest=digest,
            connection=connections[using],
        )
        return _model().objects.using(using).get(oid=loid)
    row.size, row.sha256, row.utf8 = digest.size, digest.sha256, digest.utf8
    row.modified = timezone.now()
    if name:
        row.name = os.path.basename(name)[-NAME_LENGTH:]
    if content_type:
        row.content_type = content_type[:NAME_LENGTH]
    row.save(using=using)
    return row


def refresh(connection: BaseDatabaseWrapper, loid: int) -> None:
    """Bring a row up to date after its object was written in place, in that transaction.

    ``connection`` is the one the writes were made on: only its transaction
    sees them before they commit.
    """
    if not enabled():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT name, content_type FROM {table()} WHERE oid = %s FOR UPDATE", [loid]
        )
        row = cursor.fetchone()
        if row is None:
            return
        with connection.wrap_database_errors:
            lobject = connection.connection.lobject(loid, "rb")
            digest = Digest(check_utf8=is_text(*row)).read_through(lobject.read)
            lobject.close()
        cursor.execute(
            f"UPDATE {table()} SET size = %s, sha256 = %s, utf8 = %s, modified = %s WHERE oid = %s",
            [digest.size, digest.sha256, digest.utf8, timezone.now(), loid],
        )


class Facts(NamedTuple):
    """What serving an object needs to know about it, from one query."""

    exists: bool
    may_read: bool = False
    registered: bool = False
    size: int | None = None
    sha256: str = ""
    modified: datetime | None = None
    name: str = ""
    content_type: str = ""
    utf8: bool | None = None


def facts(connection: BaseDatabaseWrapper, loid: int) -> Facts:
    """Whether ``loid`` exists and may be read, and what its row says, in one round trip."""
    may_read = privilege_sql(connection, "SELECT")
    if enabled():
        sql = (
            f"SELECT {may_read}, f.oid IS NOT NULL, f.size, f.sha256, f.modified, f.name, "
            f"f.content_type, f.utf8 FROM pg_largeobject_metadata m "
            f"LEFT JOIN {table()} f ON f.oid = m.oid WHERE m.oid = %s"
        )
    else:
        sql = f"SELECT {may_read} FROM pg_largeobject_metadata m WHERE m.oid = %s"
    with connection.cursor() as cursor, reading():
        cursor.execute(sql, [loid])
        row = cursor.fetchone()
    if row is None:
        return Facts(exists=False)
    found = Facts(True, *row)
    return found._replace(sha256=found.sha256 or "", name=found.name or "")


def forget_digest(connection: BaseDatabaseWrapper, loid: int) -> None:
    """Clear what a row can no longer vouch for: the bytes changed outside its knowledge."""
    if enabled():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table()} SET sha256 = '', utf8 = NULL, modified = %s WHERE oid = %s",
                [timezone.now(), loid],
            )


def forget(loid: int, using: str) -> bool:
    """Remove the row of an object being unlinked; return whether the object exists.

    One statement for both, since the unlink that follows needs to know.
    """
    sql = "SELECT EXISTS (SELECT FROM pg_largeobject_metadata WHERE oid = %s)"
    params = [loid]
    if enabled():
        sql = f"WITH forgotten AS (DELETE FROM {table()} WHERE oid = %s) {sql}"
        params = [loid, loid]
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def lookup(loid: int, using: str) -> StoredFile | None:
    """The row of an object, or None when it is not registered."""
    if not enabled():
        return None
    with reading():
        return _model().objects.using(using).filter(oid=loid).first()


def lock(loid: int, using: str) -> bool:
    """Lock an object's row until the transaction ends, to add a reference to the object.

    An unlink locks the row too before checking for references
    (:mod:`warehouse.references`): whichever comes second waits, then sees
    what the first did. Exclusive, not shared: a transaction that adds a
    reference and then drops one (a copy deleted again) must not wait for
    another doing the same, each holding the row the other needs.
    Unregistered objects have no row and so no lock. Returns whether there
    was a row to lock.
    """
    if not enabled():
        return False
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT FROM {table()} WHERE oid = %s FOR UPDATE", [loid])
        return cursor.rowcount > 0
