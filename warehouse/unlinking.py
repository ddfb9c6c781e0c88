"""Whether a large object may be unlinked: decided here, and only here.

:func:`unlink_unreferenced` is used by the field lifecycle, the cleanup,
the export and ``DbFileStorage.delete_unreferenced``. Two statements,
whatever the number of objects and sources. The first locks the objects'
registry rows and reads the catalog (:mod:`warehouse.references`). The
second starts once the locks are granted, and so sees every reference
committed by a save that held them: it checks every source at once and
deletes the registry rows of what nothing holds. Then each of those
objects is unlinked. Anything that cannot be seen keeps everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from django.db import connections, transaction

from warehouse import registry
from warehouse.names import oid_in_sql
from warehouse.objects import database_connection, unlink_known_large_object
from warehouse.references import Catalog, catalog_sql

__all__ = ["Verdict", "unlink_unreferenced"]

# Up to this many oids, a row's name is matched by equality and a LIKE prefix per
# oid, which an index serving LIKE (the varchar_pattern_ops one that db_index=True
# makes) turns into index lookups; LIKE ANY(array) never uses an index. Larger
# sets (the cleanup's batches) take the oid out of each name once: one scan for all.
INDEXABLE_OIDS = 8  # oids


class Verdict(NamedTuple):
    """What :func:`unlink_unreferenced` did with the oids it was given."""

    unlinked: set[int]
    kept: set[int]
    blind: list[str]  # the sources it could not see, which made it keep everything


def unlink_unreferenced(
    oids: Iterable[int],
    using: str,
    *,
    catalog: Catalog | None = None,
    locked: Iterable[int] = (),
    wait: bool = True,
) -> Verdict:
    """Unlink those of ``oids`` that nothing references, in the caller's transaction.

    Registry rows are locked first: a save adding a reference holds its row
    locked until it commits, so one of the two waits, and the check, which
    starts after the lock is granted, sees what the other committed. A
    caller that locked rows itself, reading :func:`catalog_sql` in that
    statement, passes the ``catalog`` and the oids it ``locked``; the others
    are locked here (a row inserted after that statement began was invisible
    to it). Without ``wait``, an object whose row is busy is kept. Anything
    the catalog says cannot be seen keeps all.
    """
    wanted = sorted({int(oid) for oid in oids})
    if not wanted:
        return Verdict(set(), set(), [])
    with transaction.atomic(using=using, savepoint=False):
        busy: set[int] = set()
        if catalog is None:
            busy, catalog = _lock(wanted, using, wait=wait, with_catalog=True)
        elif unlocked := sorted(set(wanted) - set(locked)):
            busy, _ = _lock(unlocked, using, wait=wait, with_catalog=False)
        if catalog.blind:
            return Verdict(set(), set(wanted), catalog.blind)
        unlinkable = _check_and_forget([oid for oid in wanted if oid not in busy], catalog, using)
        connection = database_connection(using)
        for oid in sorted(unlinkable):
            unlink_known_large_object(connection, oid)
    return Verdict(unlinkable, set(wanted) - unlinkable, [])


def _lock(
    oids: list[int], using: str, *, wait: bool, with_catalog: bool
) -> tuple[set[int], Catalog | None]:
    """Lock the registry rows of ``oids`` in oid order; return the busy ones and the catalog."""
    catalog, params = catalog_sql(using) if with_catalog else ("NULL", [])
    if registry.enabled() and oids:  # FOR UPDATE needs the UPDATE privilege, even for none
        skip = "" if wait else " SKIP LOCKED"
        locked = (
            f"ARRAY(SELECT oid FROM {registry.table()} WHERE oid = ANY(%s::oid[]) "
            f"ORDER BY oid FOR UPDATE{skip})"
        )
        registered = f"ARRAY(SELECT oid FROM {registry.table()} WHERE oid = ANY(%s::oid[]))"
        params = [oids, oids, *params]
    else:
        locked = registered = "'{}'::oid[]"
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT {locked}, {registered}, {catalog}", params)
        locked_oids, registered_oids, found = cursor.fetchone()
    busy = set(registered_oids) - set(locked_oids)
    return busy, (Catalog.from_json(found, using) if found is not None else None)


def _check_and_forget(oids: list[int], catalog: Catalog, using: str) -> set[int]:
    """Which of ``oids`` no source holds and this role may unlink; their registry rows go."""
    if not oids:
        return set()
    held = [_names_query(table, column, oids) for table, column in catalog.visible_fields]
    held += [
        f"SELECT {column}::oid FROM {table} WHERE {column}::oid = ANY(%(oids)s::oid[])"
        for table, column in catalog.oid_columns
    ]
    referenced = " UNION ALL ".join(held) or "SELECT NULL::oid WHERE false"
    forget = (
        f", forgotten AS (DELETE FROM {registry.table()} WHERE oid IN (SELECT oid FROM unlinkable))"
        if registry.enabled()
        else ""
    )
    sql = f"""
        WITH referenced(oid) AS ({referenced}),
        unlinkable AS (
            SELECT m.oid FROM pg_largeobject_metadata m
            WHERE m.oid = ANY(%(oids)s::oid[])
              AND m.oid NOT IN (SELECT oid FROM referenced WHERE oid IS NOT NULL)
              -- lo_unlink needs ownership: what this role may not unlink, it keeps.
              AND pg_has_role(m.lomowner, 'USAGE')
        ){forget}
        SELECT oid FROM unlinkable
    """
    with connections[using].cursor() as cursor:
        cursor.execute(sql, {"oids": oids, "bare": [str(oid) for oid in oids]})
        return {oid for (oid,) in cursor.fetchall()}


def _names_query(table: str, column: str, oids: list[int]) -> str:
    """A query for the oids among ``oids`` that rows of ``column`` name."""
    oid = oid_in_sql(column)
    if len(oids) > INDEXABLE_OIDS:
        # split_part() first: a regular expression on every row costs seconds at 100,000.
        return (
            f"SELECT {oid} FROM {table} WHERE split_part({column}, '.', 1) = ANY(%(bare)s) "
            f"AND {oid} = ANY(%(oids)s::oid[])"
        )
    # Equality or a prefix per oid, for the index; the grammar then decides.
    bare = " OR ".join(
        f"{column} = '{int(each)}' OR {column} LIKE '{int(each)}.%%'" for each in oids
    )
    return f"SELECT {oid} FROM {table} WHERE ({bare}) AND {oid} = ANY(%(oids)s::oid[])"
