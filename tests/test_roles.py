"""A writer role that is no superuser, and a read-only role as WAREHOUSE_DB_FOR_READ.

With the setup README.rst documents (the setting, one GRANT on the
registry table, ``warehouse_grant`` for what existed), saving, reading,
serving and verifying work through the two roles; without it, the check
warns and reads fail as files do (``PermissionError``, a 404), never a 500.
"""

import io
import logging

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from tests.conftest import as_roles, large_object_content
from tests.factories import ContractFactory, UploadFactory
from warehouse import checks
from warehouse.storage import db_file_storage, oid_of

pytestmark = as_roles


class WritesAsTheWriter:
    """The application's rows go where its files go: to the writer's alias."""

    def db_for_write(self, model, **hints):
        return "writer"


@pytest.fixture
def two_roles(roles):
    """Files written as the writer and read as the reader; nothing set up for the reader."""
    with override_settings(
        WAREHOUSE_DB_FOR_WRITE="writer",
        WAREHOUSE_DB_FOR_READ="reader",
        DATABASE_ROUTERS=[WritesAsTheWriter()],
    ):
        yield roles


@pytest.fixture
def documented_setup(two_roles):
    """README.rst's "Read roles": the setting, and SELECT on the registry table."""
    two_roles.run("default", f'GRANT SELECT ON warehouse_storedfile TO "{two_roles.reader}"')
    with override_settings(WAREHOUSE_READ_ROLES=[two_roles.reader]):
        yield two_roles


def saved(content: bytes = b"%PDF-1.7 for the reader\n") -> str:
    return db_file_storage.save("report.pdf", ContentFile(content))


def privilege_warnings() -> list:
    return checks.check_large_object_privileges(databases=["writer", "reader"])


def grant(*args: str) -> tuple[int, str, str]:
    """Run warehouse_grant; return its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("warehouse_grant", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue() + str(exc)
    return 0, out.getvalue(), err.getvalue()


def verify() -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("warehouse_verify", stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


# -- with the documented setup ----------------------------------------------------------


def test_the_writer_owns_what_it_saves_and_is_no_superuser(documented_setup):
    loid = oid_of(saved())
    assert documented_setup.run(
        "default",
        "SELECT r.rolname, r.rolsuper FROM pg_largeobject_metadata m "
        "JOIN pg_roles r ON r.oid = m.lomowner WHERE m.oid = %s",
        loid,
    ) == [(documented_setup.writer, False)]


def test_a_saved_file_is_read_through_the_read_role(documented_setup):
    name = saved(b"read by the reader")
    with db_file_storage.open(name) as file:
        assert file.read() == b"read by the reader"
    assert db_file_storage.size(name) == len(b"read by the reader")
    assert db_file_storage.exists(name)


def test_a_saved_file_is_served_through_the_read_role(documented_setup, client):
    name = saved(b"served to the visitor")
    response = client.get(f"/serve/{name}")
    assert response.status_code == 200
    assert response.content == b"served to the visitor"


@override_settings(FILE_UPLOAD_HANDLERS=["warehouse.uploads.DbFileUploadHandler"])
def test_a_streamed_upload_is_served_through_the_read_role(documented_setup, client):
    response = client.post("/upload", {"file": UploadFactory(content=b"uploaded")})
    assert response.status_code == 200
    assert client.get(f"/serve/{response.content.decode()}").content == b"uploaded"


def test_stored_files_are_verified_through_the_read_role(documented_setup):
    ContractFactory(document__data=b"a contract")
    status, out = verify()
    assert status == 0, out
    assert out.startswith("verified 1 files (10 bytes)")


def test_the_check_is_silent_with_the_documented_setup(documented_setup):
    saved()
    assert privilege_warnings() == []


# -- without it ---------------------------------------------------------------------------


def test_without_the_setup_the_check_warns_and_names_every_grant(two_roles):
    saved()
    [warning] = privilege_warnings()
    assert warning.id == "warehouse.W001"
    assert "WAREHOUSE_READ_ROLES" in warning.hint
    assert f'GRANT SELECT ON "warehouse_storedfile" TO "{two_roles.reader}";' in warning.hint
    assert f"warehouse_grant --role {two_roles.reader}" in warning.hint


def test_without_the_setup_reading_is_a_permission_error(two_roles):
    name = saved()
    with pytest.raises(PermissionError):
        db_file_storage.open(name)
    with pytest.raises(PermissionError, match="warehouse_storedfile"):
        db_file_storage.size(name)
    with pytest.raises(PermissionError, match="warehouse_storedfile"):
        db_file_storage.listdir("")


def test_without_the_setup_serving_is_a_logged_404(two_roles, client, caplog):
    name = saved()
    with caplog.at_level(logging.ERROR, logger="warehouse.views"):
        response = client.get(f"/serve/{name}")
    assert response.status_code == 404
    assert f"may not read {name!r}" in caplog.text


def test_without_the_setup_verify_says_which_table_it_cannot_read(two_roles):
    ContractFactory()
    status, out = verify()
    assert status == 1
    assert "may not read a table that verify reads" in out
    assert "warehouse_storedfile" in out


def test_with_the_registry_readable_an_ungranted_object_is_still_a_404(two_roles, client):
    two_roles.run("default", f'GRANT SELECT ON warehouse_storedfile TO "{two_roles.reader}"')
    name = saved()
    assert client.get(f"/serve/{name}").status_code == 404
    with pytest.raises(PermissionError):
        db_file_storage.open(name)


def test_with_the_registry_readable_an_ungranted_object_is_unreadable_to_verify(two_roles):
    two_roles.run("default", f'GRANT SELECT ON warehouse_storedfile TO "{two_roles.reader}"')
    contract = ContractFactory()
    status, out = verify()
    assert status == 1
    assert f"unreadable: {contract.document.name} " in out


# -- objects saved before the setting ---------------------------------------------------


def test_objects_saved_before_the_setting_stay_unreadable_and_keep_the_check_warning(
    documented_setup,
):
    with override_settings(WAREHOUSE_READ_ROLES=[]):
        name = saved()
    saved()
    with pytest.raises(PermissionError):
        db_file_storage.open(name)
    [warning] = privilege_warnings()
    assert "some of the large objects that exist already" in warning.msg
    assert "WAREHOUSE_READ_ROLES" not in warning.hint


def test_the_grant_command_makes_them_readable_in_batches(documented_setup):
    with override_settings(WAREHOUSE_READ_ROLES=[]):
        names = [saved(f"old {n}".encode()) for n in range(5)]
    status, out, err = grant("--batch-size", "2")
    assert status == 0, err
    assert out == f"granted SELECT on 5 large objects to {documented_setup.reader}\n"
    assert err.splitlines() == [
        "grant: 2 large objects",
        "grant: 4 large objects",
        "grant: 5 large objects",
    ]
    for n, name in enumerate(names):
        with db_file_storage.open(name) as file:
            assert file.read() == f"old {n}".encode()
    assert privilege_warnings() == []


def test_the_grant_command_leaves_what_is_readable_alone(documented_setup):
    saved()
    status, out, _ = grant()
    assert status == 0
    assert out == f"granted SELECT on 0 large objects to {documented_setup.reader}\n"


def test_a_dry_run_of_the_grant_command_only_counts(documented_setup):
    with override_settings(WAREHOUSE_READ_ROLES=[]):
        name = saved()
    status, out, _ = grant("--dry-run")
    assert status == 0
    assert out == f"dry run: would grant SELECT on 1 large objects to {documented_setup.reader}\n"
    with pytest.raises(PermissionError):
        db_file_storage.open(name)


def test_the_grant_command_grants_the_registry_table_where_it_may(two_roles):
    two_roles.run(
        "default", f'GRANT SELECT ON warehouse_storedfile TO "{two_roles.writer}" WITH GRANT OPTION'
    )
    name = saved(b"both")
    status, out, _ = grant("--role", two_roles.reader)
    assert status == 0
    assert f'granted SELECT on "warehouse_storedfile" to {two_roles.reader}' in out
    assert db_file_storage.size(name) == 4
    with db_file_storage.open(name) as file:
        assert file.read() == b"both"


def test_the_grant_command_shows_the_grant_it_may_not_make_and_exits_1(two_roles):
    status, _, err = grant("--role", two_roles.reader)
    assert status == 1
    assert f'GRANT SELECT ON "warehouse_storedfile" TO {two_roles.reader};' in err


def test_the_grant_command_counts_objects_of_other_owners_and_exits_1(
    documented_setup, make_object
):
    loid = make_object(b"the superuser's")
    status, out, err = grant()
    assert status == 1
    assert out == f"granted SELECT on 0 large objects to {documented_setup.reader}\n"
    assert "1 large objects" in err and "belong to other roles" in err
    assert large_object_content(loid) == b"the superuser's"


def test_the_grant_command_refuses_a_role_that_does_not_exist(documented_setup):
    with pytest.raises(CommandError, match="No such role on database 'writer': nobody"):
        call_command("warehouse_grant", "--role", "nobody")


def test_the_grant_command_needs_a_role(two_roles):
    with pytest.raises(CommandError, match="set WAREHOUSE_READ_ROLES, or give --role"):
        call_command("warehouse_grant")
