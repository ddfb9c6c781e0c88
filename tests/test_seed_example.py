"""The seed README's Invoice model and signals work as written, and transactions undo them."""

import inspect
import textwrap
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.db import transaction

from tests import models
from tests.conftest import SimulatedError, large_object_content, large_object_oids
from tests.factories import InvoiceFactory
from tests.models import Invoice
from warehouse.storage import oid_of

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parent.parent / "README.rst"


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


def readme_block_after(text: str) -> str:
    """The code block that follows the paragraph ending in ``text``."""
    rest = README.read_text().split(text, 1)[1].split(".. code-block:: python", 1)[1]
    lines = []
    for line in rest.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines)).strip()


@pytest.mark.django_db(False)
def test_the_readme_shows_the_signals_these_tests_run():
    shown = readme_block_after("Drop them once the field does the work:")
    run = "\n\n\n".join(
        inspect.getsource(receiver).strip()
        for receiver in (models.user_file_initialized, models.user_file_saved)
    )
    assert shown == run


def test_saving_an_invoice_for_another_field_keeps_its_file():
    invoice = Invoice.objects.get(pk=InvoiceFactory().pk)
    loid = oid_of(invoice.data.name)
    invoice.owner = invoice.owner
    invoice.save()
    assert loid in large_object_oids()
    assert Invoice.objects.get().data.name == invoice.data.name
