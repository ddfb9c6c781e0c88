from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseForbidden
from django.urls import path

from tests.models import Document, Folder, Invoice, Receipt
from warehouse.views import db_serve


@login_required
def large_object_serve(request: HttpRequest, filename: str) -> HttpResponse:
    """The seed's serve example, with the model's real field name."""
    if not Invoice.objects.filter(owner=request.user, data=filename).exists():
        return HttpResponseForbidden()
    return db_serve(request, filename)


@login_required
def owned_invoice_file(request: HttpRequest, filename: str) -> HttpResponse:
    """The one-call form: only a name one of the user's invoices holds is served."""
    invoices = Invoice.objects.filter(owner=request.user)
    return db_serve(request, filename, queryset=invoices, field="data")


def read_then_create_a_folder(request: HttpRequest, pk: int) -> HttpResponse:
    """Read a file the way Django's FieldFile leaves it open, then save a row."""
    document = Document.objects.get(pk=pk)
    content = document.file.read()
    Folder.objects.create()
    return HttpResponse(content)


def document_file_response(request: HttpRequest, pk: int) -> FileResponse:
    """The plain Django way to send a model's file."""
    return FileResponse(Document.objects.get(pk=pk).file.open())


def upload_document(request: HttpRequest) -> HttpResponse:
    """Save the uploaded file to a new Document; fail afterwards if asked to."""
    document = Document.objects.create(file=request.FILES["file"])
    if request.POST.get("then") == "fail":
        raise RuntimeError("the view failed after saving")
    return HttpResponse(document.file.name)


def receipt_file(request: HttpRequest, filename: str) -> HttpResponse:
    """Serve any receipt's file but a secret one's: large objects and, during a move, the rest."""
    receipts = Receipt.objects.exclude(title="secret")
    return db_serve(request, filename, queryset=receipts, field="file")


def upload_receipt(request: HttpRequest) -> HttpResponse:
    """Save the uploaded file to a new Receipt, in its upload_to folder."""
    return HttpResponse(Receipt.objects.create(file=request.FILES["file"]).file.name)


def upload_unsaved(request: HttpRequest) -> HttpResponse:
    """Look at the upload, save nothing."""
    upload = request.FILES["file"]
    return HttpResponse(f"{type(upload).__name__} {upload.size}")


urlpatterns = [
    path("upload", upload_document),
    path("upload-unsaved", upload_unsaved),
    path("upload-receipt", upload_receipt),
    # WAREHOUSE_BASE_URL: where DbFileStorage.url() points; a path, for a previous storage's names.
    path("warehouse/<path:filename>", receipt_file),
    path("owned/<str:filename>", owned_invoice_file),
    path("read-then-create/<int:pk>", read_then_create_a_folder),
    path("document/<int:pk>", document_file_response),
    path("admin/", admin.site.urls),
    path("invoice/<str:filename>", large_object_serve, name="invoice-file"),
    path("serve/<str:filename>", db_serve, name="serve"),
]
