"""``manage.py warehouse_dumpdata``: ``dumpdata`` with the bytes of the files its rows name."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from warehouse import registry
from warehouse.connections import kept_open
from warehouse.fixtures import FIXTURE, FixtureFileError, dump


class Command(BaseCommand):
    """Dump a fixture and the stored files its rows name into a directory."""

    help = (
        "Run dumpdata (JSON) into DIR/data.json and copy every stored file its rows name, "
        "large objects and files of a previous storage alike, into DIR/files/, listed with "
        "their size and SHA-256 in DIR/files.json. Load it with warehouse_loaddata: plain "
        "loaddata would restore names whose large objects are not there. The registry "
        "(StoredFile) is never dumped. Exit status: 0 done, 1 a file could not be read "
        "(then nothing is written)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "args", metavar="app_label[.ModelName]", nargs="*", help="What to dump, as dumpdata."
        )
        parser.add_argument(
            "-o", "--output", required=True, metavar="DIR", help="A directory to create."
        )
        parser.add_argument(
            "-e",
            "--exclude",
            action="append",
            default=[],
            help="An app_label or app_label.ModelName to leave out, as dumpdata (repeatable).",
        )
        parser.add_argument("--natural-foreign", action="store_true", help="As dumpdata.")
        parser.add_argument("--natural-primary", action="store_true", help="As dumpdata.")

    @kept_open()  # a connection per file read would be slow with CONN_MAX_AGE = 0
    def handle(self, *labels: str, **options: Any) -> None:
        output = Path(options["output"])
        if output.exists() and (not output.is_dir() or any(output.iterdir())):
            raise CommandError(f"{output} exists and is not an empty directory.")
        output.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and moved in place once whole: an output is never half a dump.
        work = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
        try:
            call_command(
                "dumpdata",
                *labels,
                format="json",
                output=str(work / FIXTURE),
                exclude=[*options["exclude"], *_registry_model()],
                use_natural_foreign_keys=options["natural_foreign"],
                use_natural_primary_keys=options["natural_primary"],
                verbosity=0,
            )
            objects = json.loads((work / FIXTURE).read_text())
            try:
                manifest = dump(objects, work)
            except FixtureFileError as exc:
                raise CommandError(str(exc), returncode=1) from None
            if output.exists():
                output.rmdir()
            work.rename(output)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        size = sum(entry["size"] for entry in manifest)
        self.stdout.write(
            f"dumped {len(objects)} objects and {len(manifest)} files ({size} bytes) to {output}"
        )


def _registry_model() -> list[str]:
    """The registry's model, under the label the app is installed with: never dumped.

    Its rows are made anew, for the new objects, by whatever loads the files.
    """
    return [f"{registry.app_label()}.StoredFile"] if registry.enabled() else []
