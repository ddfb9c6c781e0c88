"""The seed README's Invoice model and signals work as written, and transactions undo them."""

import pytest
from django.core.files.base import ContentFile
from django.db import transaction

from tests.conftest import SimulatedError, large_object_content, large_object_oids
from tests.factories import InvoiceFactory
from tests.models import Invoice
from warehouse.storage import oid_of

pytestmark = pytest.mark.django_db


def replace_file(invoice: Invoice, content: bytes) -> None:
    invoice.data.save("replacement.pdf", ContentFile(content), save=True)


def test_replacing_the_file_unlinks_the_old_object():
    invoice = InvoiceFactory()
    old = oid_of(invoice.data.name)
    replace_file(Invoice.objects.get(pk=invoice.pk), b"new")
    assert old not in large_object_oids()


def test_replacing_the_file_keeps_the_new_object():
    invoice = Invoice.objects.get(pk=InvoiceFactory().pk)
    replace_file(invoice, b"new")
    assert large_object_content(oid_of(invoice.data.name)) == b"new"


def test_deleting_the_invoice_unlinks_its_object():
    invoice = InvoiceFactory()
    invoice.delete()
    assert oid_of(invoice.data.name) not in large_object_oids()


def test_deleting_the_owner_unlinks_the_object_through_the_cascade():
    invoice = InvoiceFactory()
    invoice.owner.delete()
    assert oid_of(invoice.data.name) not in large_object_oids()


def test_a_rolled_back_replace_restores_the_old_object():
    invoice = InvoiceFactory(data__data=b"original")
    old = oid_of(invoice.data.name)
    with pytest.raises(SimulatedError), transaction.atomic():
        replace_file(Invoice.objects.get(pk=invoice.pk), b"new")
        raise SimulatedError
    assert large_object_content(old) == b"original"
    assert Invoice.objects.get(pk=invoice.pk).data.name == invoice.data.name


def test_a_rolled_back_delete_restores_the_object():
    invoice = InvoiceFactory(data__data=b"original")
    with pytest.raises(SimulatedError), transaction.atomic():
        Invoice.objects.get(pk=invoice.pk).delete()
        raise SimulatedError
    assert large_object_content(oid_of(invoice.data.name)) == b"original"


def test_the_second_field_stores_through_its_own_storage():
    invoice = InvoiceFactory(or_just_so=ContentFile(b"copy", name="copy.pdf"))
    assert invoice.or_just_so.url == f"/invoice/{invoice.or_just_so.name}"
    assert large_object_content(oid_of(invoice.or_just_so.name)) == b"copy"
