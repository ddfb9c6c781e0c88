"""psycopg2, the one driver with ``lobject()``: whether a connection has it, and the fix if not.

warehouse-py requires no driver (its extras ``binary`` and ``source`` choose
psycopg2-binary or psycopg2), so the package imports without one: a site
whose tests run on SQLite, or that has psycopg 3 only, still starts and
runs whatever does not touch files. (With no driver at all, Django itself
cannot start on PostgreSQL.) ``manage.py check --database`` tells
what is missing (``warehouse.W003``, ``W004``), and so does the first file
operation (``ImproperlyConfigured``), in the words of :func:`problem`.
"""

from __future__ import annotations

import importlib.util
from typing import Any, NamedTuple

from django.db import connections

try:
    from psycopg2 import sql
    from psycopg2.extensions import (
        ISOLATION_LEVEL_REPEATABLE_READ,
        TRANSACTION_STATUS_IDLE,
        TRANSACTION_STATUS_INERROR,
    )
except ImportError:  # nothing uses them then: database_connection() refuses first
    ISOLATION_LEVEL_REPEATABLE_READ = TRANSACTION_STATUS_IDLE = TRANSACTION_STATUS_INERROR = None
    sql = None  # type: ignore[assignment]

__all__ = [
    "ISOLATION_LEVEL_REPEATABLE_READ",
    "TRANSACTION_STATUS_IDLE",
    "TRANSACTION_STATUS_INERROR",
    "Problem",
    "problem",
    "sql",
]

INSTALL_HINT = (
    "Install psycopg2: pip install 'warehouse-py[binary]' (a prebuilt wheel), or "
    "'warehouse-py[source]' to build it against the system's libpq."
)
UNINSTALL_PSYCOPG3_HINT = (
    "Django prefers psycopg 3 whenever it is installed, and psycopg 3 has no lobject(): "
    "uninstall it ('pip uninstall psycopg psycopg-binary psycopg-c') so that Django uses "
    "psycopg2."
)


class Problem(NamedTuple):
    """Why a database alias cannot keep large objects, and what to do."""

    id: str  # the system check's id
    reason: str  # completes "database 'x' ..."
    hint: str


def psycopg2_installed() -> bool:
    """Whether psycopg2 (from psycopg2 or psycopg2-binary) can be imported."""
    return importlib.util.find_spec("psycopg2") is not None


def problem(alias: str) -> Problem | None:
    """What keeps ``alias`` from large objects: not PostgreSQL, or not through psycopg2."""
    connection: Any = connections[alias]
    if connection.vendor != "postgresql":
        return Problem(
            "warehouse.W003",
            f"is {connection.vendor}; large objects need PostgreSQL",
            "Point it at a database with ENGINE 'django.db.backends.postgresql'.",
        )
    driver = connection.Database.__name__
    if driver == "psycopg2":
        return None
    hint = UNINSTALL_PSYCOPG3_HINT
    if not psycopg2_installed():
        hint = f"{INSTALL_HINT} {hint}"
    return Problem(
        "warehouse.W004",
        f"is reached through {driver}; warehouse needs psycopg2's lobject()",
        hint,
    )
