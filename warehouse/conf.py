"""Settings of warehouse, read when used so that ``override_settings`` works."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS


class WarehouseSettings:
    """Lazy view of the ``WAREHOUSE_*`` settings with their defaults."""

    @property
    def WAREHOUSE_DB_FOR_READ(self) -> str:  # noqa: N802 - named like the setting
        return getattr(settings, "WAREHOUSE_DB_FOR_READ", DEFAULT_DB_ALIAS)

    @property
    def WAREHOUSE_DB_FOR_WRITE(self) -> str:  # noqa: N802
        return getattr(settings, "WAREHOUSE_DB_FOR_WRITE", DEFAULT_DB_ALIAS)

    @property
    def WAREHOUSE_REFERENCE_FIELDS(self) -> list[str]:  # noqa: N802
        return list(getattr(settings, "WAREHOUSE_REFERENCE_FIELDS", []))

    @property
    def WAREHOUSE_READ_ROLES(self) -> list[str]:  # noqa: N802
        roles = getattr(settings, "WAREHOUSE_READ_ROLES", [])
        # A bare str would be granted letter by letter.
        if not isinstance(roles, (list, tuple)) or not all(
            isinstance(role, str) and role for role in roles
        ):
            raise ImproperlyConfigured(
                f"WAREHOUSE_READ_ROLES must be a list of role names (str), not {roles!r}."
            )
        return list(roles)

    @property
    def WAREHOUSE_BASE_URL(self) -> str:  # noqa: N802
        return getattr(settings, "WAREHOUSE_BASE_URL", "/warehouse/")

    @property
    def WAREHOUSE_PREVIOUS_STORAGE(self) -> Any:  # noqa: N802
        return getattr(settings, "WAREHOUSE_PREVIOUS_STORAGE", None)


conf = WarehouseSettings()


def alias_for_reading() -> str:
    """Return the alias that reads go to (:mod:`warehouse.transactions` routes each one)."""
    return conf.WAREHOUSE_DB_FOR_READ


def alias_for_writing() -> str:
    """Return the alias that creates, writes and unlinks objects."""
    return conf.WAREHOUSE_DB_FOR_WRITE
