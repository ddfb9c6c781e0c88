"""DbFileField on a site that does not install the app: no registry, no crash, and a warning."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection
from django.test import override_settings

from tests.conftest import large_object_oids
from tests.factories import DocumentFactory
from tests.models import Document
from warehouse import registry
from warehouse.storage import oid_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def without_the_app():
    """A database the app was never migrated on, and settings that do not install it."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'warehouse'")
        cursor.execute("DROP TABLE warehouse_storedfile")
    installed = [app for app in settings.INSTALLED_APPS if app != "warehouse"]
    with override_settings(INSTALLED_APPS=installed):
        assert not registry.enabled()
        yield


def test_saving_a_file_works(without_the_app):
    document = DocumentFactory()
    assert oid_of(document.file.name) in large_object_oids()


def test_replacing_a_file_unlinks_the_old_one(without_the_app):
    document = DocumentFactory()
    old = oid_of(document.file.name)
    document.file = ContentFile(b"new", name="new.pdf")
    document.save()
    assert large_object_oids() == {oid_of(document.file.name)}
    assert old not in large_object_oids()


def test_deleting_the_row_unlinks_its_file(without_the_app):
    DocumentFactory()
    Document.objects.get().delete()
    assert large_object_oids() == set()


def test_the_field_warns_that_vacuumlo_would_delete_its_files(without_the_app):
    messages = Document._meta.get_field("file").check()
    assert [message.id for message in messages] == ["warehouse.W010"]
    assert "vacuumlo" in messages[0].msg


def test_a_site_that_never_installed_the_app_replaces_and_deletes_files():
    database = {
        key: connection.settings_dict[key]
        for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")
    }
    site = Path(__file__).parent / "appless" / "site.py"
    result = subprocess.run(
        [sys.executable, str(site), json.dumps(database)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
        env={"PYTHONPATH": str(Path(__file__).parent.parent), "PATH": "/usr/bin:/bin"},
    )
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "checks: warehouse.W010",
        "replaced: True",
        "deleted: True",
    ]
