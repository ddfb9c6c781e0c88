"""System checks report a misconfiguration in manage.py check, with a stable id."""

import io
import os
import re
import types
import uuid
from dataclasses import dataclass

import pytest
from django.core.checks import WARNING
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import ProgrammingError, connections
from django.db.utils import ConnectionHandler
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from tests.models import Document, Invoice
from warehouse import checks, driver
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

PASSWORD = "only-for-this-test"


@dataclass
class Roles:
    """A writer and a reader role, each with a connection of its own."""

    writer: str
    reader: str
    connections: ConnectionHandler

    def run(self, alias: str, statement: str, *params: object) -> list[tuple]:
        with self.connections[alias].cursor() as cursor:
            # No parameters, no %-interpolation: the hints' SQL holds format()'s %s.
            cursor.execute(statement, params or None)
            return cursor.fetchall() if cursor.description else []


def superuser_run(statement: str) -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute(statement)


@pytest.fixture
def roles(transactional_db, monkeypatch):
    """Aliases "writer" and "reader" that log in as two new roles, dropped afterwards.

    Roles belong to the whole cluster, not the per-process test database, so
    their names are unique and they are always dropped. They are committed
    (a transactional test): the roles' own connections must see them.
    """
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            pytest.skip("creating roles needs a superuser")
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
    names = {"writer": f"warehouse_writer_{suffix}", "reader": f"warehouse_reader_{suffix}"}
    settings = connections["default"].settings_dict
    handler = ConnectionHandler(
        {
            "default": {**settings},
            **{
                alias: {**settings, "USER": role, "PASSWORD": PASSWORD}
                for alias, role in names.items()
            },
        }
    )
    created = []
    try:
        for role in names.values():
            with connections["default"].cursor() as cursor:
                cursor.execute(f'CREATE ROLE "{role}" LOGIN PASSWORD %s', [PASSWORD])
            created.append(role)
        monkeypatch.setattr(checks, "connections", handler)
        monkeypatch.setattr(driver, "connections", handler)
        with override_settings(WAREHOUSE_DB_FOR_WRITE="writer", WAREHOUSE_DB_FOR_READ="reader"):
            yield Roles(names["writer"], names["reader"], handler)
    finally:
        try:
            handler.close_all()
        finally:
            # One role at a time, the reader first: "DROP OWNED BY writer, reader" fails
            # on PostgreSQL 18 ("could not find tuple for default ACL") when a default
            # privilege of the one names the other.
            for role in reversed(created):
                superuser_run(f'DROP OWNED BY "{role}"')
                superuser_run(f'DROP ROLE "{role}"')


def privilege_warnings(databases=("writer", "reader")) -> list:
    return checks.check_large_object_privileges(databases=list(databases))


def needs_postgresql_18(roles: Roles) -> None:
    if roles.connections["writer"].pg_version < 180000:
        pytest.skip("default privileges for large objects came in PostgreSQL 18")


def test_a_reader_that_cannot_read_the_writers_objects_is_w001(roles):
    [warning] = privilege_warnings()
    assert warning.id == "warehouse.W001"
    assert roles.reader in warning.msg
    assert roles.writer in warning.msg


def test_w001_tells_the_truth(roles):
    [(loid,)] = roles.run("writer", "SELECT lo_from_bytea(0, 'secret')")
    with pytest.raises(ProgrammingError, match="permission denied for large object"):
        roles.run("reader", "SELECT lo_get(%s)", loid)


def test_the_w001_hint_on_postgresql_18_lets_the_reader_read_new_objects(roles):
    needs_postgresql_18(roles)
    [warning] = privilege_warnings()
    [grant] = re.findall(r"ALTER DEFAULT PRIVILEGES [^;]*;", warning.hint)
    assert grant == (
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{roles.writer}" '
        f'GRANT SELECT ON LARGE OBJECTS TO "{roles.reader}";'
    )
    roles.run("writer", grant)
    [(loid,)] = roles.run("writer", "SELECT lo_from_bytea(0, 'shared')")
    assert bytes(roles.run("reader", "SELECT lo_get(%s)", loid)[0][0]) == b"shared"
    assert privilege_warnings() == []


def test_the_w001_hint_grants_the_objects_that_exist_already(roles):
    [(loid,)] = roles.run("writer", "SELECT lo_from_bytea(0, 'older')")
    [warning] = privilege_warnings()
    [grant_existing] = re.findall(r"DO \$\$.*?END\$\$;", warning.hint)
    roles.run("writer", grant_existing)
    assert bytes(roles.run("reader", "SELECT lo_get(%s)", loid)[0][0]) == b"older"


def test_the_w001_hint_before_postgresql_18_offers_grants_and_compat_privileges():
    hint = checks._privileges_hint("writer", "reader", 150000)
    assert "ALTER DEFAULT PRIVILEGES" not in hint
    assert "GRANT SELECT ON LARGE OBJECT %s TO %s', o, '\"reader\"'" in hint
    assert 'ALTER ROLE "reader" SET lo_compat_privileges = on;' in hint


def test_a_default_privilege_granted_to_public_passes(roles):
    needs_postgresql_18(roles)
    roles.run("writer", "ALTER DEFAULT PRIVILEGES GRANT SELECT ON LARGE OBJECTS TO PUBLIC")
    assert privilege_warnings() == []


def test_a_reader_that_is_a_member_of_the_writer_passes(roles):
    superuser_run(f'GRANT "{roles.writer}" TO "{roles.reader}"')
    assert privilege_warnings() == []


def test_a_reader_with_lo_compat_privileges_passes(roles):
    superuser_run(f'ALTER ROLE "{roles.reader}" SET lo_compat_privileges = on')
    assert privilege_warnings() == []


def test_w001_needs_both_aliases_to_be_given(roles):
    assert privilege_warnings(databases=["writer"]) == []
    assert privilege_warnings(databases=["reader"]) == []


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
