"""Move a file field's files from another storage into large objects."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import Storage
from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError, models, transaction
from django.db.models import Value

from warehouse.references import with_table_on
from warehouse.transfer import FieldTransferCommand, is_imported, other_storage


class Command(FieldTransferCommand):
    """Import the files of one field into large objects, a row per transaction."""

    help = (
        "Move the files of a model's file field from another storage into PostgreSQL large "
        "objects. Give the field a DbFileStorage (a DbFileField) first: its rows still hold "
        "the other storage's names, and each row is rewritten to its large object's name in "
        "the transaction that creates the object. Rows already in large objects are skipped, "
        "so an interrupted run resumes where it stopped and a second run changes nothing. "
        "A name that is both a source file and a large object with other content (a legacy "
        "storage naming its files by number) fails its row rather than guess. Without --from "
        "or --from-location, the files come from the previous storage of the field's "
        "DbFileStorage (previous= or WAREHOUSE_PREVIOUS_STORAGE), which serves the rows not "
        "yet imported meanwhile; --limit moves them in batches. "
        "Exit status: 0 done, 1 some rows failed (they are listed on stderr)."
    )
    verb = "import"
    done = "imported"
    skipped_because = "already in large objects"

    def add_storage_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--from",
            dest="source",
            metavar="STORAGE",
            help="Where the files are now: an alias in STORAGES, or the dotted path of a "
            "storage class to instantiate without arguments (default: the previous storage of "
            "the field's DbFileStorage).",
        )
        source.add_argument(
            "--from-location",
            metavar="DIR",
            help="Where the files are now: a directory, read with FileSystemStorage.",
        )
        parser.add_argument(
            "--delete-source",
            action="store_true",
            help="Delete each source file once its row's transaction has committed.",
        )

    def prepare(self, options: dict[str, Any]) -> None:
        if options["source"] is None and options["from_location"] is None:
            self.source = self._previous_storage()
        else:
            self.source = other_storage(options["source"], options["from_location"])
        self.delete_source = options["delete_source"]
        if self.delete_source:
            self.holders = _file_fields(self.using)

    def _previous_storage(self) -> Storage:
        """Where the files are now when no option says: the field's previous storage."""
        try:
            previous = self.db_storage.previous
        except ImproperlyConfigured as exc:
            raise CommandError(f"{self.label}: {exc}") from None
        if previous is None:
            raise CommandError(
                f"Say where the files of {self.label} are now: --from or --from-location, or "
                "give its DbFileStorage a previous storage (WAREHOUSE_PREVIOUS_STORAGE)."
            )
        return previous

    def transfer(self, pk: Any, name: str) -> int | None:
        """Copy one file into a new large object and point its row at it."""
        # One transaction: a failure anywhere, or the row changing meanwhile, rolls
        # the new object back and leaves the row on its old name.
        with transaction.atomic(using=self.using):
            if is_imported(self.db_storage, self.source, name, self.using):
                return None
            if self.dry_run:
                size = self.source.size(name)
                self.say(f"would import {name} ({size} bytes)")
                return size
            with self.source.open(name, "rb") as file:
                new_name = self.db_storage.save(name, file, max_length=self.field.max_length)
            self.rename(pk, name, new_name)
            size = self.db_storage.size(new_name)
            if self.delete_source:
                # Never before the commit: until then the source is the only copy.
                transaction.on_commit(partial(self._delete_source, name), using=self.using)
        if self.verbosity >= 2:
            self.say(f"imported {name} as {new_name} ({size} bytes)")
        return size

    def _delete_source(self, name: str) -> None:
        holders = self._fields_naming(name)
        if holders:
            # Another row still needs the file, for its own import or for good.
            if self.verbosity >= 2:
                self.note(f"kept {name} in the source: {', '.join(holders)} still names it")
            return
        try:
            self.source.delete(name)
        except OSError as exc:
            # The row is imported all the same; only the old copy is left behind.
            self.note(f"imported {name}, but could not delete it from the source: {exc}")

    def _fields_naming(self, name: str) -> list[str]:
        """Every file field of every installed model that holds ``name``, or cannot be read.

        Not only this field: a source file can be named by another field, of
        another model, that has not been imported yet. A table that is not
        on this database counts as naming it, since it cannot be asked. One
        query for all the others.
        """
        present, absent = self.holders
        holding = [
            model._base_manager.using(self.using)
            .filter(**{field.attname: name})
            .values_list(Value(label, output_field=models.CharField()))[:1]
            for model, field, label in present
        ]
        if not holding:
            return absent
        try:
            with transaction.atomic(using=self.using):
                found = list(holding[0].union(*holding[1:], all=True))
        except DatabaseError:
            return absent + [label for _, _, label in present]
        return absent + [label for (label,) in found]


def _file_fields(using: str) -> tuple[list[tuple[Any, Any, str]], list[str]]:
    """(model, field, label) of every concrete file field whose table is on ``using``,
    and the labels of those whose table is not."""
    fields = [
        (model, field, f"{model._meta.label}.{field.name}")
        for model in apps.get_models()
        if not model._meta.proxy
        for field in model._meta.local_concrete_fields
        if isinstance(field, models.FileField)
    ]
    present, absent = with_table_on(fields, using)
    return present, [label for _, _, label in absent]
