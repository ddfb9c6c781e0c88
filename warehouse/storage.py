"""A Django ``Storage`` that keeps each file in a PostgreSQL large object.

A stored file is named ``<oid><ext>``: the oid of its large object and the
extension of the name it was uploaded with (``"a/report.PDF"`` is saved as
``"16384.PDF"``). The server picks the oid, so ``upload_to`` and
``get_available_name`` never change a name and saving needs no ``exists()``
round trip.

Names of the storage a site used before (``"invoices/2026/hello.txt"``) are
read from that storage when it is given (``previous=`` or
``WAREHOUSE_PREVIOUS_STORAGE``): see :mod:`warehouse.previous`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urljoin

from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import File
from django.core.files.storage import Storage
from django.db import DatabaseError, connections, transaction
from django.utils.deconstruct import deconstructible
from django.utils.encoding import filepath_to_uri

from warehouse import registry, transactions
from warehouse.conf import alias_for_reading, alias_for_writing, conf
from warehouse.io import (
    CHUNK_SIZE,
    DbFileIO,
    close_rolled_back,
    large_object_size,
    open_large_object,
    raw_of,
)
from warehouse.names import OID_DIGITS, extension_of, is_other_storage_name, oid_of
from warehouse.objects import (
    database_connection,
    large_object_exists,
    unlink_known_large_object,
)
from warehouse.previous import opened_for_reading, resolved

if TYPE_CHECKING:
    from warehouse.models import StoredFile

__all__ = ["DbFile", "DbFileIO", "DbFileStorage", "db_file_storage", "oid_of"]


class DbFile(File):
    """A Django ``File`` over a large object.

    ``size`` comes from the object itself: Django's ``File`` would otherwise
    fall back to ``os.path.getsize(name)`` and stat a local file that happens
    to share the name. ``open()`` on a closed one reopens the object, never a
    local path.
    """

    def __init__(self, file: IO[Any], name: str, storage: DbFileStorage) -> None:
        super().__init__(file, name)
        self._storage = storage
        self.mode = getattr(file, "mode", "rb")

    @property
    def size(self) -> int:  # type: ignore[override]
        if self.file.writable():
            self.file.flush()
        return raw_of(self.file).size

    def close(self) -> None:
        """Close the object; writes are recorded in the registry in their transaction."""
        try:
            if self.file is not None and not self.file.closed and self.file.writable():
                self.file.flush()
        except BaseException:
            # What could not be written must not be kept either.
            close_rolled_back(self.file)
            raise
        finally:
            super().close()

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        if exc_type is not None:
            # Failed writes are rolled back: nothing to record, and the error to see is theirs.
            close_rolled_back(self.file)
        else:
            self.close()

    def open(self, mode: str | None = None, *args: Any, **kwargs: Any) -> DbFile:
        if not self.closed:
            self.seek(0)
        else:
            self.file = self._storage.open(self.name, mode or self.mode).file
        return self


@deconstructible(path="warehouse.storage.DbFileStorage")
class DbFileStorage(Storage):
    """Store files as PostgreSQL large objects, in the caller's transaction.

    ``previous`` is the storage the files were in before (a ``Storage``, an
    alias in ``STORAGES`` or the dotted path of a storage class;
    ``WAREHOUSE_PREVIOUS_STORAGE`` unless given): names that are not large
    objects' are opened for reading, sized, timed and deleted there.
    """

    def __init__(self, base_url: str | None = None, previous: Storage | str | None = None) -> None:
        self._base_url = base_url
        self._previous = previous

    @property
    def base_url(self) -> str:
        """Where the files are served; ``WAREHOUSE_BASE_URL`` unless given."""
        base_url = self._base_url if self._base_url is not None else conf.WAREHOUSE_BASE_URL
        return base_url if base_url.endswith("/") else base_url + "/"

    @property
    def previous(self) -> Storage | None:
        """The storage the files were in before, while they move; None once they have."""
        spec = self._previous if self._previous is not None else conf.WAREHOUSE_PREVIOUS_STORAGE
        storage = resolved(spec)
        if isinstance(storage, DbFileStorage):
            raise ImproperlyConfigured(
                f"The previous storage {spec!r} keeps large objects itself: name the storage "
                "the files are in now."
            )
        return storage

    def previous_for(self, name: str) -> Storage | None:
        """The previous storage, when it is the one that keeps ``name``; else None."""
        return self.previous if is_other_storage_name(name) else None

    # -- writing --------------------------------------------------------------

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        """Return ``name``: the oid makes every saved name unique."""
        _require_str(name)
        if max_length is not None and OID_DIGITS + len(extension_of(name)) > max_length:
            # Keep what fits of the extension rather than refuse the upload.
            head, ext = os.path.splitext(name)
            return head + ext[: max(0, max_length - OID_DIGITS)]
        return name

    def _save(self, name: str, content: File) -> str:
        _require_str(name)
        using = alias_for_writing()
        extension = extension_of(name)
        if not transactions.in_callers_transaction(database_connection(using)):
            # The object and its row in a transaction of the package's own, committed
            # when the file closes (a failure rolls both back): no atomic block of
            # Django's, no lo_close right before the commit.
            return _adopted_or_written(name, content, using, extension)
        # In the caller's transaction, a failure part-way rolls the new object back
        # with everything else; in a savepoint of its own, unless the whole row
        # save fails with it.
        with transaction.atomic(using=using, savepoint=not _saving_a_row.get()):
            return _adopted_or_written(name, content, using, extension)

    def delete(self, name: str) -> None:
        """Unlink the object in the current transaction; a missing name is no error."""
        if not name:
            raise ValueError("The name must be given to delete().")
        if (elsewhere := self.previous_for(name)) is not None:
            # Only when asked: the lifecycle of a DbFileField never unlinks such names.
            elsewhere.delete(name)
            return
        try:
            loid = oid_of(name)
        except FileNotFoundError:
            return
        using = alias_for_writing()
        try:
            # A savepoint when nested: losing a race with another delete must
            # not abort the caller's transaction.
            with transaction.atomic(using=using):
                if registry.forget(loid, using):
                    unlink_known_large_object(database_connection(using), loid)
        except (DatabaseError, FileNotFoundError):
            # Unlinked by another transaction meanwhile: what was asked for is done.
            if large_object_exists(database_connection(using), loid):
                raise

    def delete_unreferenced(self, name: str) -> bool:
        """Unlink the object unless something still references it; return whether it went.

        ``delete()`` unlinks whatever else names the object; this asks
        first :func:`warehouse.unlinking.unlink_unreferenced`, as the
        ``DbFileField`` lifecycle does: what hand-written signals should call.
        """
        from warehouse.unlinking import unlink_unreferenced

        try:
            loid = oid_of(name)
        except FileNotFoundError:
            return False
        return loid in unlink_unreferenced([loid], alias_for_writing()).unlinked

    # -- reading --------------------------------------------------------------

    def _open(self, name: str, mode: str = "rb") -> DbFile:
        if (elsewhere := self.previous_for(name)) is not None:
            return opened_for_reading(elsewhere, name, mode)
        # Writable modes go to the write alias; reads are routed (warehouse.transactions).
        file = open_large_object(oid_of(name), mode, name=name)
        return DbFile(file, name, self)

    def exists(self, name: str) -> bool:
        """Whether the object exists (even one this role may not read, as ``os.path.exists``)."""
        if (elsewhere := self.previous_for(name)) is not None:
            return elsewhere.exists(name)
        try:
            loid = oid_of(name)
        except FileNotFoundError:
            return False
        return any(
            large_object_exists(database_connection(alias), loid)
            for alias in transactions.aliases_for_looking(loid)
        )

    def size(self, name: str) -> int:
        """The registered size, in one query; an unregistered object is measured."""
        if (elsewhere := self.previous_for(name)) is not None:
            return elsewhere.size(name)
        loid = oid_of(name)
        for alias in transactions.aliases_for_looking(loid):
            found = registry.facts(database_connection(alias), loid)
            if found.exists:
                return found.size if found.size is not None else large_object_size(loid, alias)
        raise FileNotFoundError(f"No stored file named {name!r}")

    def uploaded_name(self, name: str) -> str:
        """The name a person knows the file by: the one it was uploaded as, else ``name``.

        ``"16614.pdf"`` reads as ``"Rechnung März.pdf"``, without its folder,
        from the registry (one query); a name the registry does not know, a
        previous storage's or a malformed one is returned as it is, so that a
        page listing files never fails on one of them. Downloads already
        carry this name (``db_serve``); this is for the page linking to them.
        """
        if self.previous_for(name) is not None:
            return os.path.basename(name)
        try:
            loid = oid_of(name)
        except FileNotFoundError:
            return name
        for alias in transactions.aliases_for_looking(loid):
            try:
                row = registry.lookup(loid, alias)
            except PermissionError:  # a role that may not read the registry
                continue
            if row is not None and row.name:
                return os.path.basename(row.name)
        return name

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        """List every large object by the name the storage gave it, which is what rows hold.

        Names carry no directories. An object the storage did not make, or
        made before the registry kept extensions, is listed by its bare oid.
        """
        if path.strip("/.") != "":
            raise FileNotFoundError(f"{path!r}: large objects are not kept in directories")
        if registry.enabled():
            sql = (
                f"SELECT m.oid, f.extension FROM pg_largeobject_metadata m "
                f"LEFT JOIN {registry.table()} f ON f.oid = m.oid ORDER BY m.oid"
            )
        else:
            sql = "SELECT oid, NULL FROM pg_largeobject_metadata ORDER BY oid"
        with connections[alias_for_reading()].cursor() as cursor, registry.reading():
            cursor.execute(sql)
            return [], [f"{oid}{extension or ''}" for oid, extension in cursor.fetchall()]

    def url(self, name: str | None) -> str:
        url = filepath_to_uri(name)
        if url is not None:
            url = url.lstrip("/")
        return urljoin(self.base_url, url)

    def get_accessed_time(self, name: str) -> Any:
        if (elsewhere := self.previous_for(name)) is not None:
            return elsewhere.get_accessed_time(name)
        raise NotImplementedError("PostgreSQL keeps no access time for large objects.")

    def get_created_time(self, name: str) -> datetime:
        if (elsewhere := self.previous_for(name)) is not None:
            return elsewhere.get_created_time(name)
        return self._registered(name).created

    def get_modified_time(self, name: str) -> datetime:
        if (elsewhere := self.previous_for(name)) is not None:
            return elsewhere.get_modified_time(name)
        return self._registered(name).modified

    def _registered(self, name: str) -> StoredFile:
        loid = oid_of(name)
        for alias in transactions.aliases_for_looking(loid):
            row = registry.lookup(loid, alias)
            if row is not None:
                return row
            if large_object_exists(database_connection(alias), loid):
                raise NotImplementedError(
                    f"{name!r} is not in the registry, and PostgreSQL keeps no times for large "
                    "objects; 'manage.py warehouse_register' registers it."
                )
        raise FileNotFoundError(f"No stored file named {name!r}")


# Set while a model with a DbFileField saves (warehouse.fields): the save is one
# transaction that fails as a whole, so a savepoint around the upload buys nothing.
_saving_a_row: ContextVar[bool] = ContextVar("warehouse_saving_a_row", default=False)


@contextmanager
def saving_a_row() -> Iterator[None]:
    """Within this block, an upload shares the failure of the row save around it."""
    token = _saving_a_row.set(True)
    try:
        yield
    finally:
        _saving_a_row.reset(token)


def _adopted_or_written(name: str, content: File, using: str, extension: str) -> str:
    """The storage name of ``content``: an upload's own object, or a new one written now."""
    if _adopted(name, content, using, extension):
        return f"{content.loid}{extension}"  # type: ignore[attr-defined]
    return _write_new(name, content, using, extension)


def _write_new(name: str, content: File, using: str, extension: str) -> str:
    """Stream ``content`` into a new object and register it, in the transaction it joins."""
    digest = registry.Digest(check_utf8=registry.is_text(name))
    # Unbuffered: each 1 MiB chunk is one lo_write as it is. A buffered writer
    # would pass it on as a memoryview, which lobject.write() only takes copied.
    with open_large_object(0, "wb", buffering=0, using=using) as raw:
        for chunk in digest.passing(content.chunks(CHUNK_SIZE)):
            raw.write(chunk)
        registry.record(
            raw.loid,
            name=registry.original_name(name, getattr(content, "name", None)),
            content_type=getattr(content, "content_type", None),
            digest=digest,
            connection=raw.connection,
            extension=extension,
        )
    return f"{raw.loid}{extension}"


def _adopted(name: str, content: File, using: str, extension: str) -> bool:
    """Whether ``content`` is an upload in a large object that this save now makes its own.

    Only once, and only on the database it is in: any other save copies it.
    """
    from warehouse.uploads import DbUploadedFile

    if not isinstance(content, DbUploadedFile) or content.adopted or content.using != using:
        return False
    content.adopted = registry.adopt(
        connections[using],
        content.loid,
        extension=extension,
        name=registry.original_name(name, content.name),
    )
    return content.adopted


def _require_str(name: object) -> None:
    """Refuse a name no file can have before anything is written (not after the commit)."""
    if not isinstance(name, str):
        raise TypeError(f"a file name must be a str, not {type(name).__name__}")
    if "\x00" in name:
        # As a file system refuses it in a path; PostgreSQL refuses it in text (the registry's).
        raise ValueError(f"a file name must not contain NUL characters: {name!r}")


db_file_storage = DbFileStorage()
