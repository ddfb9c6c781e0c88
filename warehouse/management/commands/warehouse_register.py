"""Register large objects made before the registry existed, or by DbFileIO directly."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connections, transaction

from warehouse import references, registry
from warehouse.conf import alias_for_writing
from warehouse.connections import kept_open
from warehouse.progress import Progress
from warehouse.storage import oid_of


class Command(BaseCommand):
    help = (
        "Give every unregistered large object that a file field references a registry row "
        "(size, SHA-256, the name it is referenced by), so that vacuumlo, cleanup and verify "
        "know it. With --all, also objects that nothing references. Reads each object once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="Also unreferenced objects.")
        parser.add_argument("--dry-run", action="store_true", help="Only count.")

    @kept_open()  # a connection per file read would be slow with CONN_MAX_AGE = 0
    def handle(self, *args: Any, **options: Any) -> None:
        using = alias_for_writing()
        unregistered = self.unregistered(using)
        names = self.referenced_names(using)
        wanted = sorted(loid for loid in unregistered if options["all"] or loid in names)
        if options["dry_run"]:
            self.stdout.write(f"dry run: would register {len(wanted)} objects")
            return
        progress = Progress(self.stderr, every=100, enabled=options["verbosity"] > 0)
        total = 0
        for done, loid in enumerate(wanted, start=1):
            # One transaction each: an interrupted run keeps what it registered.
            with transaction.atomic(using=using):
                row = registry.register(loid, name=names.get(loid, ""), using=using)
            total += row.size if row else 0
            progress.advance(f"register: {done}/{len(wanted)} objects")
        progress.finish()
        self.stdout.write(f"registered {len(wanted)} objects ({total} bytes)")

    def unregistered(self, using: str) -> set[int]:
        with connections[using].cursor() as cursor:
            cursor.execute(
                f"SELECT m.oid FROM pg_largeobject_metadata m WHERE NOT EXISTS "
                f"(SELECT FROM {registry.table()} f WHERE f.oid = m.oid)"
            )
            return {loid for (loid,) in cursor.fetchall()}

    def referenced_names(self, using: str) -> dict[int, str]:
        """The name each referenced object goes by (one of them, when several)."""
        names = {}
        for model, field in references.file_fields_on(using):
            for name in references.field_names(model, field, using):
                try:
                    names[oid_of(name)] = name
                except FileNotFoundError:
                    continue
        return names
