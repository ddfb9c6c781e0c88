"""System checks: configuration errors surface in ``manage.py check``, not deep in a request."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.db import connections

from warehouse.conf import conf

_PSYCOPG3_HINT = (
    "Django prefers psycopg 3 whenever it is installed, and psycopg 3 has no "
    "lobject(). Uninstall it ('pip uninstall psycopg psycopg-binary psycopg-c') "
    "so that Django uses psycopg2."
)


def check_databases(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Check that both aliases exist and talk to PostgreSQL through psycopg2."""
    errors: list[CheckMessage] = []
    checked = set()
    for setting in ("WAREHOUSE_DB_FOR_READ", "WAREHOUSE_DB_FOR_WRITE"):
        alias = getattr(conf, setting)
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
        elif alias not in checked:
            checked.add(alias)
            errors.extend(_check_driver(setting, alias))
    return errors


def _check_driver(setting: str, alias: str) -> list[CheckMessage]:
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return [
            Error(
                f"{setting} names the database {alias!r}, which is {connection.vendor}; "
                "large objects need PostgreSQL.",
                hint="Point it at a database with ENGINE 'django.db.backends.postgresql'.",
                id="warehouse.E003",
            )
        ]
    driver = connection.Database.__name__
    if driver != "psycopg2":
        return [
            Error(
                f"{setting} names the database {alias!r}, which Django reaches through "
                f"{driver}; warehouse needs psycopg2's lobject().",
                hint=_PSYCOPG3_HINT,
                id="warehouse.E004",
            )
        ]
    return []
