"""factory-boy factories for the test models and stored files."""

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from tests.models import Contract, Document, Draft, Folder, Invoice, Receipt, ReceiptOnDisk


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("secret")


class UploadFactory(factory.Factory):
    """An uploaded file: a name with an extension and some bytes."""

    class Meta:
        model = ContentFile

    content = factory.Sequence(lambda n: f"%PDF-1.7 invoice number {n}\n".encode())
    name = factory.Sequence(lambda n: f"uploads/invoice-{n}.pdf")


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    owner = factory.SubFactory(UserFactory)
    data = factory.django.FileField(filename="invoice.pdf", data=b"%PDF-1.7 an invoice\n")


class ContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contract

    title = factory.Sequence(lambda n: f"contract {n}")
    document = factory.django.FileField(filename="contract.pdf", data=b"%PDF-1.7 a contract\n")


class FolderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Folder


class DocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Document

    title = factory.Sequence(lambda n: f"document {n}")
    file = factory.django.FileField(filename="document.pdf", data=b"%PDF-1.7 a document\n")


class DraftFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Draft

    file = factory.django.FileField(filename="draft.txt", data=b"a draft\n")


class ReceiptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Receipt

    title = factory.Sequence(lambda n: f"receipt {n}")
    file = factory.django.FileField(filename="receipt.txt", data=b"a receipt\n")


class ReceiptOnDiskFactory(ReceiptFactory):
    """A receipt saved before the move: its file in MEDIA_ROOT, in an upload_to folder."""

    class Meta:
        model = ReceiptOnDisk
