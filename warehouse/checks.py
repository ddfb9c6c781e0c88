"""System checks: configuration errors surface in ``manage.py check``, not deep in a request.

``check_databases``, ``check_reference_fields`` and the file field checks
read settings only. The others look at the databases, so ``apps.py``
registers them with ``Tags.database``: Django runs them only when it is
given aliases to use (``migrate``, ``manage.py test``, ``check --database
ALIAS``), and passes those. (Django 6.1 passes every alias to the other
checks too: they must not connect.) They warn, never fail: the commands
that run them must still run on a database that cannot keep files.
"""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Field, Model

from warehouse import registry
from warehouse.conf import conf
from warehouse.driver import problem
from warehouse.grants import Missing, missing_for_reading, missing_roles

_ALIAS_SETTINGS = ("WAREHOUSE_DB_FOR_READ", "WAREHOUSE_DB_FOR_WRITE")


def check_databases(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Check that both aliases name databases in ``DATABASES`` (settings only)."""
    errors: list[CheckMessage] = []
    for setting, alias in _aliases():
        if not isinstance(alias, str):
            errors.append(
                Error(
                    f"{setting} must be a database alias (a str), not {alias!r}.",
                    id="warehouse.E001",
                )
            )
        elif alias not in settings.DATABASES:
            errors.append(
                Error(
                    f"{setting} names the database {alias!r}, which is not in DATABASES.",
                    hint=f"Use one of: {', '.join(sorted(settings.DATABASES))}.",
                    id="warehouse.E002",
                )
            )
    return errors


def check_database_drivers(
    app_configs: Any = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Check that the aliases Django names are PostgreSQL (W003) through psycopg2 (W004).

    Warnings, not errors: Django runs database checks before ``migrate`` and
    ``manage.py test`` with the aliases they use, and a site whose tests run
    on SQLite must still migrate and run the tests that store no file. A file
    operation on such an alias raises ``ImproperlyConfigured`` with the same words.
    """
    named: dict[str, list[str]] = {}  # alias -> the settings naming it
    for setting, alias in _aliases():
        if _given(databases, alias):
            named.setdefault(alias, []).append(setting)
    messages: list[CheckMessage] = []
    for alias, names in named.items():
        found = problem(alias)
        if found is not None:
            messages.append(
                Warning(
                    f"{' and '.join(names)} name{'s' if len(names) == 1 else ''} the database "
                    f"{alias!r}, which {found.reason}: every file operation on it will fail.",
                    hint=found.hint,
                    id=found.id,
                )
            )
    return messages


def _aliases() -> list[tuple[str, Any]]:
    return [(setting, getattr(conf, setting)) for setting in _ALIAS_SETTINGS]


def check_registry_migrated(
    app_configs: Any = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Check that the registry's migrations are applied on the write alias.

    Not while ``migrate`` runs, which applies them (it runs the checks first).
    """
    alias = conf.WAREHOUSE_DB_FOR_WRITE
    if not registry.enabled() or not _may_use(databases, alias) or _migrating():
        return []
    label = registry.app_label()
    executor = MigrationExecutor(connections[alias])
    targets = executor.loader.graph.leaf_nodes(label)
    pending = [
        migration.name
        for migration, _ in executor.migration_plan(targets)
        if migration.app_label == label
    ]
    if not pending:
        return []
    return [
        Warning(
            f"The warehouse registry is not migrated on database {alias!r} "
            f"(WAREHOUSE_DB_FOR_WRITE): {', '.join(pending)} not applied. Saving a file "
            "will fail.",
            hint=f"Run 'manage.py migrate {label} --database {alias}'.",
            id="warehouse.W002",
        )
    ]


def check_read_roles(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Check that ``WAREHOUSE_READ_ROLES`` is a list of role names."""
    try:
        conf.WAREHOUSE_READ_ROLES  # noqa: B018 - reading it is what validates it
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint='Like ["app_reader"].', id="warehouse.E006")]
    return []


def _migrating() -> bool:
    """Whether these checks run for ``migrate`` (a frame of its command is on the stack).

    Django asks the checks before any command and tells them nothing but the
    aliases, which ``check --database`` gives alike; the stack tells.
    """
    from django.core.management.commands.migrate import Command as Migrate

    frame = inspect.currentframe()
    try:
        while frame is not None:
            if isinstance(frame.f_locals.get("self"), Migrate):
                return True
            frame = frame.f_back
        return False
    finally:
        del frame  # a frame held in a local is a reference cycle


def check_large_object_privileges(
    app_configs: Any = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Check that the read alias's role can read the write alias's objects and the registry.

    A large object is readable by its owner (the role that created it) and
    by roles granted SELECT on it; the registry table, which every read of
    a file's facts joins, by roles granted SELECT on it. Runs only when
    Django may use both aliases (``manage.py check --database <write>
    --database <read>``); the read roles' existence, with the write alias.
    """
    read_alias, write_alias = conf.WAREHOUSE_DB_FOR_READ, conf.WAREHOUSE_DB_FOR_WRITE
    errors = _check_read_roles_exist(databases, write_alias)
    if (
        read_alias == write_alias
        or not _may_use(databases, read_alias)
        or not _may_use(databases, write_alias)
        or _same_login(connections[read_alias], connections[write_alias])
    ):
        return errors
    writer = connections[write_alias]
    missing = missing_for_reading(connections[read_alias], writer, _read_roles(), registry.table())
    if missing is None:
        return errors
    return [
        *errors,
        Warning(
            f"WAREHOUSE_DB_FOR_READ ({read_alias!r}) connects as role {missing.reader!r}, "
            f"which cannot read {_described(missing, write_alias)}.",
            hint=_privileges_hint(missing, writer.pg_version),
            id="warehouse.W001",
        ),
    ]


def _check_read_roles_exist(
    databases: Iterable[str] | None, write_alias: Any
) -> list[CheckMessage]:
    """W005: a read role the write alias's server does not know makes every save fail."""
    roles = _read_roles()
    if not roles or not _may_use(databases, write_alias):
        return []
    missing = missing_roles(connections[write_alias], roles)
    if not missing:
        return []
    return [
        Warning(
            f"WAREHOUSE_READ_ROLES names roles that do not exist on database {write_alias!r} "
            f"(WAREHOUSE_DB_FOR_WRITE): {', '.join(missing)}. Saving a file will fail.",
            hint="Create them (CREATE ROLE ...), or correct the setting: names are exact, "
            "case included.",
            id="warehouse.W005",
        )
    ]


def _read_roles() -> list[str]:
    try:
        return conf.WAREHOUSE_READ_ROLES
    except ImproperlyConfigured:
        return []  # E006


def _described(missing: Missing, write_alias: str) -> str:
    parts = []
    if missing.new_objects:
        parts.append(
            f"the large objects that role {missing.writer!r} (WAREHOUSE_DB_FOR_WRITE, "
            f"{write_alias!r}) creates"
        )
    if missing.existing_objects:
        parts.append("some of the large objects that exist already")
    if missing.table:
        parts.append(f"the registry table {missing.table}")
    return " and ".join(parts)


def _privileges_hint(missing: Missing, pg_version: int) -> str:
    """What lets the reader read what it is ``missing``, for this server's version."""
    owner, grantee = _quote_role(missing.writer), _quote_role(missing.reader)
    steps = []
    if missing.new_objects:
        if pg_version >= 180000:
            ahead = (
                f"or, as {owner} or a superuser: ALTER DEFAULT PRIVILEGES FOR ROLE {owner} "
                f"GRANT SELECT ON LARGE OBJECTS TO {grantee};"
            )
        else:
            ahead = f"PostgreSQL {pg_version // 10000} cannot grant them ahead; 18 can"
        steps.append(
            f"Add {missing.reader!r} to WAREHOUSE_READ_ROLES: each new large object is then "
            f"granted to it in the transaction that creates it ({ahead})."
        )
    if missing.table:
        steps.append(f"GRANT SELECT ON {missing.table} TO {grantee}; (as the table's owner)")
    steps.append(
        f"'manage.py warehouse_grant --role {shlex.quote(missing.reader)}' grants SELECT on "
        "the large objects that exist already, and on the registry table, running on "
        "WAREHOUSE_DB_FOR_WRITE as the objects' owner."
    )
    return " ".join(steps)


def _quote_role(role: str) -> str:
    return '"' + role.replace('"', '""') + '"'


def _given(databases: Iterable[str] | None, alias: Any) -> bool:
    """Whether Django lets the check use ``alias``, a configured alias (else E001, E002)."""
    return (
        databases is not None
        and isinstance(alias, str)
        and alias in databases
        and alias in connections
    )


def _may_use(databases: Iterable[str] | None, alias: Any) -> bool:
    """Whether the check may use ``alias``, and it can keep large objects (else W003, W004)."""
    return _given(databases, alias) and problem(alias) is None


def _same_login(first: Any, second: Any) -> bool:
    """Whether two connections' settings log in as the same role to the same database."""
    keys = ("HOST", "PORT", "NAME", "USER")
    return all(first.settings_dict.get(key) == second.settings_dict.get(key) for key in keys)


def check_reference_fields(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every entry of ``WAREHOUSE_REFERENCE_FIELDS`` names a column of an installed model."""
    from warehouse.references import declared_field

    errors: list[CheckMessage] = []
    for label in conf.WAREHOUSE_REFERENCE_FIELDS:
        try:
            declared_field(label)
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), id="warehouse.E005"))
    return errors


def check_file_fields(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """:func:`check_file_field` for plain ``FileField``s on a ``DbFileStorage``.

    A ``DbFileField`` checks itself (in ``Field.check``), so that the
    warnings appear even when this app, and so this check, is not installed.
    """
    from warehouse.fields import DbFileField
    from warehouse.references import file_fields

    if check_reference_fields():
        return []  # E005 says what is wrong; nothing else can be looked at
    errors: list[CheckMessage] = []
    for model, field in file_fields():
        if not isinstance(field, DbFileField):
            errors.extend(check_file_field(model, field))
    return errors


def check_file_field(model: type[Model], field: Field) -> list[CheckMessage]:
    """What would make one file field lose or leak files: settings only, no database."""
    from warehouse.references import same_database

    label = f"{model._meta.label}.{field.name}"
    errors: list[CheckMessage] = []
    if not registry.enabled():
        errors.append(
            Warning(
                f"{label} keeps files in large objects, but 'warehouse' is not in "
                "INSTALLED_APPS: without its registry, vacuumlo sees no reference to them "
                "and would delete every one.",
                hint="Add 'warehouse' to INSTALLED_APPS and run migrate.",
                obj=field,
                id="warehouse.W010",
            )
        )
    routed, write = router.db_for_write(model), conf.WAREHOUSE_DB_FOR_WRITE
    known = write in settings.DATABASES and routed in settings.DATABASES
    if known and not same_database(routed, write):
        errors.append(
            Warning(
                f"{label}: the rows of {model._meta.label} are written to {routed!r}, its "
                f"files to WAREHOUSE_DB_FOR_WRITE {write!r}. A file cannot be part of its "
                "row's transaction, and no unlink can see the rows, so every replaced or "
                "deleted file is kept.",
                hint="Route the model to the database WAREHOUSE_DB_FOR_WRITE names.",
                obj=field,
                id="warehouse.W011",
            )
        )
    return errors


def check_file_field_indexes(
    app_configs: Any = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W012: a file column without an index that finds names by their prefix."""
    from warehouse.references import file_fields

    if check_reference_fields():
        return []  # E005 says what is wrong
    errors: list[CheckMessage] = []
    for model, field in file_fields():
        routed = router.db_for_write(model)
        if not _may_use(databases, routed) or _serves_prefix_lookups(model, field, routed):
            continue
        quote = connections[routed].ops.quote_name
        table, column = quote(model._meta.db_table), quote(field.column)
        errors.append(
            Warning(
                f"{model._meta.label}.{field.name} has no index that finds names by their "
                f"prefix: every unlink scans {table} to see whether another row still "
                "holds the file.",
                hint=f"Give the field db_index=True and migrate (Django then adds a "
                f"varchar_pattern_ops index), or: CREATE INDEX ON {table} "
                f"({column} varchar_pattern_ops);",
                obj=field,
                id="warehouse.W012",
            )
        )
    return errors


def _serves_prefix_lookups(model: type[Model], field: Field, alias: str) -> bool:
    """Whether an index on the column serves ``LIKE 'prefix%'`` (a missing table: no news)."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT to_regclass(%s) IS NULL OR EXISTS (
                SELECT FROM pg_index i
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                JOIN pg_opclass o ON o.oid = i.indclass[0]
                JOIN pg_collation c ON c.oid = i.indcollation[0]
                WHERE i.indrelid = to_regclass(%s) AND a.attname = %s
                  AND i.indpred IS NULL AND i.indexprs IS NULL
                  AND (o.opcname LIKE '%%pattern_ops'
                       OR c.collname IN ('C', 'POSIX')
                       OR (c.collname = 'default' AND (
                           SELECT datcollate FROM pg_database
                           WHERE datname = current_database()) IN ('C', 'POSIX'))))
            """,
            [connection.ops.quote_name(model._meta.db_table)] * 2 + [field.column],
        )
        return cursor.fetchone()[0]
