"""``manage.py warehouse_verify``: every stored file a row names is there, as it was saved.

Walks the file fields of every installed model (``warehouse.references``)
on the read alias, looks the objects up a batch at a time, and reads each
distinct object through once to compare its size and SHA-256 with its
registry row. One line per problem goes to stdout, progress to stderr.

While files move in (:mod:`warehouse.previous`), a name that is not a large
object's is looked for in the field's previous storage: there, it is
counted as such, not as broken; missing there too, it is dangling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import Storage
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections, models
from django.utils import timezone

from warehouse import references, registry
from warehouse.conf import alias_for_reading
from warehouse.connections import kept_open
from warehouse.io import large_object_size
from warehouse.models import StoredFile
from warehouse.objects import insufficient_privilege
from warehouse.progress import Progress, positive_int
from warehouse.storage import oid_of

# Rows fetched and objects looked up per query, and files between two progress
# lines when stderr is not a terminal: few round trips, little held in memory.
BATCH_SIZE = 1000  # rows, objects, files


class Command(BaseCommand):
    """Verify that stored files exist and still match their registry rows."""

    help = (
        "Check that every stored file named by a model's file field exists as a large "
        "object and, when it has a registry row, still has the size and SHA-256 recorded "
        "when it was saved; also report registry rows whose object is gone. Prints one "
        "line per problem (dangling, mismatch, malformed) and a summary, and exits with "
        "status 1 if there was any. Objects that exist but have no registry row (made "
        "before the registry, or by DbFileIO) are counted as unregistered, which is not "
        "an error. Objects that nothing references (no file field's row, no oid column) "
        "are reported as unreferenced, unless registered within the grace period: those "
        "are the leaks warehouse_cleanup would delete. While a field's DbFileStorage has a "
        "previous storage, names that are not large objects' are looked for there: found, "
        "they are counted as in the previous storage (not yet imported), which is not an error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace-hours",
            type=float,
            default=references.DEFAULT_GRACE_HOURS,
            help="Report unreferenced registered objects only once older than this "
            f"(default {references.DEFAULT_GRACE_HOURS}).",
        )
        parser.add_argument(
            "--no-checksums",
            action="store_false",
            dest="checksums",
            help="Compare sizes only, without reading every byte to compute SHA-256.",
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=BATCH_SIZE,
            metavar="N",
            help=f"Fetch rows and look objects up N at a time; without a terminal, "
            f"report progress every N files (default {BATCH_SIZE}).",
        )

    @kept_open()  # a connection per file read would be slow with CONN_MAX_AGE = 0
    def handle(
        self, *args: Any, checksums: bool, batch_size: int, grace_hours: float, **options: Any
    ) -> None:
        progress = Progress(self.stderr, every=batch_size, enabled=options["verbosity"] > 0)
        verification = Verification(
            alias_for_reading(),
            checksums=checksums,
            batch_size=batch_size,
            grace=timedelta(hours=grace_hours),
            progress=progress,
            report=self.stdout.write,
        )
        try:
            verification.run()
        except DatabaseError as exc:
            if not insufficient_privilege(exc):
                raise
            # A table, not an object (those are reported one by one as unreadable).
            progress.clear()
            raise CommandError(
                f"the role of database {verification.using!r} may not read a table that "
                f"verify reads: {str(exc).strip()}. Grant it SELECT on that table (on the "
                "registry, 'manage.py warehouse_grant' does)."
            ) from exc
        progress.finish()
        self.stdout.write(verification.summary())
        if verification.failed:
            raise CommandError("stored files failed verification", returncode=1)


class Verification:
    """One pass over the references and the registry of one database."""

    def __init__(
        self,
        using: str,
        *,
        checksums: bool,
        batch_size: int,
        grace: timedelta,
        progress: Progress,
        report: Callable[[str], Any],
    ) -> None:
        self.using, self.checksums, self.batch_size = using, checksums, batch_size
        self.grace = grace
        self.progress, self.report = progress, report
        self.exists: dict[int, bool] = {}  # oid -> whether it is there: each object checked once
        self.dangling = self.mismatched = self.malformed = self.unregistered = self.unreadable = 0
        self.unreferenced = 0
        self.bytes = 0
        self.elsewhere: int | None = None  # in a previous storage; None: no field has one

    @property
    def failed(self) -> bool:
        return bool(
            self.dangling
            or self.mismatched
            or self.malformed
            or self.unreadable
            or self.unreferenced
        )

    def summary(self) -> str:
        summary = (
            f"verified {self.progress.count} files ({self.bytes} bytes): "
            f"{self.dangling} dangling, {self.mismatched} mismatched, "
            f"{self.malformed} malformed, {self.unregistered} unregistered, "
            f"{self.unreadable} unreadable, {self.unreferenced} unreferenced"
        )
        if self.elsewhere is not None:
            summary += f", {self.elsewhere} in the previous storage"
        return summary

    def run(self) -> None:
        for model, field in references.file_fields_on(self.using):
            batch: list[tuple[Any, str, int]] = []
            storage = references.storage_of(field)
            if storage.previous is not None and self.elsewhere is None:
                self.elsewhere = 0
            for pk, name in self._rows(model, field):
                try:
                    batch.append((pk, name, oid_of(name)))
                except FileNotFoundError:
                    previous = storage.previous_for(name)
                    if previous is not None:
                        self._check_elsewhere(model, field, pk, name, previous)
                        continue
                    self.malformed += 1
                    self._problem(
                        f"malformed: {_where(model, field, pk)} -> {name!r} "
                        "(not a name of this storage)"
                    )
                    continue
                if len(batch) >= self.batch_size:
                    self._check_batch(model, field, batch)
                    batch = []
            self._check_batch(model, field, batch)
        self._check_registry()
        self._check_unreferenced()

    def _rows(
        self, model: type[models.Model], field: models.FileField
    ) -> Iterator[tuple[Any, str]]:
        """(pk, name) of each row with a file, in pk order.

        With the pk that a report needs: finding it afterwards would scan the
        table per problem.
        """
        rows = references.rows_with_files(model, field, self.using).order_by("pk")
        return rows.values_list("pk", field.attname).iterator(chunk_size=self.batch_size)

    def _check_batch(
        self, model: type[models.Model], field: models.FileField, batch: list[tuple[Any, str, int]]
    ) -> None:
        unseen = {loid: name for _, name, loid in batch if loid not in self.exists}
        for loid, found, size, sha256 in self._look_up(list(unseen)):
            self.exists[loid] = found and self._verify(unseen[loid], loid, size, sha256)
        for pk, name, loid in batch:
            if not self.exists[loid]:
                self.dangling += 1
                self._problem(
                    f"dangling: {_where(model, field, pk)} -> {_shown(name)} (no large object)"
                )

    def _check_elsewhere(
        self,
        model: type[models.Model],
        field: models.FileField,
        pk: Any,
        name: str,
        previous: Storage,
    ) -> None:
        """Count a name the previous storage keeps; dangling if it does not."""
        try:
            found = previous.exists(name)
        except (OSError, SuspiciousFileOperation):
            found = False
        if found:
            self.elsewhere += 1  # type: ignore[operator]
            return
        self.dangling += 1
        self._problem(
            f"dangling: {_where(model, field, pk)} -> {_shown(name)} "
            "(no large object, and not in the previous storage)"
        )

    def _look_up(self, oids: list[int]) -> list[tuple[int, bool, int | None, str | None]]:
        """(oid, whether it exists, registered size, registered SHA-256) of each, in one query."""
        if not oids:
            return []
        with connections[self.using].cursor() as cursor:
            cursor.execute(
                f"SELECT o.oid, m.oid IS NOT NULL, f.size, f.sha256 "
                f"FROM unnest(%s::oid[]) AS o(oid) "
                f"LEFT JOIN pg_largeobject_metadata m ON m.oid = o.oid "
                f"LEFT JOIN {registry.table()} f ON f.oid = o.oid",
                [oids],
            )
            return cursor.fetchall()

    def _verify(self, name: str, loid: int, size: int | None, sha256: str | None) -> bool:
        """Compare an object with its row; False if it went away since it was looked up."""
        try:
            if self.checksums and size is not None:
                digest = registry.measure(loid, self.using)
                actual_size, actual_sha256 = digest.size, digest.sha256
            else:
                actual_size, actual_sha256 = large_object_size(loid, self.using), sha256
        except FileNotFoundError:
            return False
        except PermissionError:
            # It exists; this role cannot vouch for its bytes.
            self.unreadable += 1
            self._problem(
                f"unreadable: {_shown(name)} (this role may not read large object {loid})"
            )
            return True
        self.bytes += actual_size
        self.progress.advance(f"verify: {self.progress.count + 1} files ({self.bytes} bytes)")
        if size is None:
            self.unregistered += 1
        elif actual_size != size:
            self._mismatch(name, "size", size, actual_size)
        elif actual_sha256 != sha256:
            self._mismatch(name, "sha256", sha256, actual_sha256)
        return True

    def _mismatch(self, name: str, what: str, expected: Any, got: Any) -> None:
        self.mismatched += 1
        self._problem(f"mismatch: {_shown(name)} {what} expected {expected} got {got}")

    def _problem(self, line: str) -> None:
        self.progress.clear()
        self.report(line)

    def _check_registry(self) -> None:
        """Report the registry rows whose object is gone."""
        with connections[self.using].cursor() as cursor:
            cursor.execute(
                f"SELECT f.oid, f.name FROM {registry.table()} f "
                f"WHERE NOT EXISTS (SELECT FROM pg_largeobject_metadata m WHERE m.oid = f.oid) "
                f"ORDER BY f.oid"
            )
            rows = cursor.fetchall()
        for loid, uploaded_as in rows:
            self.dangling += 1
            self._problem(
                f"dangling: {StoredFile._meta.label} pk={loid} -> {loid} "
                f"(no large object; uploaded as {uploaded_as!r})"
            )

    def _check_unreferenced(self) -> None:
        """Report the objects nothing references: leaked, unless young enough to be in use soon."""
        catalog = references.read_catalog(self.using)
        if catalog.blind:
            blind = "; ".join(catalog.blind)
            self._problem(f"unreferenced objects not looked for: cannot see {blind}")
            return
        # The rows' names were read once already, by run(): every oid they name is a key here.
        referenced = set(self.exists) | references.oid_column_references(self.using, catalog)
        young_since = timezone.now() - self.grace
        for loid, registered, size, created in references.large_objects(self.using):
            if loid in referenced or (registered and created > young_since):
                continue
            self.unreferenced += 1
            known = (
                f"{size} bytes, registered {created:%Y-%m-%d %H:%M}"
                if registered
                else "unregistered"
            )
            self._problem(f"unreferenced: large object {loid} ({known}; nothing references it)")


def _where(model: type[models.Model], field: models.FileField, pk: Any) -> str:
    return f"{model._meta.label}.{field.name} pk={pk}"


def _shown(name: str) -> str:
    """A name as printed: quoted when it holds what would break the line."""
    return name if name.isprintable() else repr(name)
