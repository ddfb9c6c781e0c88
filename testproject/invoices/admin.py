"""Admin of the invoices: files shown by their uploaded name, linked to the staff's view."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.widgets import AdminFileWidget
from django.db.models.fields.files import FieldFile
from django.urls import reverse
from django.utils.html import format_html

from .models import Invoice
from .templatetags.invoices import shown_name


def staff_url(file: FieldFile) -> str:
    """Where a staff member opens any invoice's file: not the owner-only link of ``file.url``."""
    return reverse("invoices:staff-data-file", args=[file.name])


class StaffLink:
    """What ``ClearableFileInput`` shows after "Currently:": the uploaded name, the staff's URL."""

    def __init__(self, file: FieldFile) -> None:
        self.url, self.name = staff_url(file), shown_name(file)

    def __str__(self) -> str:
        return self.name


class StaffFileInput(AdminFileWidget):
    """A file input whose "Currently:" link a staff member can follow to any invoice's file."""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        if context["widget"]["is_initial"]:
            context["widget"]["value"] = StaffLink(value)
        return context


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    """Every user's invoices, for a staff member."""

    list_display = ["__str__", "owner", "file", "or_just_so", "created"]
    list_filter = ["owner"]
    search_fields = ["title", "owner__username"]

    def formfield_for_dbfield(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        if db_field.name == "data":
            kwargs["widget"] = StaffFileInput
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="file", ordering="data")
    def file(self, invoice: Invoice) -> str:
        """The file's uploaded name, linked to the staff's view of it."""
        if not invoice.data:
            return "—"
        return format_html('<a href="{}">{}</a>', staff_url(invoice.data), shown_name(invoice.data))
