"""Read roles: SELECT on large objects for the roles that read through another login.

A large object is readable by its owner (the role that created it) and by
the roles granted SELECT on it. PostgreSQL 18 can grant that ahead
(``ALTER DEFAULT PRIVILEGES ... ON LARGE OBJECTS``); before it nothing can.
So every new object is granted to ``WAREHOUSE_READ_ROLES`` in the
transaction that creates it, on the connection that creates it: the object
and its grant commit together, and no reader ever meets one it may not
read. ``manage.py warehouse_grant`` grants the objects that existed before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

from warehouse.conf import conf
from warehouse.driver import sql
from warehouse.objects import privilege_sql, undefined_object


def grant_to_read_roles(connection: BaseDatabaseWrapper, loid: int) -> None:
    """Grant SELECT on a new object to ``WAREHOUSE_READ_ROLES``, in its transaction.

    One statement, and none when the setting is empty.
    """
    roles = conf.WAREHOUSE_READ_ROLES
    if not roles:
        return
    try:
        grant_reading(connection, [loid], roles)
    except DatabaseError as exc:
        # The object was made a moment ago on this very connection: the role is unknown.
        if undefined_object(exc):
            raise ImproperlyConfigured(
                f"WAREHOUSE_READ_ROLES names a role that does not exist: {exc}"
            ) from exc
        raise


def grant_reading(connection: BaseDatabaseWrapper, oids: Iterable[int], roles: list[str]) -> None:
    """Grant SELECT on the objects ``oids`` to ``roles``, in one statement."""
    statement = sql.SQL("GRANT SELECT ON LARGE OBJECT {} TO {}").format(
        sql.SQL(", ").join(sql.Literal(int(loid)) for loid in oids), role_list(roles)
    )
    _execute(connection, statement)


def grant_registry(connection: BaseDatabaseWrapper, table: str, roles: list[str]) -> None:
    """Grant SELECT on the registry table (``table``, quoted) to ``roles``."""
    _execute(
        connection, sql.SQL("GRANT SELECT ON {} TO {}").format(sql.SQL(table), role_list(roles))
    )


def role_list(roles: list[str]) -> sql.Composable:
    """``roles`` as quoted identifiers: a name is exactly the role's (case, spaces, quotes)."""
    return sql.SQL(", ").join(sql.Identifier(role) for role in roles)


def missing_roles(connection: BaseDatabaseWrapper, roles: list[str]) -> list[str]:
    """Those of ``roles`` that do not exist on the server of ``connection``."""
    if not roles:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT wanted FROM unnest(%s::text[]) AS wanted "
            "WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = wanted)",
            [roles],
        )
        return [role for (role,) in cursor.fetchall()]


class Missing(NamedTuple):
    """What a reading role cannot read, of what reading stored files needs."""

    reader: str  # the role that reads
    writer: str  # the role that creates the objects
    new_objects: bool  # those the writer will create
    existing_objects: bool  # some that exist now
    table: str | None  # the registry table (quoted), when it is not readable


def missing_for_reading(
    reader: BaseDatabaseWrapper, writer: BaseDatabaseWrapper, read_roles: list[str], table: str
) -> Missing | None:
    """What the role of ``reader`` cannot read of ``writer``'s objects and of the registry.

    ``read_roles``: those every new object is granted to; ``table``: the
    registry's, quoted.

    None when it can read everything, or nothing can be told: a superuser,
    the writer's own role, or a role the writer's server does not know (the
    read alias is another cluster, not a replica).
    """
    with reader.cursor() as cursor:
        cursor.execute(
            _WHAT_THE_READER_CAN_READ.format(may_read=privilege_sql(reader, "SELECT")), [table]
        )
        reader_role, superuser, compatible, table_readable, ungranted = cursor.fetchone()
    with writer.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (writer_role,) = cursor.fetchone()
        if superuser or reader_role == writer_role:
            return None
        cursor.execute(_CAN_READ_WHAT_WRITER_CREATES, [read_roles, reader_role])
        row = cursor.fetchone()
    if row is None:
        return None
    missing = Missing(
        reader_role,
        writer_role,
        new_objects=not (compatible or row[0]),
        existing_objects=ungranted,
        table=None if table_readable else table,
    )
    return missing if missing.new_objects or missing.existing_objects or missing.table else None


# On the read alias (%s: the registry table): who it is, what bypasses the privileges
# of large objects, whether it may read the registry (a table not there is W002's
# business), and whether any object exists that it may not read.
_WHAT_THE_READER_CAN_READ = """
    SELECT current_user, current_setting('is_superuser') = 'on',
           current_setting('lo_compat_privileges') = 'on',
           COALESCE(has_table_privilege(to_regclass(%s), 'SELECT'), TRUE),
           EXISTS (SELECT FROM pg_largeobject_metadata m WHERE NOT ({may_read}))
"""

# On the write alias: whether the reader (the second %s, a role name) may read every
# object the current role will create: as a member of it, as one of the read roles
# (the first %s) or a member of one, or by a default privilege (PostgreSQL 18+)
# granted to it, to a role it inherits from, or to PUBLIC (grantee 0).
_CAN_READ_WHAT_WRITER_CREATES = """
    SELECT pg_has_role(reader.oid, writer.oid, 'USAGE') OR EXISTS (
        SELECT FROM pg_roles granted
        WHERE granted.rolname = ANY(%s::name[])
          AND pg_has_role(reader.oid, granted.oid, 'USAGE')
    ) OR EXISTS (
        SELECT FROM pg_default_acl d, aclexplode(d.defaclacl) a
        WHERE d.defaclobjtype = 'L' AND d.defaclrole = writer.oid
          AND a.privilege_type = 'SELECT'
          AND CASE WHEN a.grantee = 0 THEN TRUE
                   ELSE pg_has_role(reader.oid, a.grantee, 'USAGE') END
    )
    FROM pg_roles reader, pg_roles writer
    WHERE reader.rolname = %s AND writer.rolname = current_user
"""


def _execute(connection: BaseDatabaseWrapper, statement: sql.Composable) -> None:
    connection.ensure_connection()
    # As text, for Django's query log; no parameters, so a '%' in a name stays as it is.
    text = statement.as_string(connection.connection)
    with connection.cursor() as cursor:
        cursor.execute(text)
