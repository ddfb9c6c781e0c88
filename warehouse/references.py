"""What points at a stored file: model fields holding its name, and oid columns.

A large object is referenced when a ``FileField`` (``DbFileField`` or any
``FileField`` on a ``DbFileStorage``) of an installed model holds one of its
names, or when its oid is in a column of type ``oid`` or ``lo`` other than
the registry's (where ``vacuumlo`` would also look).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.apps import apps
from django.db import connections, models

from warehouse.storage import DbFileStorage, oid_of

# Storage names are "<oid>" or "<oid>.<ext>": the part before the first dot is the oid.
_OID_OF_NAME_SQL = "split_part({column}, '.', 1)"


def file_fields() -> list[tuple[type[models.Model], models.FileField]]:
    """Every concrete file field of an installed model that stores in large objects."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        for field in model._meta.local_concrete_fields:
            if isinstance(field, models.FileField) and isinstance(field.storage, DbFileStorage):
                found.append((model, field))
    return found


def field_names(model: type[models.Model], field: models.FileField, using: str) -> Iterator[str]:
    """The non-empty names one field holds, streamed."""
    rows = (
        model._base_manager.using(using)
        .exclude(**{f"{field.attname}__isnull": True})
        .exclude(**{field.attname: ""})
        .values_list(field.attname, flat=True)
    )
    return rows.iterator(chunk_size=5000)


def referenced_oids(using: str) -> set[int]:
    """Every oid a file field or an oid/lo column points at."""
    oids = set(oid_column_references(using))
    for model, field in file_fields():
        for name in field_names(model, field, using):
            try:
                oids.add(oid_of(name))
            except FileNotFoundError:
                continue  # not a name of this storage: it points at nothing of ours
    return oids


def referenced_among(
    oids: Iterable[int], using: str, *, exclude: models.Model | None = None
) -> set[int]:
    """Which of ``oids`` are referenced right now: the check to repeat before unlinking.

    A row holds an object under any name with its oid (``"16384"`` and
    ``"16384.pdf"`` are the same object). ``exclude`` leaves one row out,
    the one whose own reference is going away.
    """
    wanted = [int(oid) for oid in oids]
    found: set[int] = set()
    if not wanted:
        return found
    connection = connections[using]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model, field in file_fields():
            oid_sql = _OID_OF_NAME_SQL.format(column=quote(field.column))
            sql = (
                f"SELECT DISTINCT {oid_sql} FROM {quote(model._meta.db_table)} "
                f"WHERE {oid_sql} = ANY(%s)"
            )
            params: list[object] = [[str(oid) for oid in wanted]]
            if exclude is not None and isinstance(exclude, model):
                sql += f" AND {quote(model._meta.pk.column)} <> %s"
                params.append(exclude.pk)
            cursor.execute(sql, params)
            found.update(int(oid) for (oid,) in cursor.fetchall())
        for table, column in _oid_columns(cursor):
            cursor.execute(
                f"SELECT DISTINCT {column}::oid FROM {table} WHERE {column}::oid = ANY(%s::oid[])",
                [wanted],
            )
            found.update(oid for (oid,) in cursor.fetchall())
    return found


def is_referenced_elsewhere(name: str, instance: models.Model, using: str) -> bool:
    """Whether anything but ``instance`` points at the object named ``name``."""
    loid = oid_of(name)
    return loid in referenced_among([loid], using, exclude=instance)


def oid_column_references(using: str) -> Iterator[int]:
    """Oids held in columns of type oid or lo, the registry's excepted (vacuumlo's view)."""
    with connections[using].cursor() as cursor:
        columns = list(_oid_columns(cursor))
        for table, column in columns:
            cursor.execute(f"SELECT DISTINCT {column}::oid FROM {table} WHERE {column} IS NOT NULL")
            yield from (oid for (oid,) in cursor.fetchall())


def _oid_columns(cursor) -> Iterator[tuple[str, str]]:
    """Quoted (table, column) of every user column typed oid or lo, but the registry's."""
    from warehouse.models import StoredFile

    cursor.execute(
        """
        SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(a.attname)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        WHERE c.relkind IN ('r', 'p', 'm')
          AND a.attnum > 0 AND NOT a.attisdropped
          AND t.typname IN ('oid', 'lo')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%%'
          AND c.relname <> %s
        """,
        [StoredFile._meta.db_table],
    )
    return iter(cursor.fetchall())
