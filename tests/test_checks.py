"""System checks report a misconfiguration in manage.py check, with a stable id."""

import io
import re
import shlex
import types

import pytest
from django.core.checks import WARNING
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import ProgrammingError, connections
from django.db.utils import ConnectionHandler
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from tests.conftest import Roles, as_roles
from tests.models import Document, Invoice
from warehouse import checks, driver
from warehouse.grants import Missing
from warehouse.objects import database_connection


def error_ids() -> list[str]:
    return [message.id for message in checks.check_databases()]


def test_the_test_settings_pass():
    assert error_ids() == []


@override_settings(WAREHOUSE_DB_FOR_READ="nowhere")
def test_an_unknown_read_alias_is_e002():
    assert error_ids() == ["warehouse.E002"]


@override_settings(WAREHOUSE_DB_FOR_WRITE="nowhere")
def test_an_unknown_write_alias_is_e002():
    assert error_ids() == ["warehouse.E002"]


@override_settings(WAREHOUSE_DB_FOR_READ=None)
def test_an_alias_that_is_not_a_string_is_e001():
    assert error_ids() == ["warehouse.E001"]


@override_settings(WAREHOUSE_DB_FOR_READ="nowhere")
def test_manage_py_check_fails_on_it():
    with pytest.raises(SystemCheckError, match=r"warehouse\.E002"):
        call_command("check")


def driver_warnings(handler: ConnectionHandler, monkeypatch, databases=("default",)) -> list:
    monkeypatch.setattr(driver, "connections", handler)
    return checks.check_database_drivers(databases=databases)


def sqlite() -> ConnectionHandler:
    return ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    )


def test_a_database_that_is_not_postgresql_is_w003(monkeypatch):
    [warning] = driver_warnings(sqlite(), monkeypatch)
    assert (warning.id, warning.level) == ("warehouse.W003", WARNING)
    assert "sqlite" in warning.msg


def test_postgresql_through_psycopg3_is_w004_with_the_fix(monkeypatch):
    handler = ConnectionHandler({"default": {"ENGINE": "django.db.backends.postgresql"}})
    # Django picks its driver at import; this module stands where psycopg 3 was picked.
    monkeypatch.setattr(handler["default"], "Database", types.ModuleType("psycopg"))
    [warning] = driver_warnings(handler, monkeypatch)
    assert (warning.id, warning.level) == ("warehouse.W004", WARNING)
    assert "pip uninstall psycopg" in warning.hint


def test_the_driver_check_looks_only_at_the_aliases_django_names(monkeypatch):
    assert driver_warnings(sqlite(), monkeypatch, databases=None) == []
    assert driver_warnings(sqlite(), monkeypatch, databases=["replica"]) == []


def test_plain_manage_py_check_does_not_look_at_the_driver(monkeypatch):
    monkeypatch.setattr(driver, "connections", sqlite())
    err = io.StringIO()
    call_command("check", stdout=io.StringIO(), stderr=err)
    assert "warehouse.W003" not in err.getvalue()


def test_check_database_reports_a_database_that_is_not_postgresql(monkeypatch):
    monkeypatch.setattr(driver, "connections", sqlite())
    err = io.StringIO()
    call_command("check", databases=["default"], stdout=io.StringIO(), stderr=err)
    assert "warehouse.W003" in err.getvalue()


def test_a_file_operation_on_a_database_that_is_not_postgresql_says_why(monkeypatch):
    monkeypatch.setattr(driver, "connections", sqlite())
    with pytest.raises(ImproperlyConfigured, match=r"'default', which is sqlite.*ENGINE"):
        database_connection("default")


# -- warehouse.W002: the registry's migrations -----------------------------------


def unapply_registry_migration() -> None:
    """Forget that warehouse's migration ran; the test's transaction brings the row back."""
    with connections["default"].cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'warehouse'")


@pytest.mark.django_db
def test_an_applied_registry_migration_passes():
    assert checks.check_registry_migrated(databases=["default"]) == []


@pytest.mark.django_db
def test_an_unapplied_registry_migration_is_w002_with_the_fix():
    unapply_registry_migration()
    [warning] = checks.check_registry_migrated(databases=["default"])
    assert warning.id == "warehouse.W002"
    assert "0001_initial" in warning.msg
    assert warning.hint == "Run 'manage.py migrate warehouse --database default'."


@pytest.mark.django_db
def test_the_migration_check_touches_no_database_unless_given_one(django_assert_num_queries):
    unapply_registry_migration()
    with django_assert_num_queries(0):
        assert checks.check_registry_migrated(databases=None) == []


@pytest.mark.django_db
def test_plain_manage_py_check_leaves_the_database_alone():
    unapply_registry_migration()
    err = io.StringIO()
    call_command("check", stdout=io.StringIO(), stderr=err)
    assert "warehouse.W002" not in err.getvalue()


@pytest.mark.django_db
def test_check_database_shows_w002():
    unapply_registry_migration()
    err = io.StringIO()
    call_command("check", databases=["default"], stdout=io.StringIO(), stderr=err)
    assert "warehouse.W002" in err.getvalue()


@pytest.mark.django_db
def test_migrate_applies_the_registry_migration_without_showing_w002():
    unapply_registry_migration()
    err = io.StringIO()
    # --fake: the table is there already; only the record of it was removed.
    call_command(
        "migrate", "warehouse", fake=True, skip_checks=False, stdout=io.StringIO(), stderr=err
    )
    assert "warehouse.W002" not in err.getvalue()
    assert checks.check_registry_migrated(databases=["default"]) == []


# -- warehouse.W001: the reader's privileges on the writer's objects ----------------


@pytest.fixture
def split(roles):
    """Files written as the writer and read as the reader, who may read nothing of them."""
    with override_settings(WAREHOUSE_DB_FOR_WRITE="writer", WAREHOUSE_DB_FOR_READ="reader"):
        yield roles


def privilege_warnings(databases=("writer", "reader")) -> list:
    return checks.check_large_object_privileges(databases=list(databases))


def grant_the_registry(roles: Roles) -> None:
    roles.run("default", f'GRANT SELECT ON warehouse_storedfile TO "{roles.reader}"')


def needs_postgresql_18(roles: Roles) -> None:
    if connections["writer"].pg_version < 180000:
        pytest.skip("default privileges for large objects came in PostgreSQL 18")


@as_roles
def test_a_reader_that_cannot_read_the_writers_objects_is_w001(split):
    [warning] = privilege_warnings()
    assert warning.id == "warehouse.W001"
    assert split.reader in warning.msg
    assert split.writer in warning.msg


@as_roles
def test_w001_tells_the_truth(split):
    [(loid,)] = split.run("writer", "SELECT lo_from_bytea(0, 'secret')")
    with pytest.raises(ProgrammingError, match="permission denied for large object"):
        split.run("reader", "SELECT lo_get(%s)", loid)


@as_roles
def test_w001_names_the_registry_table_the_reader_cannot_read(split):
    split.run("default", f'GRANT "{split.writer}" TO "{split.reader}"')
    split.run("default", f'REVOKE SELECT ON warehouse_storedfile FROM "{split.writer}"')
    [warning] = privilege_warnings()
    assert warning.msg.endswith('cannot read the registry table "warehouse_storedfile".')
    assert warning.hint.startswith(
        f'GRANT SELECT ON "warehouse_storedfile" TO "{split.reader}"; (as the table\'s owner)'
    )


@as_roles
def test_w001_is_silent_once_the_setting_names_the_reader(split):
    grant_the_registry(split)
    with override_settings(WAREHOUSE_READ_ROLES=[split.reader]):
        assert privilege_warnings() == []


@as_roles
def test_w001_is_silent_once_the_setting_names_a_role_the_reader_is_member_of(split):
    grant_the_registry(split)
    group = f"{split.reader}_group"
    split.run("default", f'CREATE ROLE "{group}"; GRANT "{group}" TO "{split.reader}"')
    try:
        with override_settings(WAREHOUSE_READ_ROLES=[group]):
            assert privilege_warnings() == []
    finally:
        split.run("default", f'DROP ROLE "{group}"')


@as_roles
def test_w001_still_warns_when_the_setting_names_another_role(split):
    grant_the_registry(split)
    with override_settings(WAREHOUSE_READ_ROLES=[split.writer]):
        [warning] = privilege_warnings()
    assert "WAREHOUSE_READ_ROLES" in warning.hint


@as_roles
def test_the_w001_hint_on_postgresql_18_lets_the_reader_read_new_objects(split):
    needs_postgresql_18(split)
    grant_the_registry(split)
    [warning] = privilege_warnings()
    [grant] = re.findall(r"ALTER DEFAULT PRIVILEGES [^;]*;", warning.hint)
    assert grant == (
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{split.writer}" '
        f'GRANT SELECT ON LARGE OBJECTS TO "{split.reader}";'
    )
    split.run("writer", grant)
    [(loid,)] = split.run("writer", "SELECT lo_from_bytea(0, 'shared')")
    assert bytes(split.run("reader", "SELECT lo_get(%s)", loid)[0][0]) == b"shared"
    assert privilege_warnings() == []


@as_roles
def test_the_w001_hint_grants_the_objects_that_exist_already(split):
    grant_the_registry(split)
    [(loid,)] = split.run("writer", "SELECT lo_from_bytea(0, 'older')")
    with override_settings(WAREHOUSE_READ_ROLES=[split.reader]):
        [warning] = privilege_warnings()
    assert warning.msg.endswith("cannot read some of the large objects that exist already.")
    [command] = re.findall(r"'manage.py (warehouse_grant [^']*)'", warning.hint)
    call_command(*shlex.split(command), stdout=io.StringIO(), stderr=io.StringIO())
    assert bytes(split.run("reader", "SELECT lo_get(%s)", loid)[0][0]) == b"older"
    with override_settings(WAREHOUSE_READ_ROLES=[split.reader]):
        assert privilege_warnings() == []


def test_the_w001_hint_before_postgresql_18_offers_the_setting_and_the_grants():
    missing = Missing("reader", "writer", True, existing_objects=True, table='"registry"')
    hint = checks._privileges_hint(missing, 150000)
    assert "ALTER DEFAULT PRIVILEGES" not in hint
    assert "Add 'reader' to WAREHOUSE_READ_ROLES" in hint
    assert 'GRANT SELECT ON "registry" TO "reader";' in hint
    assert "'manage.py warehouse_grant --role reader'" in hint


@as_roles
def test_a_default_privilege_granted_to_public_passes(split):
    needs_postgresql_18(split)
    grant_the_registry(split)
    split.run("writer", "ALTER DEFAULT PRIVILEGES GRANT SELECT ON LARGE OBJECTS TO PUBLIC")
    assert privilege_warnings() == []


@as_roles
def test_a_reader_that_is_a_member_of_the_writer_passes(split):
    split.run("default", f'GRANT "{split.writer}" TO "{split.reader}"')
    assert privilege_warnings() == []


@as_roles
def test_a_reader_with_lo_compat_privileges_passes(split):
    grant_the_registry(split)
    split.run("default", f'ALTER ROLE "{split.reader}" SET lo_compat_privileges = on')
    assert privilege_warnings() == []


@as_roles
def test_w001_needs_both_aliases_to_be_given(split):
    assert privilege_warnings(databases=["writer"]) == []
    assert privilege_warnings(databases=["reader"]) == []


# -- WAREHOUSE_READ_ROLES ----------------------------------------------------------------


@override_settings(WAREHOUSE_READ_ROLES="reader")
def test_read_roles_that_are_not_a_list_are_e006():
    [error] = checks.check_read_roles()
    assert error.id == "warehouse.E006"


@pytest.mark.django_db
@override_settings(WAREHOUSE_READ_ROLES=["warehouse_nobody", "Warehouse_Nobody"])
def test_read_roles_that_do_not_exist_are_w005_with_the_write_alias():
    assert checks.check_large_object_privileges(databases=None) == []
    [warning] = checks.check_large_object_privileges(databases=["default"])
    assert warning.id == "warehouse.W005"
    assert "warehouse_nobody, Warehouse_Nobody" in warning.msg


@pytest.mark.django_db(databases=["default", "replica"])
@override_settings(WAREHOUSE_DB_FOR_READ="replica")
def test_aliases_that_log_in_alike_are_not_queried():
    with (
        CaptureQueriesContext(connections["default"]) as on_default,
        CaptureQueriesContext(connections["replica"]) as on_replica,
    ):
        assert checks.check_large_object_privileges(databases=["default", "replica"]) == []
    assert len(on_default) == len(on_replica) == 0


# -- file fields --------------------------------------------------------------------------


class RouteDocumentsElsewhere:
    def db_for_write(self, model, **hints):
        return "read_alias" if model is Document else None


def field_check_ids(model, name: str) -> list[str]:
    return [message.id for message in model._meta.get_field(name).check(databases=["default"])]


def index_warnings(databases=("default",)) -> list[tuple[str, str]]:
    messages = checks.check_file_field_indexes(databases=list(databases))
    return [
        (message.id, f"{message.obj.model._meta.label}.{message.obj.name}") for message in messages
    ]


@pytest.mark.django_db
def test_an_indexed_file_field_of_a_model_on_the_write_database_passes():
    assert field_check_ids(Document, "file") == []
    assert ("warehouse.W012", "tests.Document.file") not in index_warnings()


@pytest.mark.django_db
def test_a_file_field_without_an_index_for_name_prefixes_is_w012_with_the_fix():
    assert ("warehouse.W012", "tests.Invoice.data") in index_warnings()
    (message,) = [
        m for m in checks.check_file_field_indexes(databases=["default"]) if m.obj.name == "data"
    ]
    assert "db_index=True" in message.hint
    assert 'CREATE INDEX ON "tests_invoice" ("data" varchar_pattern_ops);' in message.hint


@pytest.mark.django_db
def test_the_index_check_touches_no_database_unless_given_one(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert index_warnings(databases=()) == []


@pytest.mark.django_db
def test_the_field_checks_touch_no_database_even_given_every_alias(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert field_check_ids(Invoice, "data") == []


@pytest.mark.django_db
@override_settings(DATABASE_ROUTERS=[RouteDocumentsElsewhere()])
def test_a_model_routed_away_from_the_write_database_is_w011():
    assert field_check_ids(Document, "file") == ["warehouse.W011"]


@pytest.mark.django_db
def test_a_plain_file_field_on_the_storage_is_checked_too():
    with override_settings(DATABASE_ROUTERS=[RouteDocumentsElsewhere()]):
        ids = [message.id for message in checks.check_file_fields()]
    assert ids == []  # Document's fields are DbFileFields, which check themselves
    with override_settings(WAREHOUSE_DB_FOR_WRITE="read_alias"):
        messages = checks.check_file_fields()
    assert [(m.id, m.obj.name) for m in messages] == [("warehouse.W011", "or_just_so")]
