"""App configuration of the invoices app."""

from __future__ import annotations

from django.apps import AppConfig


class InvoicesConfig(AppConfig):
    """The invoices app; its signals live in models.py and connect on import."""

    name = "invoices"
    default_auto_field = "django.db.models.BigAutoField"
