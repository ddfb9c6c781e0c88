"""URLs of the demo site: admin, login/logout, and the invoices app at the root."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="invoices/login.html"),
        name="login",
    ),
    # LogoutView only accepts POST (Django 5+): the nav has a small form for it.
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("invoices.urls")),
]
