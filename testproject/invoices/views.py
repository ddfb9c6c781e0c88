"""Views of a user's own invoices (list, upload, replace, delete, download) and the staff's."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.views.decorators.http import require_http_methods, require_safe

from warehouse.views import db_serve

from .forms import InvoiceForm, ReplaceFileForm
from .models import Invoice
from .templatetags.invoices import shown_name


def _size(file: FieldFile) -> int | None:
    """The size of a stored file, or None when there is none (or its object is gone)."""
    if not file:
        return None
    try:
        return file.size
    except FileNotFoundError:
        # An object unlinked behind Django's back must not break the whole list.
        return None


def _saved(request: HttpRequest) -> HttpResponse:
    """Go to the list: a redirect, or where to go for the upload script (upload.js).

    The script's XHR would follow a redirect itself, and the page it fetched
    would take the message meant for the page the browser shows next.
    """
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return JsonResponse({"redirect": resolve_url("invoices:list")})
    return redirect("invoices:list")


@login_required
@require_safe
def invoice_list(request: HttpRequest) -> HttpResponse:
    """List the invoices of the user who is logged in."""
    invoices = Invoice.objects.filter(owner=request.user)
    rows = [(invoice, _size(invoice.data)) for invoice in invoices]
    return render(request, "invoices/list.html", {"rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def invoice_upload(request: HttpRequest) -> HttpResponse:
    """Create an invoice with its file."""
    posted = request.method == "POST"
    form = InvoiceForm(request.POST, request.FILES) if posted else InvoiceForm()
    if posted and form.is_valid():
        form.instance.owner = request.user
        # The large object and the row commit together or not at all.
        with transaction.atomic():
            invoice = form.save()
        messages.success(request, f"Uploaded {shown_name(invoice.data)} as {invoice}.")
        return _saved(request)
    return render(request, "invoices/form.html", {"form": form, "title": "Upload an invoice"})


@login_required
@require_http_methods(["GET", "POST"])
def invoice_replace(request: HttpRequest, pk: int) -> HttpResponse:
    """Give an invoice another file; the signal unlinks the old one."""
    invoice = get_object_or_404(Invoice, pk=pk, owner=request.user)
    old_name = shown_name(invoice.data) if invoice.data else "no file"
    posted = request.method == "POST"
    if posted:
        form = ReplaceFileForm(request.POST, request.FILES, instance=invoice)
    else:
        form = ReplaceFileForm(instance=invoice)
    if posted and form.is_valid():
        # Creating the new object and unlinking the old one is a single transaction.
        with transaction.atomic():
            form.save()
        messages.success(
            request, f"Replaced {old_name} by {shown_name(invoice.data)} in {invoice}."
        )
        return _saved(request)
    context = {"form": form, "title": f"Replace the file of {invoice}", "invoice": invoice}
    return render(request, "invoices/form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def invoice_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask for confirmation, then delete an invoice; the signal unlinks its file."""
    invoice = get_object_or_404(Invoice, pk=pk, owner=request.user)
    if request.method == "POST":
        name = str(invoice)
        # The row and its large object go together.
        with transaction.atomic():
            invoice.delete()
        messages.success(request, f"Deleted {name}.")
        return redirect("invoices:list")
    return render(request, "invoices/confirm_delete.html", {"invoice": invoice})


@login_required
def large_object_serve(request: HttpRequest, filename: str) -> HttpResponseBase:
    """Serve an invoice's `data` file to its owner only (the README's example)."""
    invoices = Invoice.objects.filter(owner=request.user)
    return db_serve(request, filename, queryset=invoices, field="data")


@login_required
def or_just_so_serve(request: HttpRequest, filename: str) -> HttpResponseBase:
    """Serve an invoice's `or_just_so` file to its owner only."""
    invoices = Invoice.objects.filter(owner=request.user)
    return db_serve(request, filename, queryset=invoices, field="or_just_so")


@staff_member_required
def staff_serve(request: HttpRequest, filename: str) -> HttpResponseBase:
    """Serve any invoice's `data` file to a staff member: where the admin's links point."""
    return db_serve(request, filename, queryset=Invoice.objects.all(), field="data")
