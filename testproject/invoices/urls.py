"""URLs of the invoices app, mounted at the site root."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "invoices"

urlpatterns = [
    path("", views.invoice_list, name="list"),
    path("upload/", views.invoice_upload, name="upload"),
    path("<int:pk>/replace/", views.invoice_replace, name="replace"),
    path("<int:pk>/delete/", views.invoice_delete, name="delete"),
    # Where FieldFile.url points: WAREHOUSE_BASE_URL ("/warehouse/") for `data`,
    # the storage's own base_url ("/invoice/") for `or_just_so`.
    path("warehouse/<str:filename>", views.large_object_serve, name="data-file"),
    path("invoice/<str:filename>", views.or_just_so_serve, name="or-just-so-file"),
    # Any invoice's file, for the admin (whose staff do not own the invoices they look at).
    path("staff/warehouse/<str:filename>", views.staff_serve, name="staff-data-file"),
]
