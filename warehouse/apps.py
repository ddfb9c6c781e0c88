"""App configuration: registers the system checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class WarehouseConfig(AppConfig):
    """The warehouse app."""

    name = "warehouse"
    verbose_name = "Warehouse"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from warehouse.checks import (
            check_databases,
            check_file_field_indexes,
            check_file_fields,
            check_large_object_privileges,
            check_read_roles,
            check_reference_fields,
            check_registry_migrated,
        )

        checks.register(check_databases)
        checks.register(check_reference_fields)
        checks.register(check_read_roles)
        checks.register(check_file_fields, checks.Tags.models)
        # These connect: Django runs them only with the aliases they may use.
        checks.register(check_registry_migrated, checks.Tags.database)
        checks.register(check_large_object_privileges, checks.Tags.database)
        checks.register(check_file_field_indexes, checks.Tags.database)
