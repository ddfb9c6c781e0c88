from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.urls import path

from tests.models import Invoice
from warehouse.views import db_serve


@login_required
def large_object_serve(request: HttpRequest, filename: str) -> HttpResponse:
    """The seed's serve example, with the model's real field name."""
    if not Invoice.objects.filter(owner=request.user, data=filename).exists():
        return HttpResponseForbidden()
    return db_serve(request, filename)


urlpatterns = [
    path("admin/", admin.site.urls),
    path("invoice/<str:filename>", large_object_serve, name="invoice-file"),
    path("serve/<str:filename>", db_serve, name="serve"),
]
