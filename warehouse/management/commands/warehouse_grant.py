"""``manage.py warehouse_grant``: let the read roles read what exists already.

New objects are granted to ``WAREHOUSE_READ_ROLES`` as they are created
(:mod:`warehouse.grants`). The objects made before that, or by other means,
are granted here, a batch per transaction, and so is the registry table,
which every read of a stored file's facts needs.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from warehouse import grants, registry
from warehouse.conf import alias_for_writing, conf
from warehouse.objects import database_connection, privilege_sql, undefined_object
from warehouse.progress import Progress, positive_int

# One statement grants a batch; each GRANT rewrites the object's catalog row, so a
# batch is one transaction of bounded size, and an interrupted run keeps its batches.
DEFAULT_BATCH_SIZE = 1000  # objects
# A batch whose object was unlinked between finding and granting it is found again.
ATTEMPTS = 3

EXIT_INCOMPLETE = 1


class Command(BaseCommand):
    help = (
        "Grant SELECT on every large object that the read roles (WAREHOUSE_READ_ROLES, or "
        "--role) cannot read yet, in transactions of --batch-size objects, and SELECT on "
        "the registry table to those of them that cannot read it. Runs on "
        "WAREHOUSE_DB_FOR_WRITE, whose role owns the objects it created: objects of other "
        "owners are counted and left (run as their owner or a superuser). Exit status 1 "
        "when something could not be granted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--role",
            action="append",
            dest="roles",
            metavar="ROLE",
            help="Grant to this role (repeat for several) instead of WAREHOUSE_READ_ROLES.",
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=DEFAULT_BATCH_SIZE,
            metavar="N",
            help=f"Objects granted per transaction (default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count.")

    def handle(
        self, *args: Any, roles: list[str] | None, batch_size: int, dry_run: bool, **options: Any
    ) -> None:
        roles = roles or conf.WAREHOUSE_READ_ROLES
        if not roles:
            raise CommandError("No role to grant to: set WAREHOUSE_READ_ROLES, or give --role.")
        using = alias_for_writing()
        connection = database_connection(using)
        missing = grants.missing_roles(connection, roles)
        if missing:
            raise CommandError(f"No such role on database {using!r}: {', '.join(missing)}.")
        self.progress = Progress(self.stderr, every=batch_size, enabled=options["verbosity"] > 0)
        self.incomplete = False
        table = self.grant_registry(connection, roles, dry_run)
        granted, foreign = self.grant_objects(connection, roles, batch_size, dry_run)
        self.progress.finish()
        to = ", ".join(roles)
        verb = "dry run: would grant" if dry_run else "granted"
        self.stdout.write(f"{verb} SELECT on {granted} large objects to {to}")
        if table:
            self.stdout.write(f"{verb} SELECT on {registry.table()} to {', '.join(table)}")
        if foreign:
            self.incomplete = True
            self.stderr.write(
                f"{foreign} large objects that {to} cannot read belong to other roles: "
                "run this command as their owner or a superuser"
            )
        if self.incomplete and not dry_run:
            raise CommandError("some could not be granted", returncode=EXIT_INCOMPLETE)

    def grant_registry(
        self, connection: BaseDatabaseWrapper, roles: list[str], dry_run: bool
    ) -> list[str]:
        """Grant SELECT on the registry table to the roles that lack it; return those."""
        if not registry.enabled():
            return []
        table = registry.table()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT wanted FROM unnest(%s::text[]) AS wanted WHERE to_regclass(%s) IS NOT "
                "NULL AND NOT has_table_privilege(wanted, to_regclass(%s), 'SELECT')",
                [roles, table, table],
            )
            lacking = [role for (role,) in cursor.fetchall()]
            if not lacking or dry_run:
                return lacking
            cursor.execute("SELECT has_table_privilege(%s, 'SELECT WITH GRANT OPTION')", [table])
            if not cursor.fetchone()[0]:
                self.incomplete = True
                self.stderr.write(
                    f"this role may not grant SELECT on {table}: as its owner or a superuser, "
                    f"run GRANT SELECT ON {table} TO {', '.join(lacking)};"
                )
                return []
        grants.grant_registry(connection, table, lacking)
        return lacking

    def grant_objects(
        self, connection: BaseDatabaseWrapper, roles: list[str], batch_size: int, dry_run: bool
    ) -> tuple[int, int]:
        """Grant the objects some role cannot read, a batch at a time; (granted, left to others)."""
        granted = foreign = after = 0
        while True:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    # One transaction per batch: an interrupted run keeps what it granted.
                    with transaction.atomic(using=connection.alias):
                        batch = self.ungranted(connection, roles, after, batch_size)
                        mine = [loid for loid, grantable in batch if grantable]
                        if mine and not dry_run:
                            grants.grant_reading(connection, mine, roles)
                    break
                except DatabaseError as exc:
                    # Unlinked between the two statements: find the batch again.
                    if attempt == ATTEMPTS or not undefined_object(exc):
                        raise
            granted += len(mine)
            foreign += len(batch) - len(mine)
            self.progress.advance(f"grant: {granted} large objects", len(batch))
            if len(batch) < batch_size:
                return granted, foreign
            after = batch[-1][0]

    def ungranted(
        self, connection: BaseDatabaseWrapper, roles: list[str], after: int, limit: int
    ) -> list[tuple[int, bool]]:
        """(oid, whether this role may grant it) of objects past ``after`` some role cannot read."""
        may_read = privilege_sql(connection, "SELECT", role="reader.name")
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT m.oid, current_setting('is_superuser') = 'on' "
                f"OR pg_has_role(m.lomowner, 'USAGE') "
                f"FROM pg_largeobject_metadata m WHERE m.oid > %s AND EXISTS ("
                f"SELECT FROM unnest(%s::name[]) AS reader(name) WHERE NOT ({may_read})) "
                f"ORDER BY m.oid LIMIT %s",
                [after, roles, limit],
            )
            return cursor.fetchall()
