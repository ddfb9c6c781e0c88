"""warehouse_import and warehouse_export: moving a field's files in and out of large objects."""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from tests.conftest import large_object_content, large_object_oids, role_that_may_not_read
from tests.factories import (
    ContractFactory,
    InvoiceFactory,
    ReceiptFactory,
    ReceiptOnDiskFactory,
)
from tests.models import Contract, Document, Receipt
from warehouse import registry
from warehouse.io import CHUNK_SIZE
from warehouse.names import is_large_object_name
from warehouse.storage import db_file_storage, extension_of, oid_of

# Commits are the point: each row is moved in a transaction of its own.
pytestmark = pytest.mark.django_db(transaction=True)
# A second connection changes rows while a command runs, as another process would.
concurrently = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

SIZES = {  # bytes, from nothing to more than one chunk
    "empty.txt": 0,
    "note.txt": 1,
    "report.pdf": 4096,
    "2024/scan.png": CHUNK_SIZE + 17,
    "archive.tar.gz": 2 * CHUNK_SIZE + 5,
}
TOTAL = sum(SIZES.values())
CHANGED = "changed-meanwhile.pdf"
CONTESTED = "contested.pdf"


@dataclass
class Run:
    """What a command printed and the status it would exit with."""

    stdout: str
    stderr: str
    returncode: int

    @property
    def summary(self) -> str:
        return self.stdout.splitlines()[-1]


class TerminalIO(io.StringIO):
    """Output that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class ContestedSourceStorage(FileSystemStorage):
    """Files in MEDIA_ROOT; another process repoints the contested row while its file is read."""

    def _open(self, name, mode="rb"):
        if name == CONTESTED:
            Contract.objects.using("replica").filter(document=name).update(document=CHANGED)
        return super()._open(name, mode)


class ContestedTargetStorage(FileSystemStorage):
    """Files in MEDIA_ROOT; another process repoints the contested row while its file is written."""

    def _save(self, name, content):
        saved = super()._save(name, content)
        Contract.objects.using("replica").filter(title=CONTESTED).update(document=CHANGED)
        return saved


class WitnessStorage(FileSystemStorage):
    """Files in MEDIA_ROOT; on deleting one, notes what another process sees its row hold."""

    seen: dict[str, str] = {}

    def delete(self, name):
        self.seen[name] = Contract.objects.using("replica").get(title=name).document.name
        super().delete(name)


def run(*args: str, stderr: io.StringIO | None = None) -> Run:
    """Call a command; a CommandError becomes its exit status, as manage.py would make it."""
    stdout, stderr = io.StringIO(), stderr or io.StringIO()
    try:
        call_command(*args, stdout=stdout, stderr=stderr)
    except CommandError as error:
        stderr.write(f"CommandError: {error}\n")
        returncode = error.returncode
    else:
        returncode = 0
    return Run(stdout.getvalue(), stderr.getvalue(), returncode)


def import_from(directory: Path, *options: str, stderr: io.StringIO | None = None) -> Run:
    field, location = "tests.Contract.document", str(directory)
    return run("warehouse_import", field, "--from-location", location, *options, stderr=stderr)


def export_to(directory: Path, *options: str) -> Run:
    field, location = "tests.Contract.document", str(directory)
    return run("warehouse_export", field, "--to-location", location, *options)


def import_contested(*options: str) -> Run:
    source = f"{__name__}.{ContestedSourceStorage.__name__}"
    return run("warehouse_import", "tests.Contract.document", "--from", source, *options)


def documents() -> dict[str, str]:
    """Each contract's document name, by title (the name the file had before the import)."""
    return dict(Contract.objects.values_list("title", "document"))


@pytest.fixture
def contents() -> dict[str, bytes]:
    return {name: os.urandom(size) for name, size in SIZES.items()}


@pytest.fixture
def source(tmp_path: Path, contents: dict[str, bytes]) -> Path:
    """A directory of files, and a contract pointing at each (titled with its name)."""
    directory = tmp_path / "source"
    for name, content in contents.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(content)
        ContractFactory(title=name, document=name)
    return directory


@pytest.fixture
def imported(source: Path) -> dict[str, str]:
    """The contracts' documents moved into large objects."""
    assert import_from(source).returncode == 0
    return documents()


@pytest.fixture
def media_root(tmp_path: Path, settings) -> Path:
    """An empty MEDIA_ROOT, where a storage class instantiated without arguments keeps files."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    Path(settings.MEDIA_ROOT).mkdir()
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def contested(media_root: Path) -> Path:
    """A file in MEDIA_ROOT, and a contract pointing at it that changes while it is imported."""
    (media_root / CONTESTED).write_bytes(b"contested")
    ContractFactory(title=CONTESTED, document=CONTESTED)
    return media_root


# -- import -----------------------------------------------------------------------------


def test_import_renames_each_row_after_its_large_object_and_extension(source):
    import_from(source)
    for original, name in documents().items():
        assert name == f"{oid_of(name)}{extension_of(original)}"


def test_import_stores_every_byte_of_every_file(source, contents):
    import_from(source)
    for original, name in documents().items():
        assert large_object_content(oid_of(name)) == contents[original]


def test_import_registers_each_object_under_its_original_name_folder_and_all(source):
    import_from(source)
    for original, name in documents().items():
        assert registry.lookup(oid_of(name), "default").name == original


def test_import_sums_up_on_stdout_and_exits_with_0(source):
    result = import_from(source)
    assert result.returncode == 0
    assert result.summary == (
        f"imported 5 files ({TOTAL} bytes), skipped 0 already in large objects, 0 errors"
    )


def test_import_keeps_the_source_files_by_default(source, contents):
    import_from(source)
    assert all((source / name).read_bytes() == content for name, content in contents.items())


def test_rows_without_a_file_are_neither_imported_nor_counted(source):
    ContractFactory(title="nothing", document="")
    result = import_from(source)
    assert documents()["nothing"] == ""
    assert result.summary.startswith("imported 5 files")
    assert "skipped 0 " in result.summary


def test_a_second_import_changes_nothing_and_says_so(source, imported):
    objects = large_object_oids()
    result = import_from(source)
    assert documents() == imported
    assert large_object_oids() == objects
    assert (
        result.summary == "imported 0 files (0 bytes), skipped 5 already in large objects, 0 errors"
    )


def test_a_missing_source_file_fails_its_row_and_exits_with_1(source):
    (source / "report.pdf").unlink()
    result = import_from(source)
    assert result.returncode == 1
    assert "'report.pdf'" in result.stderr
    assert documents()["report.pdf"] == "report.pdf"
    assert result.summary.endswith(", 1 error")


def test_a_missing_source_file_does_not_stop_the_other_rows(source):
    (source / "report.pdf").unlink()
    import_from(source)
    imported = {title for title, name in documents().items() if name != title}
    assert imported == set(SIZES) - {"report.pdf"}


def test_an_interrupted_import_completes_when_run_again(source):
    (source / "report.pdf").rename(source / "away")
    import_from(source)
    (source / "away").rename(source / "report.pdf")
    result = import_from(source)
    assert result.returncode == 0
    assert result.summary == (
        "imported 1 file (4096 bytes), skipped 4 already in large objects, 0 errors"
    )
    assert all(name != title for title, name in documents().items())


def test_a_dry_run_creates_no_large_objects(source):
    objects = large_object_oids()
    import_from(source, "--dry-run")
    assert large_object_oids() == objects


def test_a_dry_run_leaves_the_rows_alone(source):
    import_from(source, "--dry-run")
    assert all(name == title for title, name in documents().items())


def test_a_dry_run_lists_each_file_it_would_import_with_its_size(source):
    result = import_from(source, "--dry-run")
    assert f"would import 2024/scan.png ({CHUNK_SIZE + 17} bytes)" in result.stdout.splitlines()
    assert result.summary == (
        f"would import 5 files ({TOTAL} bytes), skipped 0 already in large objects, 0 errors"
    )


def test_delete_source_removes_the_files_of_imported_rows(source):
    import_from(source, "--delete-source")
    assert not [path for path in source.rglob("*") if path.is_file()]


def test_delete_source_keeps_a_file_until_the_last_row_holding_it_is_imported(source):
    ContractFactory(title="copy", document="report.pdf")
    result = import_from(source, "--delete-source")
    assert result.returncode == 0
    assert documents()["copy"] != documents()["report.pdf"]
    assert not (source / "report.pdf").exists()


def test_delete_source_keeps_a_file_another_field_still_names(source):
    Document.objects.create(title="not imported yet")
    Document.objects.update(attachment="report.pdf")  # as a legacy storage named it
    result = import_from(source, "--delete-source", "-v", "2")
    assert result.returncode == 0
    assert (source / "report.pdf").exists()
    assert (
        "kept report.pdf in the source: tests.Document.attachment still names it" in result.stderr
    )
    assert not (source / "note.txt").exists()


@concurrently
def test_a_row_changed_during_import_keeps_the_other_writers_name(contested):
    result = import_contested()
    assert result.returncode == 1
    assert documents()[CONTESTED] == CHANGED


@concurrently
def test_a_row_changed_during_import_leaves_no_large_object(contested):
    objects = large_object_oids()
    import_contested()
    assert large_object_oids() == objects


@concurrently
def test_delete_source_keeps_the_file_of_a_row_that_did_not_commit(contested):
    import_contested("--delete-source")
    assert (contested / CONTESTED).exists()


@concurrently
def test_delete_source_deletes_a_file_only_once_its_rows_new_name_is_committed(
    media_root, monkeypatch
):
    monkeypatch.setattr(WitnessStorage, "seen", {})
    (media_root / "plain.pdf").write_bytes(b"plain")
    ContractFactory(title="plain.pdf", document="plain.pdf")
    source = f"{__name__}.{WitnessStorage.__name__}"
    run("warehouse_import", "tests.Contract.document", "--from", source, "--delete-source")
    assert WitnessStorage.seen == {"plain.pdf": documents()["plain.pdf"]}


@concurrently
def test_delete_source_removes_the_file_of_a_row_that_committed_beside_one_that_did_not(
    contested,
):
    (contested / "plain.pdf").write_bytes(b"plain")
    ContractFactory(title="plain.pdf", document="plain.pdf")
    import_contested("--delete-source")
    assert not (contested / "plain.pdf").exists()


def test_import_reads_from_a_storage_alias_in_storages(source, settings, contents):
    settings.STORAGES = {
        **settings.STORAGES,
        "legacy": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(source)},
        },
    }
    run("warehouse_import", "tests.Contract.document", "--from", "legacy")
    assert large_object_content(oid_of(documents()["note.txt"])) == contents["note.txt"]


def test_import_reads_from_a_storage_class_given_by_its_dotted_path(source, settings, contents):
    settings.MEDIA_ROOT = str(source)
    run(
        "warehouse_import",
        "tests.Contract.document",
        "--from",
        "django.core.files.storage.FileSystemStorage",
    )
    assert large_object_content(oid_of(documents()["note.txt"])) == contents["note.txt"]


@pytest.mark.parametrize("storage", ["nonexistent", "no.such.Storage", "warehouse.io.DbFileIO"])
def test_a_source_that_is_not_a_storage_is_a_command_error(storage):
    with pytest.raises(CommandError):
        call_command("warehouse_import", "tests.Contract.document", "--from", storage)


def test_a_source_that_keeps_large_objects_is_a_command_error():
    with pytest.raises(CommandError, match="large objects already"):
        call_command(
            "warehouse_import",
            "tests.Contract.document",
            "--from",
            "warehouse.storage.DbFileStorage",
        )


def test_a_batch_size_below_1_is_refused(source):
    with pytest.raises(CommandError, match="--batch-size"):
        call_command(
            "warehouse_import",
            "tests.Contract.document",
            "--from-location",
            str(source),
            "--batch-size",
            "0",
        )


# -- a source file named like a large object ---------------------------------------------


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A source directory for files a legacy storage named by number."""
    (tmp_path / "legacy").mkdir()
    return tmp_path / "legacy"


def collide(legacy: Path, theirs: bytes, mine: bytes) -> str:
    """Someone's large object, and a source file and row of mine under the very same name."""
    name = db_file_storage.save("salary.pdf", ContentFile(theirs))
    (legacy / name).write_bytes(mine)
    ContractFactory(title="mine", document=name)
    return name


def test_a_source_file_named_like_a_large_object_with_other_content_fails_its_row(legacy):
    name = collide(legacy, b"someone else's salary slip", b"my own contract")
    result = import_from(legacy)
    assert result.returncode == 1
    assert (
        f"ambiguous: the source has {name} and large object {oid_of(name)} exists with other "
        "content; rename the source file, and the row's name with it"
    ) in result.stderr
    assert result.summary.endswith("skipped 0 already in large objects, 1 error")


def test_a_source_file_named_like_a_large_object_leaves_the_row_and_the_object_alone(legacy):
    name = collide(legacy, b"someone else's salary slip", b"my own contract")
    objects = large_object_oids()
    import_from(legacy)
    assert documents()["mine"] == name
    assert large_object_content(oid_of(name)) == b"someone else's salary slip"
    assert large_object_oids() == objects


def test_other_content_of_the_same_size_is_told_apart_by_its_hash(legacy):
    name = collide(legacy, b"theirs", b"mine!!")
    result = import_from(legacy)
    assert result.returncode == 1
    assert documents()["mine"] == name


def test_a_source_file_named_like_an_unregistered_large_object_fails_its_row(legacy, make_object):
    loid = make_object(b"same bytes")
    (legacy / f"{loid}.pdf").write_bytes(b"same bytes")
    ContractFactory(title="mine", document=f"{loid}.pdf")
    result = import_from(legacy)
    assert result.returncode == 1
    assert "cannot be compared; rename the source file" in result.stderr
    assert documents()["mine"] == f"{loid}.pdf"


def test_a_dry_run_reports_a_source_file_named_like_a_large_object(legacy):
    collide(legacy, b"someone else's salary slip", b"my own contract")
    result = import_from(legacy, "--dry-run")
    assert result.returncode == 1
    assert "ambiguous" in result.stderr


def test_a_source_file_with_the_very_content_of_the_large_object_it_is_named_like_is_skipped(
    legacy,
):
    name = collide(legacy, b"the same contract", b"the same contract")
    objects = large_object_oids()
    result = import_from(legacy)
    assert result.returncode == 0
    assert result.summary.endswith("skipped 1 already in large objects, 0 errors")
    assert documents()["mine"] == name
    assert large_object_oids() == objects


def test_a_second_import_after_deleting_the_sources_changes_nothing(source):
    import_from(source, "--delete-source")
    imported = documents()
    result = import_from(source)
    assert result.returncode == 0
    assert documents() == imported
    assert result.summary.endswith("skipped 5 already in large objects, 0 errors")


# -- progress ---------------------------------------------------------------------------


def test_progress_is_a_line_per_batch_on_stderr_when_it_is_not_a_terminal(source):
    result = import_from(source, "--batch-size", "2")
    assert result.stderr.splitlines() == [
        "import: 2/5 rows, 1 byte",
        "import: 4/5 rows, 1.0 MiB",
        "import: 5/5 rows, 3.0 MiB",
    ]


def test_progress_is_redrawn_in_place_after_every_row_on_a_terminal(source):
    result = import_from(source, stderr=TerminalIO())
    lines = result.stderr.split("\r\x1b[K")[1:]
    assert [line.split(",")[0] for line in lines] == [
        f"import: {row}/5 rows" for row in range(1, 6)
    ]
    assert lines[-1] == "import: 5/5 rows, 3.0 MiB\n"


def test_verbosity_0_draws_no_progress(source):
    result = import_from(source, "--verbosity", "0")
    assert result.stderr == ""


# -- export -----------------------------------------------------------------------------


def test_import_then_export_round_trips_every_file_byte_for_byte(imported, contents, tmp_path):
    export_to(tmp_path / "target")
    for original, name in documents().items():
        assert (tmp_path / "target" / name).read_bytes() == contents[original]


def test_export_saves_each_file_under_its_original_name_folder_and_all(imported, tmp_path):
    export_to(tmp_path / "target")
    assert documents() == {title: title for title in SIZES}


def test_export_sums_up_on_stdout_and_exits_with_0(imported, tmp_path):
    result = export_to(tmp_path / "target")
    assert result.returncode == 0
    assert result.summary == (
        f"exported 5 files ({TOTAL} bytes), skipped 0 not in large objects, 0 errors"
    )


def test_a_second_export_changes_nothing_and_says_so(imported, tmp_path):
    export_to(tmp_path / "target")
    exported = documents()
    result = export_to(tmp_path / "target")
    assert documents() == exported
    assert result.summary == "exported 0 files (0 bytes), skipped 5 not in large objects, 0 errors"


def test_export_keeps_the_large_objects_by_default(imported, tmp_path):
    export_to(tmp_path / "target")
    assert {oid_of(name) for name in imported.values()} <= large_object_oids()


def test_export_with_unlink_removes_the_large_objects(imported, tmp_path):
    export_to(tmp_path / "target", "--unlink")
    assert not {oid_of(name) for name in imported.values()} & large_object_oids()


def test_export_with_unlink_keeps_an_object_another_model_still_references(imported, tmp_path):
    invoice = InvoiceFactory(data=imported["report.pdf"])
    export_to(tmp_path / "target", "--unlink")
    assert oid_of(invoice.data.name) in large_object_oids()


@pytest.fixture
def unreadable_oid_column():
    """A table with an oid column, committed, dropped afterwards."""
    with connections["default"].cursor() as cursor:
        cursor.execute("CREATE TABLE warehouse_test_secret (blob oid)")
    yield "warehouse_test_secret"
    with connections["default"].cursor() as cursor:
        cursor.execute("DROP TABLE warehouse_test_secret")


def test_export_with_unlink_keeps_every_object_while_an_oid_column_is_unreadable(
    imported, tmp_path, unreadable_oid_column
):
    oids = {oid_of(name) for name in imported.values()}
    with role_that_may_not_read(unreadable_oid_column), connections["default"].cursor() as cursor:
        # A role that may do all an export does, and owns the objects: only it cannot see.
        cursor.execute("SELECT current_user")
        (role,) = cursor.fetchone()
        cursor.execute("RESET ROLE")
        cursor.execute(f"GRANT UPDATE ON tests_contract TO {role}")
        cursor.execute(f"GRANT UPDATE, DELETE ON warehouse_storedfile TO {role}")
        for loid in oids:
            cursor.execute(f"ALTER LARGE OBJECT {loid} OWNER TO {role}")
        cursor.execute(f"SET ROLE {role}")
        result = export_to(tmp_path / "target", "--unlink")
        assert oids <= large_object_oids()
    assert result.returncode == 0
    assert "public.warehouse_test_secret.blob: not readable by this role" in result.stderr


def test_a_dry_run_export_writes_no_files_and_leaves_the_rows_alone(imported, tmp_path):
    export_to(tmp_path / "target", "--dry-run")
    assert not (tmp_path / "target").exists()
    assert documents() == imported


def test_a_dry_run_export_lists_each_file_it_would_export(imported, tmp_path):
    result = export_to(tmp_path / "target", "--dry-run")
    assert f"would export {imported['report.pdf']} as report.pdf (4096 bytes)" in result.stdout
    assert result.summary.startswith(f"would export 5 files ({TOTAL} bytes)")


def test_an_object_without_an_uploaded_name_is_exported_under_a_name_no_run_takes_for_its_own(
    make_object, tmp_path
):
    loid = make_object(b"unregistered")
    ContractFactory(title="bare", document=f"{loid}.bin")
    export_to(tmp_path / "target")
    assert documents()["bare"] == f"largeobject-{loid}.bin"
    assert export_to(tmp_path / "target").summary.startswith("exported 0 files")


def test_a_row_naming_a_missing_large_object_fails_and_exits_with_1(make_object, tmp_path):
    loid = make_object(b"")
    ContractFactory(title="dangling", document=f"{loid}.pdf")
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT lo_unlink(%s)", [loid])
    result = export_to(tmp_path / "target")
    assert result.returncode == 1
    assert documents()["dangling"] == f"{loid}.pdf"


@concurrently
def test_a_row_changed_during_export_leaves_no_file_in_the_target(media_root):
    ContractFactory(title=CONTESTED)
    target = f"{__name__}.{ContestedTargetStorage.__name__}"
    run("warehouse_export", "tests.Contract.document", "--to", target)
    assert documents()[CONTESTED] == CHANGED
    assert not [path for path in media_root.rglob("*") if path.is_file()]


def test_a_target_that_keeps_large_objects_is_a_command_error():
    with pytest.raises(CommandError, match="large objects already"):
        call_command(
            "warehouse_export", "tests.Contract.document", "--to", "warehouse.storage.DbFileStorage"
        )


# -- the field --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [("warehouse_import", "--from-location"), ("warehouse_export", "--to-location")]
)
def test_a_field_not_stored_in_large_objects_is_a_command_error(command, tmp_path):
    name, location = command
    with pytest.raises(CommandError, match=r"not in warehouse\.storage\.DbFileStorage"):
        call_command(name, "tests.ReceiptOnDisk.file", location, str(tmp_path))


def test_a_field_on_the_default_storage_is_refused_by_the_storage_s_real_name(monkeypatch):
    field = Contract._meta.get_field("document")
    monkeypatch.setattr(field, "storage", default_storage)  # FileSystemStorage here
    with pytest.raises(CommandError, match=r"stores in FileSystemStorage, not in warehouse"):
        call_command("warehouse_import", "tests.Contract.document", "--from-location", "/tmp")


@pytest.mark.parametrize(
    "label",
    [
        "tests.Contract",
        "tests.Contract.document.name",
        "nope.Contract.document",
        "tests.Nope.document",
        "tests.Contract.nope",
        "tests.Contract.title",
    ],
)
def test_a_label_that_names_no_file_field_is_a_command_error(label, tmp_path):
    with pytest.raises(CommandError, match=re.escape(label)):
        call_command("warehouse_import", label, "--from-location", str(tmp_path))


# -- in batches --------------------------------------------------------------------------


def test_limit_stops_after_that_many_files_and_says_so(source):
    result = import_from(source, "--limit", "2")
    assert result.stdout.splitlines()[0] == "stopped after 2 files (--limit): run again to go on"
    assert result.summary.startswith("imported 2 files")
    assert sum(is_large_object_name(name) for name in documents().values()) == 2


def test_runs_with_a_limit_go_on_where_the_last_stopped_until_all_are_in(source, contents):
    summaries = [import_from(source, "--limit", "2").summary for _ in range(4)]
    assert [summary.split(" (")[0] for summary in summaries] == [
        "imported 2 files",
        "imported 2 files",
        "imported 1 file",
        "imported 0 files",
    ]
    for original, name in documents().items():
        assert large_object_content(oid_of(name)) == contents[original]


def test_a_limit_below_1_is_refused(source):
    with pytest.raises(CommandError, match="--limit"):
        call_command(
            "warehouse_import",
            "tests.Contract.document",
            "--from-location",
            str(source),
            "--limit",
            "0",
        )


# -- during a move -----------------------------------------------------------------------


def test_without_from_the_files_come_from_the_previous_storage(previous_storage):
    receipt = ReceiptOnDiskFactory(file__data=b"before the move")
    result = run("warehouse_import", "tests.Receipt.file")
    assert result.returncode == 0
    name = Receipt.objects.get().file.name
    assert large_object_content(oid_of(name)) == b"before the move"
    assert registry.lookup(oid_of(name), "default").name == receipt.file.name


def test_without_from_or_a_previous_storage_the_import_asks_where_the_files_are():
    with pytest.raises(CommandError, match="--from or --from-location"):
        call_command("warehouse_import", "tests.Receipt.file")


def test_export_puts_a_file_back_in_its_upload_to_folder(tmp_path):
    ReceiptFactory(file__filename="receipt.txt", file__data=b"bytes")
    export = run("warehouse_export", "tests.Receipt.file", "--to-location", str(tmp_path))
    assert export.returncode == 0
    name = Receipt.objects.get().file.name
    assert name == f"{datetime.now():receipts/%Y}/receipt.txt"
    assert (tmp_path / name).read_bytes() == b"bytes"
