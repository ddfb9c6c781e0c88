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

# Up to this many oids, a row's name is matched by equality and a LIKE prefix per
# oid, which an index serving LIKE (varchar_pattern_ops, or a column in the "C"
# collation) turns into range scans; LIKE ANY(array) never uses an index. Without
# such an index every LIKE costs a comparison per row, so larger sets (the cleanup's
# batches) take the oid out of each name once and look it up in a hashed array.
INDEXABLE_OIDS = 8  # oids

# Where an oid column is no reference: the catalogs, TOAST, every session's
# temporary tables (pg_temp_N; another session's cannot be read), as vacuumlo has it.
_OID_COLUMNS_SQL = """
    SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(a.attname)
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_type t ON t.oid = a.atttypid
    WHERE c.relkind IN ('r', 'p', 'm')
      AND a.attnum > 0 AND NOT a.attisdropped
      AND t.typname IN ('oid', 'lo')
      AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
      AND c.relname <> %s
      AND (has_schema_privilege(n.oid, 'USAGE')
           AND has_column_privilege(c.oid, a.attnum, 'SELECT')) = %s
    ORDER BY 1, 2
"""


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


def file_fields_on(using: str) -> list[tuple[type[models.Model], models.FileField]]:
    """The :func:`file_fields` whose table is in database ``using``.

    A model routed to another database, or unmanaged over a table that is
    elsewhere, has no rows here. Whether the table exists decides, not the
    router or ``Meta.managed``: an unmanaged model over a table that is here
    (a legacy table, a view) holds references that must keep their objects.
    """
    fields = file_fields()
    quote = connections[using].ops.quote_name
    tables = sorted({quote(model._meta.db_table) for model, _ in fields})
    with connections[using].cursor() as cursor:
        # Resolved as the queries will resolve them: through the search_path.
        cursor.execute(
            "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NOT NULL",
            [tables],
        )
        present = {name for (name,) in cursor.fetchall()}
    return [(model, field) for model, field in fields if quote(model._meta.db_table) in present]


def rows_with_files(
    model: type[models.Model], field: models.FileField, using: str
) -> models.QuerySet:
    """The rows whose ``field`` holds a name."""
    return (
        model._base_manager.using(using)
        .exclude(**{f"{field.attname}__isnull": True})
        .exclude(**{field.attname: ""})
    )


def field_names(model: type[models.Model], field: models.FileField, using: str) -> Iterator[str]:
    """The non-empty names one field holds, streamed."""
    rows = rows_with_files(model, field, using).values_list(field.attname, flat=True)
    return rows.iterator(chunk_size=5000)


def referenced_oids(using: str) -> set[int]:
    """Every oid a file field or an oid/lo column points at."""
    oids = set(oid_column_references(using))
    for model, field in file_fields_on(using):
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
    wanted = sorted({int(oid) for oid in oids})
    found: set[int] = set()
    if not wanted:
        return found
    connection = connections[using]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model, field in file_fields_on(using):
            column = quote(field.column)
            condition, params = _holds_any(column, wanted)
            sql = (
                f"SELECT DISTINCT split_part({column}, '.', 1) "
                f"FROM {quote(model._meta.db_table)} WHERE ({condition})"
            )
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


def _holds_any(column: str, oids: list[int]) -> tuple[str, list[object]]:
    """A condition true of a row whose ``column`` names one of ``oids``, and its parameters.

    Names are ``"<oid>"`` or ``"<oid>.<ext>"``, and an oid is digits only, so
    the patterns need no escaping.
    """
    bare = [str(oid) for oid in oids]
    if len(bare) > INDEXABLE_OIDS:
        return f"split_part({column}, '.', 1) = ANY(%s)", [bare]
    prefixes = " OR ".join([f"{column} LIKE %s"] * len(bare))
    return f"{column} = ANY(%s) OR {prefixes}", [bare, *(f"{name}.%" for name in bare)]


def oid_column_references(using: str) -> Iterator[int]:
    """Oids held in columns of type oid or lo, the registry's excepted (vacuumlo's view)."""
    with connections[using].cursor() as cursor:
        columns = list(_oid_columns(cursor))
        for table, column in columns:
            cursor.execute(f"SELECT DISTINCT {column}::oid FROM {table} WHERE {column} IS NOT NULL")
            yield from (oid for (oid,) in cursor.fetchall())


def unreadable_oid_columns(using: str) -> list[str]:
    """The oid and lo columns this role may not read, as ``schema.table.column``.

    Their references are invisible here: an object held only there looks
    unreferenced.
    """
    with connections[using].cursor() as cursor:
        return [f"{table}.{column}" for table, column in _oid_columns(cursor, readable=False)]


def _oid_columns(cursor, *, readable: bool = True) -> Iterator[tuple[str, str]]:
    """Quoted (table, column) of every user column typed oid or lo, but the registry's.

    Only those the role may read, unless ``readable`` is False: then only the others.
    """
    from warehouse.models import StoredFile

    cursor.execute(_OID_COLUMNS_SQL, [StoredFile._meta.db_table, readable])
    return iter(cursor.fetchall())
