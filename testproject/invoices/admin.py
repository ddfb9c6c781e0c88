"""Admin of the invoices."""

from __future__ import annotations

from django.contrib import admin

from .models import Invoice


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    """Every user's invoices, for a staff member."""

    list_display = ["__str__", "owner", "data", "or_just_so", "created"]
    list_filter = ["owner"]
    search_fields = ["title", "owner__username"]
