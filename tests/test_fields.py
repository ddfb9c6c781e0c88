"""DbFileField: a FileField on db_file_storage, stable in migrations, usable in forms."""

import pytest
from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import transaction

from tests.conftest import SimulatedError, large_object_content, large_object_oids
from tests.factories import ContractFactory
from tests.models import Contract
from warehouse.fields import DbFileField
from warehouse.storage import DbFileStorage, db_file_storage, oid_of

pytestmark = pytest.mark.django_db


class ContractForm(forms.ModelForm):
    class Meta:
        model = Contract
        fields = ["title", "document"]


def test_the_default_storage_is_db_file_storage():
    assert DbFileField().storage is db_file_storage


def test_a_given_storage_is_kept():
    storage = DbFileStorage("/contracts")
    assert DbFileField(storage=storage).storage is storage


def test_saving_a_model_stores_the_file_as_a_large_object():
    contract = ContractFactory(document__data=b"signed")
    assert contract.document.name == f"{oid_of(contract.document.name)}.pdf"
    assert large_object_content(oid_of(contract.document.name)) == b"signed"


def test_upload_to_does_not_change_the_name():
    field = DbFileField(upload_to="contracts/%Y/")
    field.set_attributes_from_name("document")
    name = db_file_storage.save(
        field.generate_filename(None, "a.pdf"), SimpleUploadedFile("a", b"x")
    )
    assert "/" not in name


def test_a_model_save_rolled_back_leaves_no_object():
    objects_before = large_object_oids()
    with pytest.raises(SimulatedError), transaction.atomic():
        ContractFactory()
        raise SimulatedError
    assert large_object_oids() == objects_before


def test_the_file_reads_back_through_the_field():
    contract = ContractFactory(document__data=b"terms")
    reloaded = Contract.objects.get(pk=contract.pk)
    with reloaded.document.open() as file:
        assert file.read() == b"terms"
    assert reloaded.document.size == 5


def test_the_default_storage_stays_out_of_the_deconstructed_field():
    _, path, _, kwargs = DbFileField(blank=True).deconstruct()
    assert path == "warehouse.fields.DbFileField"
    assert "storage" not in kwargs


def test_a_custom_storage_is_deconstructed():
    _, _, _, kwargs = DbFileField(storage=DbFileStorage("/x")).deconstruct()
    assert kwargs["storage"].deconstruct() == ("warehouse.storage.DbFileStorage", ("/x",), {})


def test_migrations_are_stable_after_a_round_trip():
    call_command("makemigrations", "tests", "--check", "--dry-run", verbosity=0)


def test_a_model_form_uploads_a_file():
    upload = SimpleUploadedFile("lease.pdf", b"%PDF lease", content_type="application/pdf")
    form = ContractForm(data={"title": "lease"}, files={"document": upload})
    assert form.is_valid(), form.errors
    contract = form.save()
    assert large_object_content(oid_of(contract.document.name)) == b"%PDF lease"


def test_a_model_form_renders_a_link_to_the_current_file():
    contract = ContractFactory()
    html = ContractForm(instance=contract).as_p()
    assert f'href="/warehouse/{contract.document.name}"' in html
