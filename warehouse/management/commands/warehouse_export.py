"""Move a file field's files out of large objects into another storage."""

from __future__ import annotations

import contextlib
from typing import Any

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.utils import validate_file_name
from django.core.management.base import CommandParser
from django.db import DatabaseError, transaction

from warehouse import registry, unlinking
from warehouse.storage import oid_of
from warehouse.transfer import FieldTransferCommand, other_storage

# Prefixed to a name that reads as a large object's ("16384.pdf"), which a later
# run would otherwise take for a file still to export.
NOT_AN_OID_PREFIX = "largeobject-"


class Command(FieldTransferCommand):
    """Export the files of one field out of large objects, a row per transaction."""

    help = (
        "Move the files of a model's file field out of PostgreSQL large objects into another "
        "storage, under the names they were uploaded with, in the folders they were saved in "
        "(upload_to's, or those of the storage they were imported from). Each row is "
        "rewritten to the name the target storage gave its file, so once the run completes "
        "the rows hold the target's names: then change the field's storage to the target in "
        "the model. Until then keep the application from writing to the field. Rows that "
        "hold no large-object name are skipped, so an interrupted run resumes where it stopped "
        "and a second run changes nothing. Exit status: 0 done, 1 some rows failed (they are "
        "listed on stderr)."
    )
    verb = "export"
    done = "exported"
    skipped_because = "not in large objects"

    def add_storage_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument(
            "--to",
            dest="target",
            metavar="STORAGE",
            help="Where the files go: an alias in STORAGES, or the dotted path of a storage "
            "class to instantiate without arguments.",
        )
        target.add_argument(
            "--to-location",
            metavar="DIR",
            help="Where the files go: a directory, written with FileSystemStorage.",
        )
        parser.add_argument(
            "--unlink",
            action="store_true",
            help="Unlink each large object in the transaction that repoints its row, unless "
            "another row or an oid column still references it.",
        )

    def prepare(self, options: dict[str, Any]) -> None:
        self.target = other_storage(options["target"], options["to_location"])
        self.unlink = options["unlink"]

    def transfer(self, pk: Any, name: str) -> int | None:
        """Copy one large object to the target and point its row at the copy."""
        try:
            loid = oid_of(name)
        except FileNotFoundError:
            return None  # not a large object's name: exported already, or never stored here
        saved = None
        try:
            with transaction.atomic(using=self.using):
                target_name = self.target_name(loid, name)
                if self.dry_run:
                    size = self.db_storage.size(name)
                    self.say(f"would export {name} as {target_name} ({size} bytes)")
                    return size
                with self.db_storage.open(name, "rb") as file:
                    size = file.size
                    saved = self.target.save(target_name, file, max_length=self.field.max_length)
                self.rename(pk, name, saved)
                if self.unlink:
                    self._unlink(loid, name)
        except BaseException:
            # The target is outside the transaction: undo the copy by hand.
            if saved is not None:
                self._discard(pk, saved)
            raise
        if self.verbosity >= 2:
            self.say(f"exported {name} as {saved} ({size} bytes)")
        return size

    def target_name(self, loid: int, name: str) -> str:
        """The name to save under: the registered one, folder and all, else the object's own."""
        row = registry.lookup(loid, self.using)
        candidate = row.name if row is not None and row.name else name
        try:
            # The folder stays (upload_to's, or the previous storage's); only the file's
            # own name is made valid for the target.
            candidate = self.target.generate_filename(candidate)
            validate_file_name(candidate, allow_relative_path=True)
        except SuspiciousFileOperation:
            candidate = name
        try:
            oid_of(candidate)
        except FileNotFoundError:
            return candidate
        return NOT_AN_OID_PREFIX + candidate

    def _unlink(self, loid: int, name: str) -> None:
        # This row points at the target now, but another row may still hold the object.
        verdict = unlinking.unlink_unreferenced([loid], self.using)
        if verdict.blind:
            self.note(f"kept large object {name}: cannot see {'; '.join(verdict.blind)}")
        elif loid in verdict.kept:
            self.note(f"kept large object {name}: something else still references it")

    def _discard(self, pk: Any, saved: str) -> None:
        """Delete a file written to the target for a row update that did not commit."""
        rows = self.model._base_manager.using(self.using)
        try:
            recorded = rows.filter(pk=pk, **{self.field.attname: saved}).exists()
        except DatabaseError:
            return  # cannot tell whether the row points at it: keeping it is the safe mistake
        if not recorded:
            with contextlib.suppress(OSError):
                self.target.delete(saved)
