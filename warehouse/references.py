"""What holds a stored file: the reference sources, and what can be seen of them.

An object is referenced while a row of an installed model holds one of its
names (:mod:`warehouse.names`) in a ``FileField`` on a ``DbFileStorage`` or
in a field ``WAREHOUSE_REFERENCE_FIELDS`` declares, or while its oid is in a
column of type ``oid`` or ``lo`` other than the registry's (where
``vacuumlo`` would also look). A source that cannot be seen from an alias (a
model's table or column missing there, a model routed to another database,
a column this role may not read, an app migrated there but not installed)
is blind: :mod:`warehouse.unlinking` then keeps everything, and the cleanup
refuses to run.

Which models hold files is worked out once per process (again when the app
registry or the setting changes). The catalog (tables, oid columns,
privileges) is read in SQL each time, so that a column another process's
migration added counts from its commit on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import connections, models, router

from warehouse import registry
from warehouse.conf import conf
from warehouse.names import oid_in_sql
from warehouse.storage import DbFileStorage, db_file_storage

__all__ = [
    "Catalog",
    "blind_sources",
    "catalog_sql",
    "file_fields",
    "large_objects",
    "read_catalog",
    "referenced_oids",
    "same_database",
]

# An unreferenced object younger than this may be about to be referenced: an upload
# whose row is still being saved. The cleanup keeps it; the verification lets it be.
DEFAULT_GRACE_HOURS = 24.0


class Catalog(NamedTuple):
    """What the first statement learnt: sources it cannot see, and where oids are kept."""

    blind: list[str]
    visible_fields: list[tuple[str, str]]  # quoted table, quoted column
    oid_columns: list[tuple[str, str]]  # table and column, quoted by PostgreSQL

    @classmethod
    def from_json(cls, found: Any, using: str) -> Catalog:
        found = json.loads(found) if isinstance(found, str) else found
        installed = {config.label for config in apps.get_app_configs()}
        blind = found["blind"] + [
            f"app {app!r}: migrated on this database but not in INSTALLED_APPS"
            for app in sorted(set(found["apps"]) - installed)
        ]
        quote = connections[using].ops.quote_name
        visible = [(table, quote(column)) for table, column in found["fields"]]
        oid_columns = [(table, column) for table, column in found["oid_columns"]]
        return cls(blind, visible, oid_columns)


# The catalog, as one JSON value to put beside the locks: the file fields' columns
# that are missing or unreadable, the others, every oid column (readable or not)
# but the registry's: not the catalogs, TOAST, nor any session's temporary tables
# (pg_temp_N; another session's cannot be read), as vacuumlo has it; and the apps
# migrated here, since one that is not installed has tables no model describes.
_CATALOG_SQL = """(
    WITH fields AS (
        SELECT f.label, f.tab, f.col, r.rel,
               CASE WHEN r.rel IS NULL OR NOT EXISTS (
                        SELECT FROM pg_attribute a
                        WHERE a.attrelid = r.rel AND a.attname = f.col AND NOT a.attisdropped)
                    THEN 'missing on this database'
                    WHEN NOT has_schema_privilege(c.relnamespace, 'USAGE')
                      OR NOT has_column_privilege(r.rel, f.col, 'SELECT')
                    THEN 'not readable by this role'
               END AS blind
        FROM unnest(%s::text[], %s::text[],
                    %s::text[]) AS f(label, tab, col)
        CROSS JOIN LATERAL (SELECT to_regclass(f.tab) AS rel) r
        LEFT JOIN pg_class c ON c.oid = r.rel
    ),
    oid_columns AS (
        SELECT quote_ident(c.nspname) || '.' || quote_ident(c.relname) || '.'
                   || quote_ident(a.attname) AS label,
               c.oid::regclass::text AS tab, quote_ident(a.attname) AS col,
               has_schema_privilege(c.nsp, 'USAGE')
                   AND has_column_privilege(c.oid, a.attnum, 'SELECT') AS readable
        -- The few user tables first (OFFSET 0 keeps the planner to it), then their
        -- columns by index: scanning pg_attribute whole costs more than all the rest.
        FROM (SELECT c.oid, c.relname, n.oid AS nsp, n.nspname
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p', 'm')
                AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
                AND c.oid IS DISTINCT FROM to_regclass(%s)
              OFFSET 0) c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        JOIN pg_type t ON t.oid = a.atttypid AND t.typname IN ('oid', 'lo')
    )
    SELECT json_build_object(
        'blind', ARRAY(
            SELECT unnest(%s::text[])  -- models routed to another database
            UNION ALL
            SELECT label || ': ' || blind FROM fields WHERE blind IS NOT NULL
            UNION ALL
            SELECT label || ': not readable by this role' FROM oid_columns WHERE NOT readable
        ),
        'fields', ARRAY(SELECT json_build_array(tab, col) FROM fields WHERE blind IS NULL),
        'oid_columns', ARRAY(SELECT json_build_array(tab, col) FROM oid_columns WHERE readable),
        'apps', {apps}
    )
)"""


def catalog_sql(using: str) -> tuple[str, list[Any]]:
    """A scalar subquery reading the catalog for :class:`Catalog`, and its parameters.

    For a caller that takes its own locks (the field lifecycle locks the row
    it saves) to read the catalog in the same statement.
    """
    quote = connections[using].ops.quote_name
    labels, tables, columns, routed_away = [], [], [], []
    for model, field in file_fields():
        label, routed = f"{model._meta.label}.{field.name}", router.db_for_write(model)
        if not same_database(routed, using):
            routed_away.append(f"{label}: routed to database {routed!r}")
            continue
        labels.append(label)
        tables.append(quote(model._meta.db_table))
        columns.append(field.column)
    migrated = "ARRAY(SELECT DISTINCT app FROM django_migrations)"
    sql = _CATALOG_SQL.format(apps=migrated if _has_migrations_table(using) else "'{}'::text[]")
    return sql, [
        labels,
        tables,
        columns,
        registry.table() if registry.enabled() else None,
        routed_away,
    ]


_discovered: dict[Any, Any] = {}


def file_fields() -> list[tuple[type[models.Model], models.Field]]:
    """Every field whose rows hold names of stored files.

    Each concrete file field on a ``DbFileStorage`` of an installed model,
    and the fields ``WAREHOUSE_REFERENCE_FIELDS`` names (a history table's
    copy of a name, in a ``CharField``). Worked out once: Django replaces the
    list ``get_models()`` returns when the app registry changes, and that is
    when this is worked out again, as when the setting changes.
    """
    installed, declared = apps.get_models(), tuple(conf.WAREHOUSE_REFERENCE_FIELDS)
    if _discovered.get("models") is not installed or _discovered.get("declared") != declared:
        _discovered["fields"] = [
            (model, field)
            for model in installed
            if not model._meta.proxy
            for field in model._meta.local_concrete_fields
            if isinstance(field, models.FileField) and isinstance(field.storage, DbFileStorage)
        ] + [declared_field(label) for label in declared]
        _discovered["models"], _discovered["declared"] = installed, declared
    return _discovered["fields"]


def declared_field(label: str) -> tuple[type[models.Model], models.Field]:
    """The model and field an entry of ``WAREHOUSE_REFERENCE_FIELDS`` names."""
    try:
        app_label, model_name, field_name = label.split(".")
        model = apps.get_model(app_label, model_name)
        field = model._meta.get_field(field_name)
    except (ValueError, LookupError, FieldDoesNotExist) as exc:
        raise ImproperlyConfigured(
            f"WAREHOUSE_REFERENCE_FIELDS: {label!r} is not 'app_label.Model.field' of an "
            f"installed model ({exc})"
        ) from None
    if not field.concrete or field.is_relation:
        raise ImproperlyConfigured(
            f"WAREHOUSE_REFERENCE_FIELDS: {label!r} is not a column that can hold a name"
        )
    return model, field


def storage_of(field: models.Field) -> DbFileStorage:
    """The storage that reads a :func:`file_fields` field's names.

    A declared reference field (a ``CharField``) has none: its names are the
    default storage's.
    """
    return getattr(field, "storage", db_file_storage)


def file_fields_on(using: str) -> list[tuple[type[models.Model], models.FileField]]:
    """The :func:`file_fields` whose table is in database ``using`` (for walking them)."""
    return with_table_on(file_fields(), using)[0]


def with_table_on(fields: list[tuple[Any, Any]], using: str) -> tuple[list[Any], list[Any]]:
    """``(model, field, ...)`` items split: those whose model's table is on ``using``, the rest.

    Resolved as queries will resolve them, through the ``search_path``, in one query.
    """
    quote = connections[using].ops.quote_name
    tables = sorted({quote(each[0]._meta.db_table) for each in fields})
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NOT NULL",
            [tables],
        )
        present = {name for (name,) in cursor.fetchall()}
    here = [each for each in fields if quote(each[0]._meta.db_table) in present]
    return here, [each for each in fields if quote(each[0]._meta.db_table) not in present]


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


def read_catalog(using: str) -> Catalog:
    """The :class:`Catalog` as ``using`` shows it now, without locking anything."""
    sql, params = catalog_sql(using)
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)
        return Catalog.from_json(cursor.fetchone()[0], using)


def blind_sources(using: str) -> list[str]:
    """The reference sources that cannot be seen from ``using``, one line each."""
    return read_catalog(using).blind


def same_database(alias: str, other: str) -> bool:
    """Whether two aliases reach the same database (as another role, or as a test mirror)."""
    first, second = connections[alias].settings_dict, connections[other].settings_dict
    mirrors = {first.get("TEST", {}).get("MIRROR"), second.get("TEST", {}).get("MIRROR")}
    keys = ("NAME", "HOST", "PORT")
    return (
        alias == other
        or bool({alias, other} & mirrors)
        or all(first.get(key) == second.get(key) for key in keys)
    )


def _has_migrations_table(using: str) -> bool:
    """Whether Django migrated ``using``; once it has, not asked again in this process."""
    key = ("django_migrations", using)
    if key not in _discovered:
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT to_regclass('django_migrations') IS NOT NULL")
            if not cursor.fetchone()[0]:
                return False
        _discovered[key] = True
    return True


# -- for the cleanup's survey ---------------------------------------------------------------


def large_objects(using: str) -> list[tuple[int, bool, int | None, Any]]:
    """(oid, registered, size, created) of every large object, from the catalog."""
    if not registry.enabled():
        sql = "SELECT oid, false, NULL, NULL FROM pg_largeobject_metadata"
    else:
        sql = (
            f"SELECT m.oid, f.oid IS NOT NULL, f.size, f.created "
            f"FROM pg_largeobject_metadata m LEFT JOIN {registry.table()} f ON f.oid = m.oid"
        )
    with connections[using].cursor() as cursor:
        cursor.execute(sql + " ORDER BY 1")
        return cursor.fetchall()


def referenced_oids(using: str, catalog: Catalog | None = None) -> set[int]:
    """Every oid a file field or an oid/lo column points at (all sources must be visible).

    ``catalog``: one the caller read already, to check it saw nothing blind.
    """
    catalog = catalog or read_catalog(using)
    named = [
        f"SELECT {oid_in_sql(column)} FROM {table} WHERE {oid_in_sql(column)} IS NOT NULL"
        for table, column in catalog.visible_fields
    ]
    return _distinct(named, using) | oid_column_references(using, catalog)


def oid_column_references(using: str, catalog: Catalog) -> set[int]:
    """Every oid in the oid and lo columns ``catalog`` found."""
    held = [
        f"SELECT {column}::oid FROM {table} WHERE {column} IS NOT NULL"
        for table, column in catalog.oid_columns
    ]
    return _distinct(held, using)


def _distinct(queries: list[str], using: str) -> set[int]:
    oids: set[int] = set()
    with connections[using].cursor() as cursor:
        for query in queries:
            cursor.execute(f"SELECT DISTINCT * FROM ({query}) AS held")
            oids.update(oid for (oid,) in cursor.fetchall())
    return oids
