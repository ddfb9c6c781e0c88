"""A site with warehouse installed as "files": migrates it, saves, replaces and deletes a file.

Run by tests/test_relabelled_app.py in a process of its own, since the app
registry of the test run has warehouse under its own label. Takes the
database settings as JSON; does everything in a transaction it rolls back,
leaving nothing behind.
"""

import io
import json
import sys

import django
from django.conf import settings


class RollbackError(Exception):
    """Raised to roll back all the site did."""


def main(database: dict) -> None:
    settings.configure(
        DATABASES={"default": database},
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "tests.relabelled.files.FilesConfig",
            "tests.relabelled",
        ],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
    from django.core.files.base import ContentFile
    from django.core.management import call_command
    from django.db import connection, transaction

    from tests.relabelled.models import Contract
    from warehouse.models import StoredFile
    from warehouse.storage import oid_of

    storage = Contract._meta.get_field("scan").storage
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # A database warehouse was never migrated on, under any label, and
                # where no app of the test run's but contenttypes was.
                cursor.execute("DROP TABLE warehouse_storedfile")
                cursor.execute("DELETE FROM django_migrations WHERE app <> 'contenttypes'")
            err = io.StringIO()
            call_command("migrate", "files", stdout=io.StringIO(), stderr=err)
            print("migrated:", StoredFile._meta.db_table, err.getvalue() == "")
            with connection.schema_editor() as editor:
                editor.create_model(Contract)
            contract = Contract.objects.create(scan=ContentFile(b"old", name="old.pdf"))
            old = contract.scan.name
            print("registered:", StoredFile.objects.filter(oid=oid_of(old)).exists())
            contract.scan = ContentFile(b"new", name="new.pdf")
            contract.save()
            print("replaced:", not storage.exists(old) and storage.exists(contract.scan.name))
            contract.delete()
            print("deleted:", not storage.exists(contract.scan.name))
            raise RollbackError
    except RollbackError:
        pass


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
