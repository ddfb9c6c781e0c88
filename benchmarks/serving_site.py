"""The smallest Django site that serves files with db_serve, for benchmarks/serving.py.

``/file/<name>`` is ``db_serve``; ``/blob/<id>`` sends the same bytes from a
model's ``BinaryField``, read through the ORM, as the baseline for small files.
``/upload`` saves the request's file to the storage, with the upload
handlers ``UPLOAD_HANDLERS`` names (Django's unless ``warehouse``), their
temporary files in ``FILE_UPLOAD_TEMP_DIR``.
The database comes from ``DATABASE_URL``. Connections are persistent under
WSGI, as in production; under ASGI they are not (``CONN_MAX_AGE`` from the
environment), as Django advises: every request runs in a context of its own.
"""

from __future__ import annotations

import os

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

from dev_database import settings_from_url

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["127.0.0.1"],
    SECRET_KEY="benchmark-only",
    ROOT_URLCONF=__name__,
    DATABASES={
        "default": {
            **settings_from_url(os.environ["DATABASE_URL"]),
            "CONN_MAX_AGE": int(os.environ.get("CONN_MAX_AGE", "600")),
            "CONN_HEALTH_CHECKS": True,
        }
    },
    INSTALLED_APPS=["warehouse"],
    USE_TZ=True,
    FILE_UPLOAD_TEMP_DIR=os.environ.get("FILE_UPLOAD_TEMP_DIR"),
    DATA_UPLOAD_MAX_MEMORY_SIZE=None,
    **(
        {"FILE_UPLOAD_HANDLERS": ["warehouse.uploads.DbFileUploadHandler"]}
        if os.environ.get("UPLOAD_HANDLERS") == "warehouse"
        else {}
    ),
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import models  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from warehouse.storage import db_file_storage  # noqa: E402
from warehouse.views import db_serve  # noqa: E402


class Blob(models.Model):
    """A file kept in a bytea column, the way a site without warehouse would."""

    data = models.BinaryField()

    class Meta:
        app_label = "warehouse"  # an installed app: this site has no app of its own
        db_table = "warehouse_benchmark_blob"
        managed = False

    def __str__(self) -> str:
        return f"blob {self.pk}"


def blob(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(bytes(Blob.objects.get(pk=pk).data), content_type="application/pdf")


@csrf_exempt
def upload(request: HttpRequest) -> HttpResponse:
    return HttpResponse(db_file_storage.save("upload.bin", request.FILES["file"]))


urlpatterns = [
    path("file/<str:filename>", db_serve),
    path("blob/<int:pk>", blob),
    path("upload", upload),
]

application = get_wsgi_application()
asgi_application = get_asgi_application()
