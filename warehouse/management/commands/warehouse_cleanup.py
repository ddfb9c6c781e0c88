"""Find, and with --delete unlink, the large objects that nothing references."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from warehouse import references, registry, unlinking
from warehouse.conf import alias_for_writing
from warehouse.connections import kept_open
from warehouse.io import large_object_size
from warehouse.objects import database_connection, large_object_exists
from warehouse.progress import Progress, human_size, positive_int

# Each lo_unlink holds a lock until commit: 20,000 in one transaction overflow the
# default lock table (max_locks_per_transaction = 64), 5,000 fit.
DEFAULT_BATCH_SIZE = 1000  # objects

EXIT_WOULD_DELETE = 1
EXIT_ERRORS = 2


@dataclass
class Tally:
    """How many objects, and how many bytes, fell into one class."""

    count: int = 0
    size: int = 0
    oids: list[int] = field(default_factory=list)

    def add(self, loid: int, size: int) -> None:
        self.count += 1
        self.size += size
        self.oids.append(loid)

    def __str__(self) -> str:
        return f"{self.count} ({human_size(self.size)})"


class Command(BaseCommand):
    help = (
        "Find large objects that no file field and no oid/lo column references. Dry run "
        "unless --delete. Registered objects younger than the grace period are kept (their "
        "row may be about to be saved); unregistered ones are deleted only with "
        "--include-unregistered, since nothing tells their age. Exit status: 0 done, "
        f"{EXIT_WOULD_DELETE} a dry run found objects to delete, {EXIT_ERRORS} some could "
        "not be deleted, or deleting was refused because some reference source (a table "
        "missing here, a model routed elsewhere, an unreadable column, an app migrated "
        "here but not installed) cannot be seen."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--delete", action="store_true", help="Unlink what is found.")
        parser.add_argument(
            "--grace-hours",
            type=float,
            default=references.DEFAULT_GRACE_HOURS,
            help="Keep registered objects younger than this "
            f"(default {references.DEFAULT_GRACE_HOURS}).",
        )
        parser.add_argument(
            "--include-unregistered",
            action="store_true",
            help="Also unlink unreferenced objects that have no registry row.",
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Objects unlinked per transaction (default {DEFAULT_BATCH_SIZE}).",
        )

    @kept_open()  # a connection per file read would be slow with CONN_MAX_AGE = 0
    def handle(self, *args: Any, **options: Any) -> None:
        using = alias_for_writing()
        catalog = references.read_catalog(using)
        self.check_sources(catalog.blind, using, deleting=options["delete"])
        found = self.survey(using, timedelta(hours=options["grace_hours"]), catalog)
        doomed = found["orphaned"].oids + (
            found["unregistered"].oids if options["include_unregistered"] else []
        )
        self.report(found)
        if not options["delete"]:
            if doomed:
                self.stdout.write(f"dry run: would delete {len(doomed)}; run with --delete")
                raise CommandError(f"{len(doomed)} objects to delete", returncode=EXIT_WOULD_DELETE)
            return
        deleted, failed = self.delete(doomed, using, options["batch_size"])
        stale = self.forget_stale_rows(using)
        self.stdout.write(
            f"deleted {deleted} objects, {failed} failed, {stale} registry rows without object"
        )
        if failed:
            raise CommandError(f"{failed} objects could not be deleted", returncode=EXIT_ERRORS)

    def check_sources(self, blind: list[str], using: str, *, deleting: bool) -> None:
        """Refuse to delete while some reference source cannot be seen; a dry run only warns."""
        if not blind:
            return
        problem = (
            "these reference sources cannot be seen from database "
            f"{using!r}, so an object referenced only there looks orphaned: " + "; ".join(blind)
        )
        if deleting:
            raise CommandError(
                f"refusing to delete: {problem}. Make them visible (grant SELECT, route the "
                "model here, migrate or install the app) and run again.",
                returncode=EXIT_ERRORS,
            )
        self.stderr.write(f"warning: {problem}")

    def survey(self, using: str, grace: timedelta, catalog: references.Catalog) -> dict[str, Tally]:
        """Sort every large object: referenced, orphaned, too young, or unregistered."""
        referenced = references.referenced_oids(using, catalog)
        young_since = timezone.now() - grace
        found = {kind: Tally() for kind in ("referenced", "orphaned", "young", "unregistered")}
        self.unmeasured: list[str] = []
        for loid, registered, size, created in self.large_objects(using):
            if loid in referenced:
                found["referenced"].add(loid, size or 0)
            elif not registered:
                try:
                    size = _measure(loid, using)
                except FileNotFoundError:
                    continue  # unlinked since it was listed: nothing left to sort
                except (DatabaseError, OSError) as exc:
                    # Unreadable by this role, say: still an unregistered object, of unknown size.
                    self.unmeasured.append(f"large object {loid}: {exc}".strip())
                    size = 0
                found["unregistered"].add(loid, size)
            elif created > young_since:
                found["young"].add(loid, size)
            else:
                found["orphaned"].add(loid, size)
        return found

    def large_objects(self, using: str) -> list[tuple[int, bool, int | None, Any]]:
        """(oid, registered, size, created) of every large object, from the catalog."""
        return references.large_objects(using)

    def report(self, found: dict[str, Tally]) -> None:
        self.stdout.write(
            f"large objects: {found['referenced']} referenced, {found['orphaned']} orphaned, "
            f"{found['young']} unreferenced within the grace period, "
            f"{found['unregistered']} unreferenced and unregistered"
        )
        if self.unmeasured:
            self.stdout.write(
                f"{len(self.unmeasured)} objects could not be measured (counted as 0 bytes), "
                f"the first one: {self.unmeasured[0]}"
            )

    def delete(self, oids: list[int], using: str, batch_size: int) -> tuple[int, int]:
        """Unlink in batches, each checked again and locked in its own transaction."""
        progress = Progress(self.stderr, every=batch_size)
        deleted = failed = 0
        for start in range(0, len(oids), batch_size):
            batch = oids[start : start + batch_size]
            try:
                deleted += self.delete_batch(batch, using)
            except DatabaseError as exc:
                failed += len(batch)
                progress.clear()
                self.stderr.write(f"batch of {len(batch)} from oid {batch[0]} failed: {exc}")
            progress.advance(f"cleanup: {start + len(batch)}/{len(oids)} objects", len(batch))
        progress.finish()
        return deleted, failed

    def delete_batch(self, batch: list[int], using: str) -> int:
        # Checked again, and locked: what a save holds now is skipped rather than waited for.
        with transaction.atomic(using=using):
            return len(unlinking.unlink_unreferenced(batch, using, wait=False).unlinked)

    def forget_stale_rows(self, using: str) -> int:
        """Remove registry rows whose object is gone (unlinked behind the storage's back)."""
        with connections[using].cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {registry.table()} f WHERE NOT EXISTS "
                f"(SELECT FROM pg_largeobject_metadata m WHERE m.oid = f.oid)"
            )
            return cursor.rowcount


def _measure(loid: int, using: str) -> int:
    """The size of an object; ``FileNotFoundError`` if it is gone, even while being opened."""
    try:
        # A savepoint, or a transaction of its own in autocommit: a refused lo_open
        # aborts the transaction it runs in, and that must not be the caller's.
        with transaction.atomic(using=using):
            return large_object_size(loid, using)
    except DatabaseError:
        # Unlinked between the catalog's answer and lo_open: as good as never listed.
        if not large_object_exists(database_connection(using), loid):
            raise FileNotFoundError(f"large object {loid} was unlinked meanwhile") from None
        raise
