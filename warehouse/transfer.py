"""Moving one file field's files between large objects and another storage, a row at a time.

``warehouse_import`` and ``warehouse_export`` share everything here: finding
the field, resolving the other storage, walking the rows in primary-key
order, drawing progress and summing up. Each row is moved in its own
transaction, so an interrupted run leaves every row either moved or
untouched, and running again picks up where it stopped.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from django.apps import apps
from django.core.exceptions import (
    FieldDoesNotExist,
    ImproperlyConfigured,
    SuspiciousFileOperation,
)
from django.core.files.storage import FileSystemStorage, Storage
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models

from warehouse import references, registry
from warehouse.conf import alias_for_writing
from warehouse.connections import kept_open
from warehouse.io import CHUNK_SIZE
from warehouse.previous import storage_named
from warehouse.progress import Progress, human_size, positive_int
from warehouse.storage import DbFileStorage, oid_of

DEFAULT_BATCH_SIZE = 100  # rows


class RowChangedError(Exception):
    """The row no longer holds the name it was read with: someone else changed it meanwhile."""


class AmbiguousNameError(Exception):
    """The row's name is both a file of the other storage and a different large object."""


# What makes one row fail without stopping the run: its file is missing or
# unreadable, its name unusable or ambiguous, or the row changed under us.
ROW_ERRORS = (OSError, SuspiciousFileOperation, RowChangedError, AmbiguousNameError)


def file_field(label: str) -> tuple[type[models.Model], models.FileField]:
    """Return the model and file field named ``app_label.Model.field``."""
    try:
        app_label, model_name, field_name = label.split(".")
    except ValueError:
        raise CommandError(f"{label!r} is not of the form app_label.Model.field.") from None
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError as exc:
        raise CommandError(f"{label!r}: {exc}") from None
    try:
        field = model._meta.get_field(field_name)
    except FieldDoesNotExist as exc:
        raise CommandError(f"{label!r}: {exc}") from None
    if not isinstance(field, models.FileField) or not field.concrete:
        raise CommandError(f"{label!r} is a {type(field).__name__}, not a file field.")
    return model, field


def db_storage_of(label: str, field: models.FileField) -> DbFileStorage:
    """Return the field's storage, refusing one that does not keep large objects."""
    if not isinstance(field.storage, DbFileStorage):
        # __class__, not type(): default_storage is a lazy stand-in for the real one.
        raise CommandError(
            f"{label} stores in {field.storage.__class__.__name__}, not in "
            "warehouse.storage.DbFileStorage: give the field a DbFileStorage (a DbFileField) first."
        )
    return field.storage


def other_storage(spec: str | None, location: str | None) -> Storage:
    """Return the storage an alias of ``STORAGES``, a class's dotted path or a directory names."""
    if location is not None:
        storage: Storage = FileSystemStorage(location=location)
    else:
        try:
            storage = storage_named(spec or "")
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
    if isinstance(storage, DbFileStorage):
        raise CommandError(f"{spec!r} keeps large objects already: name another storage.")
    return storage


def is_stored(storage: DbFileStorage, name: str) -> bool:
    """Whether ``name`` is one of ``storage``'s names and its large object exists."""
    try:
        oid_of(name)
    except FileNotFoundError:
        return False
    return storage.exists(name)


def is_imported(storage: DbFileStorage, source: Storage, name: str, using: str) -> bool:
    """Whether the row holding ``name`` points at its large object already.

    A legacy storage may name its files by number, so ``"16384.pdf"`` can be
    both a source file and someone else's large object. The name counts as
    imported when the source has no such file, or has one with the object's
    very content (by the registry's SHA-256); otherwise nothing tells which
    one the row means, and :class:`AmbiguousNameError` says so.
    """
    if not is_stored(storage, name):
        return False
    if not source.exists(name):
        return True
    loid = oid_of(name)
    row = registry.lookup(loid, using)
    if row is None:
        raise AmbiguousNameError(
            f"ambiguous: the source has {name} and large object {loid} exists, unregistered, "
            "so its content cannot be compared; rename the source file, and the row's name with it"
        )
    # The size first: comparing it costs no read of the source file.
    if source.size(name) != row.size or _sha256(source, name) != row.sha256:
        raise AmbiguousNameError(
            f"ambiguous: the source has {name} and large object {loid} exists with other "
            "content; rename the source file, and the row's name with it"
        )
    return True


def _sha256(storage: Storage, name: str) -> str:
    """The SHA-256 of a file, read in chunks: a legacy file may not fit in memory."""
    digest = registry.Digest()
    with storage.open(name, "rb") as file:
        for chunk in file.chunks(CHUNK_SIZE):
            digest.update(chunk)
    return digest.sha256


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


class FieldTransferCommand(BaseCommand):
    """Move the files of one field row by row, counting, drawing progress and summing up."""

    verb = ""  # "import": what the command does to a file
    done = ""  # "imported"
    skipped_because = ""  # "already in large objects": why a row needs nothing

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "field", metavar="app_label.Model.field", help="The file field whose files to move."
        )
        self.add_storage_arguments(parser)
        parser.add_argument(
            "--dry-run", action="store_true", help="Count and list what would move; change nothing."
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=DEFAULT_BATCH_SIZE,
            metavar="N",
            help=f"Rows fetched at a time, and shown per progress line when stderr is not a "
            f"terminal (default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--limit",
            type=positive_int,
            metavar="N",
            help="Stop once N files have moved or failed; run again to go on (default: all).",
        )

    def add_storage_arguments(self, parser: CommandParser) -> None:
        """Add the options naming the other storage."""
        raise NotImplementedError

    def prepare(self, options: dict[str, Any]) -> None:
        """Read the command's own options before the first row."""

    def transfer(self, pk: Any, name: str) -> int | None:
        """Move one row's file in its own transaction; return its bytes, or None if skipped."""
        raise NotImplementedError

    @kept_open()  # a connection per file read would be slow with CONN_MAX_AGE = 0
    def handle(self, *args: Any, **options: Any) -> None:
        self.label = options["field"]
        self.model, self.field = file_field(self.label)
        self.db_storage = db_storage_of(self.label, self.field)
        # Rows and objects on one connection: a row and its file commit together.
        self.using = alias_for_writing()
        self.dry_run = options["dry_run"]
        self.verbosity = options["verbosity"]
        self.prepare(options)

        total, rows = self.rows(options["batch_size"])
        self.progress = Progress(
            self.stderr, every=options["batch_size"], enabled=self.verbosity > 0
        )
        moved = moved_bytes = skipped = errors = 0
        limit = options["limit"]
        for pk, name in rows:
            if limit is not None and moved + errors >= limit:
                rows.close()  # its server-side cursor, now
                self.say(f"stopped after {_count(limit, 'file')} (--limit): run again to go on")
                break
            try:
                size = self.transfer(pk, name)
            except ROW_ERRORS as exc:
                errors += 1
                self.note(f"{self.model._meta.label} pk={pk} {name!r}: {exc}")
            else:
                if size is None:
                    skipped += 1
                else:
                    moved += 1
                    moved_bytes += size
            self.progress.advance(
                f"{self.verb}: {self.progress.count + 1}/{total} rows, {human_size(moved_bytes)}"
            )
        self.progress.finish()

        done = f"would {self.verb}" if self.dry_run else self.done
        self.stdout.write(
            f"{done} {_count(moved, 'file')} ({_count(moved_bytes, 'byte')}), "
            f"skipped {skipped} {self.skipped_because}, {_count(errors, 'error')}"
        )
        if errors:
            raise CommandError(
                f"{_count(errors, 'row')} failed; fix the cause and run again to resume.",
                returncode=1,
            )

    def rows(self, batch_size: int) -> tuple[int, Generator[tuple[Any, str], None, None]]:
        """The number of rows holding a name, and their (pk, name) in primary-key order."""
        rows = references.rows_with_files(self.model, self.field, self.using).order_by("pk")
        rows = rows.values_list("pk", self.field.attname)
        return rows.count(), rows.iterator(chunk_size=batch_size)

    def rename(self, pk: Any, old: str, new: str) -> None:
        """Point the row at ``new``, only if it still holds ``old``."""
        attname = self.field.attname
        rows = self.model._base_manager.using(self.using).filter(pk=pk, **{attname: old})
        # update() sends no signals: a DbFileField must not unlink what this replaces.
        if not rows.update(**{attname: new}):
            raise RowChangedError(f"the row changed during the {self.verb}; left as it is")

    def say(self, message: str) -> None:
        """Write a line to stdout without tearing the progress line."""
        self.progress.clear()
        self.stdout.write(message)

    def note(self, message: str) -> None:
        """Write a line to stderr without tearing the progress line."""
        self.progress.clear()
        self.stderr.write(message)
