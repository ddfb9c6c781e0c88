"""New large objects are granted to WAREHOUSE_READ_ROLES in the transaction that creates them."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.test import override_settings

from tests.conftest import large_object_oids
from warehouse.io import DbFileIO
from warehouse.storage import db_file_storage, oid_of

pytestmark = pytest.mark.django_db

# A name that needs quoting three ways: case, a space and a quote, and a '%'.
ODD_ROLE = 'Warehouse "Odd" Reader 100%'


@pytest.fixture
def odd_role():
    """A role with an odd name, made in the test's transaction (and gone with it)."""
    with connection.cursor() as cursor:
        cursor.execute('CREATE ROLE "Warehouse ""Odd"" Reader 100%"')
    return ODD_ROLE


def readers(loid: int) -> set[str]:
    """The roles granted SELECT on an object, from its ACL."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.rolname FROM pg_largeobject_metadata m, aclexplode(m.lomacl) a "
            "JOIN pg_roles r ON r.oid = a.grantee "
            "WHERE m.oid = %s AND a.privilege_type = 'SELECT'",
            [loid],
        )
        return {role for (role,) in cursor.fetchall()}


def test_a_saved_file_is_granted_to_the_read_roles_by_their_exact_names(odd_role):
    with override_settings(WAREHOUSE_READ_ROLES=[odd_role]):
        name = db_file_storage.save("a.pdf", ContentFile(b"granted"))
    assert odd_role in readers(oid_of(name))


def test_an_object_made_by_dbfileio_is_granted_too(odd_role):
    with override_settings(WAREHOUSE_READ_ROLES=[odd_role]), DbFileIO(0, "wb") as file:
        file.write(b"granted")
    assert odd_role in readers(file.loid)


def test_writing_an_existing_object_grants_nothing_again(odd_role):
    name = db_file_storage.save("a.pdf", ContentFile(b"not granted"))
    with override_settings(WAREHOUSE_READ_ROLES=[odd_role]), DbFileIO(oid_of(name), "wb") as file:
        file.write(b"rewritten")
    assert readers(oid_of(name)) == set()


def test_without_read_roles_an_object_keeps_its_owners_default_privileges():
    name = db_file_storage.save("a.pdf", ContentFile(b"private"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT lomacl FROM pg_largeobject_metadata WHERE oid = %s", [oid_of(name)])
        assert cursor.fetchone() == (None,)


@pytest.mark.django_db(transaction=True)
@override_settings(WAREHOUSE_READ_ROLES=["warehouse_nobody"])
def test_a_read_role_that_does_not_exist_fails_the_save_and_leaves_nothing():
    before = large_object_oids()
    with pytest.raises(ImproperlyConfigured, match='role "warehouse_nobody" does not exist'):
        db_file_storage.save("a.pdf", ContentFile(b"lost?"))
    assert large_object_oids() == before


@pytest.mark.django_db(transaction=True)
@override_settings(WAREHOUSE_READ_ROLES=["warehouse_nobody"])
def test_in_the_callers_transaction_a_failed_grant_rolls_back_to_before_the_save():
    before = large_object_oids()
    with transaction.atomic():
        with pytest.raises(ImproperlyConfigured):
            db_file_storage.save("a.pdf", ContentFile(b"lost?"))
        # The save's savepoint took the failure: the caller's transaction goes on.
        assert large_object_oids() == before
    assert large_object_oids() == before


@pytest.mark.django_db
@override_settings(WAREHOUSE_READ_ROLES="reader")
def test_read_roles_that_are_not_a_list_fail_the_save_before_anything_is_kept():
    before = large_object_oids()
    with pytest.raises(ImproperlyConfigured, match="must be a list of role names"):
        db_file_storage.save("a.pdf", ContentFile(b"lost?"))
    assert large_object_oids() == before
