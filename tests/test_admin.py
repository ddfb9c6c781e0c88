"""A DbFileField works in the Django admin: upload, link, replace."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import large_object_content, large_object_oids
from tests.factories import ContractFactory, UserFactory
from tests.models import Contract
from warehouse.storage import oid_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_admin_uploads_a_file(admin_client):
    upload = SimpleUploadedFile("deed.pdf", b"%PDF deed")
    response = admin_client.post(
        "/admin/tests/contract/add/", {"title": "deed", "document": upload}
    )
    assert response.status_code == 302
    contract = Contract.objects.get(title="deed")
    assert large_object_content(oid_of(contract.document.name)) == b"%PDF deed"


def test_the_change_page_links_to_the_current_file(admin_client):
    contract = ContractFactory()
    response = admin_client.get(f"/admin/tests/contract/{contract.pk}/change/")
    assert f'href="/warehouse/{contract.document.name}"' in response.content.decode()


def test_the_admin_replaces_a_file_with_a_new_object(admin_client):
    contract = ContractFactory()
    old_name = contract.document.name
    upload = SimpleUploadedFile("v2.pdf", b"%PDF version 2")
    admin_client.post(
        f"/admin/tests/contract/{contract.pk}/change/", {"title": "v2", "document": upload}
    )
    contract.refresh_from_db()
    assert contract.document.name != old_name
    assert oid_of(contract.document.name) in large_object_oids()
