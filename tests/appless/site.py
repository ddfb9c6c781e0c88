"""A site with DbFileField whose INSTALLED_APPS lack warehouse: replaces and deletes a file.

Run by tests/test_without_the_app.py in a process of its own, since the app
registry of the test run has warehouse installed. Takes the database settings
as JSON; changes the database in a transaction it rolls back, leaving nothing behind.
"""

import json
import sys

import django
from django.conf import settings


class RollbackError(Exception):
    """Raised to roll back all the site did."""


def main(database: dict) -> None:
    settings.configure(
        DATABASES={"default": database},
        INSTALLED_APPS=["django.contrib.contenttypes", "tests.appless"],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
    from django.core import checks
    from django.core.files.base import ContentFile
    from django.db import connection, transaction

    from tests.appless.models import Scan

    print("checks:", ",".join(message.id for message in checks.run_checks()))
    storage = Scan._meta.get_field("file").storage
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # What a database the app was never installed on has, and has not.
                cursor.execute("DELETE FROM django_migrations WHERE app <> 'contenttypes'")
                cursor.execute("DROP TABLE warehouse_storedfile")
            with connection.schema_editor() as editor:
                editor.create_model(Scan)
            scan = Scan.objects.create(file=ContentFile(b"old", name="old.pdf"))
            old = scan.file.name
            scan.file = ContentFile(b"new", name="new.pdf")
            scan.save()
            print("replaced:", not storage.exists(old) and storage.exists(scan.file.name))
            scan.delete()
            print("deleted:", not storage.exists(scan.file.name))
            raise RollbackError
    except RollbackError:
        pass


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
