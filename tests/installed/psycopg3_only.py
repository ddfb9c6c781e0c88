"""A site with psycopg 3 only that installed warehouse-py: it starts, and says what to do.

Run by tests/test_packaging.py with the python of a throwaway virtualenv
holding Django, psycopg 3 and warehouse-py, and no psycopg2. Takes the
database settings as JSON; prints the driver check's warnings and why saving
a file fails.
"""

import json
import sys

import django
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def main(database: dict) -> None:
    settings.configure(
        DATABASES={"default": database},
        INSTALLED_APPS=["django.contrib.contenttypes", "warehouse"],
        USE_TZ=True,
    )
    django.setup()
    from django.core.files.base import ContentFile

    from warehouse.checks import check_database_drivers
    from warehouse.storage import DbFileStorage

    for warning in check_database_drivers(databases=["default"]):
        print(f"{warning.id}: {warning.hint}")
    try:
        DbFileStorage().save("hello.txt", ContentFile(b"hello"))
    except ImproperlyConfigured as exc:
        print(f"saving: {exc}")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
