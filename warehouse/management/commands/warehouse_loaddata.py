"""``manage.py warehouse_loaddata``: ``loaddata`` of a warehouse_dumpdata, files and all."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, transaction

from warehouse.conf import alias_for_writing
from warehouse.fixtures import FIXTURE, FixtureFileError, load


class Command(BaseCommand):
    """Store a dump's files as new large objects, then load its fixture pointing at them."""

    help = (
        "Load a directory written by warehouse_dumpdata: store each of its files as a new "
        "large object, check its SHA-256 against DIR/files.json, rewrite the names in "
        "DIR/data.json to the new objects' and loaddata it, all in one transaction: if "
        "anything fails, no row and no object is left. Like loaddata, it adds to what the "
        "database holds; load into empty tables. Exit status: 0 done, 1 a file was missing or "
        "not as dumped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", metavar="DIR", help="What warehouse_dumpdata wrote.")
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="The database to load the rows into (default 'default'); files go to "
            "WAREHOUSE_DB_FOR_WRITE.",
        )

    def handle(self, *args: Any, directory: str, database: str, **options: Any) -> None:
        source = Path(directory)
        try:
            objects = json.loads((source / FIXTURE).read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {source / FIXTURE}: {exc}") from None
        # The objects and the rows commit together, or neither does; on two databases the
        # objects commit first (the inner block), so that a failure between the two commits
        # leaves unreferenced objects, which warehouse_cleanup removes, not rows naming none.
        with transaction.atomic(using=database), transaction.atomic(using=alias_for_writing()):
            try:
                manifest = load(objects, source)
            except FixtureFileError as exc:
                raise CommandError(str(exc), returncode=1) from None
            size = sum(entry["size"] for entry in manifest)
            self.stdout.write(f"stored {len(manifest)} files ({size} bytes) as new large objects")
            with tempfile.TemporaryDirectory() as work:
                fixture = Path(work) / FIXTURE
                fixture.write_text(json.dumps(objects))
                call_command(
                    "loaddata",
                    str(fixture),
                    database=database,
                    verbosity=options["verbosity"],
                    stdout=self.stdout,
                    stderr=self.stderr,
                )
