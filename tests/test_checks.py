"""System checks report a misconfiguration in manage.py check, with a stable id."""

import types

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db.utils import ConnectionHandler
from django.test import override_settings

from warehouse import checks


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


def test_a_database_that_is_not_postgresql_is_e003(monkeypatch):
    sqlite = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    )
    monkeypatch.setattr(checks, "connections", sqlite)
    assert error_ids() == ["warehouse.E003"]


def test_postgresql_through_psycopg3_is_e004_with_the_fix(monkeypatch):
    handler = ConnectionHandler({"default": {"ENGINE": "django.db.backends.postgresql"}})
    # Django picks its driver at import; this wrapper stands where psycopg 3 was picked.
    monkeypatch.setattr(handler["default"], "Database", types.ModuleType("psycopg"))
    monkeypatch.setattr(checks, "connections", handler)
    [error] = checks.check_databases()
    assert error.id == "warehouse.E004"
    assert "pip uninstall psycopg" in error.hint
