"""App configuration: registers the system checks."""

from __future__ import annotations

import pkgutil
from importlib import import_module

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


class WarehouseConfig(AppConfig):
    """The warehouse app.

    A site with an app of its own labelled ``warehouse`` installs this one
    under another label: a subclass setting ``label`` (``"files"``, say).
    """

    name = "warehouse"
    verbose_name = "Warehouse"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from warehouse.checks import (
            check_database_drivers,
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
        # These look at the databases: Django runs them only with the aliases they may use.
        checks.register(check_database_drivers, checks.Tags.database)
        checks.register(check_registry_migrated, checks.Tags.database)
        checks.register(check_large_object_privileges, checks.Tags.database)
        checks.register(check_file_field_indexes, checks.Tags.database)
        self._migrations_follow_the_label()

    def _migrations_follow_the_label(self) -> None:
        """Make the app's migrations name each other by the label it is installed under.

        They say ``("warehouse", "0001_initial")``; under another label the
        migration loader would look for an app called ``warehouse`` and fail
        (``NodeNotFoundError``). Migrations a site keeps for it elsewhere
        (``MIGRATION_MODULES``) are its own, and left alone.
        """
        default = self.name.rpartition(".")[2]
        if self.label == default or self.label in settings.MIGRATION_MODULES:
            return
        package = import_module(f"{self.name}.migrations")
        for module in pkgutil.iter_modules(package.__path__):
            migration = import_module(f"{package.__name__}.{module.name}").Migration
            migration.dependencies = [
                (self.label, parent[1]) if parent[0] == default else parent
                for parent in migration.dependencies
            ]
