"""DbFileField unlinks files no row points at any more, in the transaction that let go of them."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from tests.conftest import (
    SimulatedError,
    large_object_content,
    large_object_oids,
    open_transaction_in_another_thread,
)
from tests.factories import DocumentFactory, DraftFactory, FolderFactory, InvoiceFactory
from tests.models import Document, DocumentProxy, Invoice, LegacyBlob
from warehouse.storage import db_file_storage, oid_of

pytestmark = pytest.mark.django_db


def oid(field_file) -> int:
    return oid_of(field_file.name)


def replace(document: Document, content: bytes = b"new") -> None:
    document.file.save("new.pdf", ContentFile(content), save=True)


def test_replacing_the_file_unlinks_the_old_object():
    document = DocumentFactory()
    old = oid(document.file)
    replace(document)
    assert old not in large_object_oids()


def test_replacing_the_file_keeps_the_new_object():
    document = DocumentFactory()
    replace(document, b"fresh")
    assert large_object_content(oid(document.file)) == b"fresh"


def test_replacing_a_reloaded_instance_unlinks_the_old_object():
    old = oid(DocumentFactory().file)
    replace(Document.objects.get())
    assert old not in large_object_oids()


def test_replacing_an_instance_loaded_without_the_field_unlinks_the_old_object():
    old = oid(DocumentFactory().file)
    replace(Document.objects.only("title").get())
    assert old not in large_object_oids()


def test_clearing_the_file_unlinks_the_object():
    document = DocumentFactory()
    old = oid(document.file)
    document.file = None
    document.save()
    assert old not in large_object_oids()


def test_saving_without_touching_the_file_keeps_it():
    document = DocumentFactory()
    document.title = "renamed"
    document.save()
    Document.objects.get().save()
    assert oid(document.file) in large_object_oids()


def test_saving_other_fields_only_keeps_the_file():
    document = DocumentFactory()
    document.file = None
    document.save(update_fields=["title"])
    assert oid(Document.objects.get().file) in large_object_oids()


def test_deleting_the_row_unlinks_its_objects():
    document = DocumentFactory(attachment=ContentFile(b"appendix", name="a.txt"))
    objects = {oid(document.file), oid(document.attachment)}
    document.delete()
    assert objects.isdisjoint(large_object_oids())


def test_queryset_delete_unlinks_every_object():
    documents = DocumentFactory.create_batch(3)
    Document.objects.all().delete()
    assert {oid(d.file) for d in documents}.isdisjoint(large_object_oids())


def test_a_cascade_unlinks_the_objects_of_the_rows_it_deletes():
    folder = FolderFactory()
    documents = DocumentFactory.create_batch(2, folder=folder)
    folder.delete()
    assert {oid(d.file) for d in documents}.isdisjoint(large_object_oids())


def test_a_rolled_back_replace_restores_the_old_object():
    document = DocumentFactory(file__data=b"original")
    old = oid(document.file)
    with pytest.raises(SimulatedError), transaction.atomic():
        replace(Document.objects.get())
        assert old not in large_object_oids()
        raise SimulatedError
    assert large_object_content(old) == b"original"


def test_a_rolled_back_delete_restores_the_object():
    document = DocumentFactory(file__data=b"original")
    with pytest.raises(SimulatedError), transaction.atomic():
        Document.objects.all().delete()
        raise SimulatedError
    assert large_object_content(oid(document.file)) == b"original"


def test_a_copy_keeps_the_file_when_the_original_is_deleted():
    original = DocumentFactory(file__data=b"shared")
    copy = Document.objects.get(pk=original.pk)
    copy.pk = None
    copy.save()
    original.delete()
    assert large_object_content(oid(copy.file)) == b"shared"


def test_a_copy_keeps_the_file_when_the_original_replaces_it():
    original = DocumentFactory(file__data=b"shared")
    copy = Document.objects.get(pk=original.pk)
    copy.pk = None
    copy.save()
    replace(original)
    assert large_object_content(oid(copy.file)) == b"shared"


def test_the_last_copy_deleted_unlinks_the_file():
    original = DocumentFactory()
    copy = Document.objects.get(pk=original.pk)
    copy.pk = None
    copy.save()
    Document.objects.all().delete()
    assert oid(original.file) not in large_object_oids()


def test_another_field_of_the_same_row_naming_the_object_keeps_it():
    document = DocumentFactory()
    document.attachment = document.file.name
    document.save()
    document.file = None
    document.save()
    assert oid(document.attachment) in large_object_oids()


def test_an_oid_column_naming_the_object_keeps_it():
    document = DocumentFactory()
    LegacyBlob.objects.create(loid=oid(document.file))
    document.delete()
    assert oid(document.file) in large_object_oids()


def test_a_field_with_auto_delete_off_keeps_replaced_files():
    draft = DraftFactory()
    old = oid(draft.file)
    draft.file.save("v2.txt", ContentFile(b"v2"))
    draft.delete()
    assert old in large_object_oids()


def test_the_seed_signals_alongside_do_not_fail_on_the_second_unlink():
    invoice = InvoiceFactory()
    old = oid(invoice.data)
    reloaded = Invoice.objects.get()
    reloaded.data.save("new.pdf", ContentFile(b"new"))
    reloaded.delete()
    assert {old, oid(reloaded.data)}.isdisjoint(large_object_oids())


def test_auto_delete_off_is_kept_in_migrations():
    field = Document._meta.get_field("file")
    assert "auto_delete" not in field.deconstruct()[3]
    from tests.models import Draft

    assert Draft._meta.get_field("file").deconstruct()[3]["auto_delete"] is False


def test_creating_a_row_from_an_upload_never_unlinks_the_object_its_name_mimics():
    pending = db_file_storage.save("pending.pdf", ContentFile(b"someone's pending upload"))
    Document.objects.create(file=SimpleUploadedFile(pending, b"my bytes"))
    assert oid_of(pending) in large_object_oids()


def test_an_update_through_a_constructed_instance_unlinks_what_the_row_held():
    document = DocumentFactory()
    decoy = db_file_storage.save("decoy.pdf", ContentFile(b"not this one"))
    Document(pk=document.pk, title="again", file=SimpleUploadedFile(decoy, b"new")).save()
    assert oid_of(decoy) in large_object_oids()
    assert oid(document.file) not in large_object_oids()


def test_replacing_through_a_proxy_unlinks_the_old_object():
    old = oid(DocumentFactory().file)
    replace(DocumentProxy.objects.get())
    assert old not in large_object_oids()


def test_deleting_through_a_proxy_unlinks_the_object():
    old = oid(DocumentFactory().file)
    DocumentProxy.objects.get().delete()
    assert old not in large_object_oids()


@pytest.mark.django_db(transaction=True)
def test_a_copy_saved_while_the_original_is_being_deleted_fails_rather_than_dangle():
    original = DocumentFactory()
    copy = Document.objects.get(pk=original.pk)
    copy.pk = None
    deleting = Document.objects.filter(pk=original.pk)
    # The copy's save waits for the deleting transaction's lock, which lets go after 0.5 s.
    with (
        open_transaction_in_another_thread(deleting.delete, commit_after=0.5),
        pytest.raises(FileNotFoundError),
        transaction.atomic(),
    ):
        copy.save()
    assert not Document.objects.exists()


def test_a_queryset_deleting_again_rows_made_anew_under_the_same_keys_unlinks_their_files():
    document = DocumentFactory()
    everything = Document.objects.all()
    everything.delete()
    again = Document.objects.create(pk=document.pk, file=ContentFile(b"again", name="again.pdf"))
    everything.delete()
    assert oid(again.file) not in large_object_oids()
    assert large_object_oids() == set()
