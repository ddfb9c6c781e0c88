"""Large objects as database things: their oids, who may open one, unlinking one.

Everything that names, checks or removes an object without reading or
writing its bytes (that is :class:`warehouse.io.DbFileIO`'s job).
"""

from __future__ import annotations

import contextlib
import errno
import operator
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from django.core.exceptions import ImproperlyConfigured
from django.db import Error as DatabaseError
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from warehouse.driver import problem

MAX_OID = 2**32 - 1

# SQLSTATEs a large-object call fails with that are a file's errors, not the database's.
_INSUFFICIENT_PRIVILEGE = "42501"
_UNDEFINED_OBJECT = "42704"

# What lo_open would decide, asked without opening (a refused lo_open aborts the
# transaction, the caller's too), over pg_largeobject_metadata as "m". PostgreSQL 18
# answers itself; before it, the same rules by hand: superusers and
# lo_compat_privileges bypass the checks, a NULL ACL means the owner's default
# privileges, otherwise an ACL entry for PUBLIC (grantee 0) or a role we inherit
# from grants it. "{of}" is empty for the current role, or "<role name>, " for another
# (whose lo_compat_privileges, a setting of its sessions, cannot be known).
_HAS_PRIVILEGE_SQL = "has_largeobject_privilege({of}m.oid, '{privilege}')"
_PRIVILEGE_BEFORE_18_SQL = """
    {bypass}
    OR CASE WHEN m.lomacl IS NULL THEN pg_has_role({of}m.lomowner, 'USAGE')
            ELSE EXISTS (SELECT FROM aclexplode(m.lomacl) a
                         WHERE a.privilege_type = '{privilege}'
                           AND (a.grantee = 0 OR pg_has_role({of}a.grantee, 'USAGE')))
       END
"""
_BYPASS_OF_CURRENT_ROLE = (
    "current_setting('is_superuser') = 'on' OR current_setting('lo_compat_privileges') = 'on'"
)
_BYPASS_OF_ROLE = "EXISTS (SELECT FROM pg_roles WHERE rolname = {role} AND rolsuper)"
_HAS_LARGEOBJECT_PRIVILEGE = 180000  # the server version that has has_largeobject_privilege()


def privilege_sql(connection: BaseDatabaseWrapper, privilege: str, role: str | None = None) -> str:
    """SQL telling whether the role has ``privilege`` on the object of the row "m".

    The current role, or ``role``: an SQL expression giving another role's name.
    """
    of = "" if role is None else f"{role}, "
    if connection.pg_version >= _HAS_LARGEOBJECT_PRIVILEGE:
        return _HAS_PRIVILEGE_SQL.format(of=of, privilege=privilege)
    bypass = _BYPASS_OF_CURRENT_ROLE if role is None else _BYPASS_OF_ROLE.format(role=role)
    return _PRIVILEGE_BEFORE_18_SQL.format(bypass=bypass, of=of, privilege=privilege)


class Access(NamedTuple):
    """Whether an object exists, and what this role may do with it."""

    exists: bool
    may_read: bool = False
    may_write: bool = False


def validate_loid(loid: Any) -> int:
    """Return ``loid`` as an int in PostgreSQL's oid range, 0 meaning "a new object".

    psycopg2 wraps out-of-range values silently (-1 becomes 4294967295,
    2**32 + 12 becomes 12), so nothing else may reach it.
    """
    if loid is None:
        return 0
    if isinstance(loid, bool):
        raise TypeError("loid must be an int, not bool")
    try:
        loid = operator.index(loid)
    except TypeError:
        raise TypeError(f"loid must be an int, not {type(loid).__name__}") from None
    if not 0 <= loid <= MAX_OID:
        raise ValueError(f"loid must be between 0 and {MAX_OID}, not {loid}")
    return loid


def database_connection(using: str) -> BaseDatabaseWrapper:
    """Return the Django connection for ``using``, refusing any that has no ``lobject()``."""
    found = problem(using)
    if found is not None:
        raise ImproperlyConfigured(
            f"warehouse cannot keep files in database {using!r}, which {found.reason}. {found.hint}"
        )
    return connections[using]


def large_object_access(connection: BaseDatabaseWrapper, loid: int) -> Access:
    """Whether ``loid`` exists and may be read or written here, asked without aborting anything.

    The catalog is readable by every role, so this query cannot fail where a
    refused ``lo_open`` would abort the transaction it runs in.
    """
    # INV_WRITE reads too, so a writable open needs SELECT and UPDATE.
    sql = (
        f"SELECT {privilege_sql(connection, 'SELECT')}, {privilege_sql(connection, 'UPDATE')} "
        f"FROM pg_largeobject_metadata m WHERE m.oid = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [loid])
        row = cursor.fetchone()
    return Access(False) if row is None else Access(True, *row)


def large_object_exists(connection: BaseDatabaseWrapper, loid: int) -> bool:
    """Whether ``loid`` names a large object, asked without aborting the transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT FROM pg_largeobject_metadata WHERE oid = %s)", [loid])
        return cursor.fetchone()[0]


def check_access(access: Access, loid: int, *, writable: bool) -> None:
    """Raise what ``open()`` raises for a file that is missing or may not be opened so."""
    if not access.exists:
        raise not_found(loid)
    if not access.may_read or (writable and not access.may_write):
        raise denied(loid)


def not_found(loid: int) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, "No such large object", str(loid))


def denied(loid: int) -> PermissionError:
    return PermissionError(errno.EACCES, "Permission denied for large object", str(loid))


def file_error(exc: BaseException, loid: int) -> OSError | None:
    """The ``OSError`` a database error on ``loid`` means, or None when it means none.

    An object unlinked after it was checked, or one the role lost its grant
    on, fails on the server; the caller should see what a file would raise.
    """
    # libpq's fast-path calls (lo_open, loread...) carry no SQLSTATE: only words.
    pgcode = _sqlstate(exc)
    words = str(exc)
    if pgcode == _INSUFFICIENT_PRIVILEGE or "permission denied for large object" in words:
        return denied(loid)
    if pgcode == _UNDEFINED_OBJECT or f"large object {loid} does not exist" in words:
        return not_found(loid)
    return None


def insufficient_privilege(exc: BaseException) -> bool:
    """Whether a database error says the role lacks a privilege (on a table, say)."""
    return _sqlstate(exc) == _INSUFFICIENT_PRIVILEGE


def undefined_object(exc: BaseException) -> bool:
    """Whether a database error says what it names does not exist (an object, a role)."""
    return _sqlstate(exc) == _UNDEFINED_OBJECT


def _sqlstate(exc: BaseException) -> str | None:
    # Django's error wraps psycopg2's, which has the code.
    return getattr(exc.__cause__, "pgcode", None) or getattr(exc, "pgcode", None)


@contextlib.contextmanager
def file_errors(
    connection: BaseDatabaseWrapper,
    loid: int,
    on_error: Callable[[DatabaseError], None] | None = None,
) -> Iterator[None]:
    """Around a large-object call: Django's error types, and a file's own errors as ``OSError``.

    ``on_error`` hears of every database error first, and may raise another.
    """
    try:
        with connection.wrap_database_errors:
            yield
    except DatabaseError as exc:
        if on_error is not None:
            on_error(exc)
        error = file_error(exc, loid)
        if error is None:
            raise
        raise error from exc


def unlink_known_large_object(connection: BaseDatabaseWrapper, loid: int) -> None:
    """Unlink ``loid``, known to exist, in the transaction ``connection`` is in."""
    from warehouse import transactions

    with file_errors(connection, loid):
        # Mode "n" makes the lobject without opening a descriptor.
        connection.connection.lobject(loid, "n").unlink()
    transactions.note_written(connection, loid)
