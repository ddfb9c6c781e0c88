"""A site that installed warehouse-py from the wheel: stores, reads and deletes one file.

Run by tests/test_packaging.py with the python of a throwaway virtualenv, from
a directory of its own, so that it imports the installed package and no
checkout. Takes the database settings as JSON; prints which distribution
provides psycopg2 and what it read back.
"""

import json
import sys
from importlib.metadata import packages_distributions

import django
from django.conf import settings


def main(database: dict) -> None:
    settings.configure(
        DATABASES={"default": database},
        INSTALLED_APPS=["django.contrib.contenttypes"],
        USE_TZ=True,
    )
    django.setup()
    from django.core.files.base import ContentFile

    import warehouse
    from warehouse.storage import DbFileStorage

    assert "site-packages" in warehouse.__file__, warehouse.__file__
    print("psycopg2 from:", ",".join(packages_distributions()["psycopg2"]))
    storage = DbFileStorage()
    name = storage.save("hello.txt", ContentFile(b"hello"))
    with storage.open(name) as file:
        print("read:", file.read().decode())
    storage.delete(name)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
