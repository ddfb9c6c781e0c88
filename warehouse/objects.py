"""Large objects as database things: their oids, whether one exists, unlinking one.

Everything that names or removes an object without reading or writing its
bytes (that is :class:`warehouse.io.DbFileIO`'s job).
"""

from __future__ import annotations

import operator
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from warehouse import transactions
from warehouse.conf import alias_for_writing

MAX_OID = 2**32 - 1


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
    connection = connections[using]
    if connection.vendor != "postgresql" or connection.Database.__name__ != "psycopg2":
        raise ImproperlyConfigured(
            f"warehouse needs PostgreSQL through psycopg2, but database {using!r} uses "
            f"{connection.vendor} through {connection.Database.__name__}; "
            "run 'manage.py check' for the fix."
        )
    return connection


def large_object_exists(connection: BaseDatabaseWrapper, loid: int) -> bool:
    """Whether ``loid`` names a large object, asked without aborting the transaction.

    A failed ``lo_open`` aborts the whole transaction (the caller's too), so
    the catalog is asked first; it is readable by every role.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT FROM pg_largeobject_metadata WHERE oid = %s)", [loid])
        return cursor.fetchone()[0]


def unlink_large_object(loid: int, using: str | None = None) -> bool:
    """Unlink ``loid`` in the current transaction; return whether it existed."""
    connection = database_connection(using or alias_for_writing())
    lease = transactions.lease(connection)
    try:
        if not large_object_exists(connection, loid):
            return False
        with connection.wrap_database_errors:
            # Mode "n" makes the lobject without opening a descriptor.
            connection.connection.lobject(loid, "n").unlink()
        return True
    except BaseException:
        lease.release(failed=True)
        raise
    finally:
        lease.release()
