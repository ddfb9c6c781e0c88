"""warehouse_dumpdata and warehouse_loaddata: fixtures that carry files' bytes, not only names."""

import hashlib
import io
import json
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.conftest import large_object_oids
from tests.factories import ContractFactory, DocumentFactory, ReceiptOnDiskFactory
from tests.models import Contract, Document, Receipt
from warehouse import registry
from warehouse.fixtures import FIXTURE, MANIFEST
from warehouse.names import is_large_object_name, oid_of
from warehouse.storage import db_file_storage

# Loading commits, and the objects must outlive the rows deleted before it.
pytestmark = pytest.mark.django_db(transaction=True)

MODELS = ("tests.Contract", "tests.Document", "tests.Receipt")


def run(*args: str) -> tuple[int, str]:
    """Run a command as manage.py would; return its exit status and stdout."""
    out = io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=io.StringIO())
    except CommandError as error:
        return error.returncode, f"{out.getvalue()}{error}"
    return 0, out.getvalue()


def files() -> dict[str, bytes]:
    """Every row's file by where it is (model, title, field), read through the storage."""
    found = {}
    for model, fields in ((Contract, ["document"]), (Document, ["file", "attachment"])):
        for row in model.objects.all():
            for field in fields:
                file = getattr(row, field)
                if file:
                    with file.open("rb") as opened:
                        found[f"{model.__name__} {row.title} {field}"] = opened.read()
    return found


def sha256s(contents: dict[str, bytes]) -> dict[str, str]:
    return {where: hashlib.sha256(content).hexdigest() for where, content in contents.items()}


@pytest.fixture
def rows() -> dict[str, bytes]:
    """Rows naming files, one file named by two rows; their files by where they are."""
    shared = ContractFactory(title="shared", document__data=b"%PDF-1.7 shared\n")
    ContractFactory(title="empty", document__data=b"")
    ContractFactory(title="none", document="")
    DocumentFactory(title="both", attachment=ContentFile(b"attached", name="a/b/attached.txt"))
    Document.objects.create(title="copy", file=shared.document.name)
    return files()


@pytest.fixture
def dumped(rows, tmp_path) -> Path:
    """The rows dumped with their files, then deleted, files and all, as a fresh database is."""
    assert run("warehouse_dumpdata", *MODELS, "-o", str(tmp_path / "dump"))[0] == 0
    Document.objects.all().delete()
    Contract.objects.all().delete()
    assert large_object_oids() == set()
    return tmp_path / "dump"


def test_a_plain_loaddata_brings_back_names_whose_files_are_gone(rows, tmp_path):
    call_command("dumpdata", *MODELS, output=str(tmp_path / "plain.json"))
    Document.objects.all().delete()
    Contract.objects.all().delete()
    call_command("loaddata", str(tmp_path / "plain.json"), verbosity=0)
    status, out = run("warehouse_verify")
    assert status == 1
    assert out.count("dangling:") == 5


def test_the_round_trip_brings_back_every_file_with_its_sha256(rows, dumped):
    assert run("warehouse_loaddata", str(dumped))[0] == 0
    assert sha256s(files()) == sha256s(rows)


def test_after_the_round_trip_every_row_names_a_new_large_object_and_verifies(rows, dumped):
    run("warehouse_loaddata", str(dumped))
    names = [row.document.name for row in Contract.objects.exclude(document="")]
    assert all(is_large_object_name(name) for name in names)
    assert run("warehouse_verify")[0] == 0


def test_a_file_two_rows_name_is_carried_once_and_stays_shared(rows, dumped):
    manifest = json.loads((dumped / MANIFEST).read_text())["files"]
    assert len(manifest) == 4
    run("warehouse_loaddata", str(dumped))
    assert (
        Document.objects.get(title="copy").file.name
        == Contract.objects.get(title="shared").document.name
    )


def test_the_registry_keeps_the_uploaded_name_and_folder_across_the_round_trip(rows, dumped):
    run("warehouse_loaddata", str(dumped))
    name = Document.objects.get(title="both").attachment.name
    assert registry.lookup(oid_of(name), "default").name == "a/b/attached.txt"


def test_the_summaries_count_objects_files_and_bytes(rows, tmp_path):
    size = sum(len(content) for where, content in rows.items() if "copy" not in where)
    dump = run("warehouse_dumpdata", *MODELS, "-o", str(tmp_path / "dump"))
    assert dump == (0, f"dumped 5 objects and 4 files ({size} bytes) to {tmp_path / 'dump'}\n")
    Document.objects.all().delete()
    Contract.objects.all().delete()
    load = run("warehouse_loaddata", str(tmp_path / "dump"))
    assert load == (
        0,
        f"stored 4 files ({size} bytes) as new large objects\n"
        "Installed 5 object(s) from 1 fixture(s)\n",
    )


def test_a_file_that_is_not_the_one_dumped_fails_the_load_and_leaves_nothing(rows, dumped):
    (dumped / "files" / "0.pdf").write_bytes(b"tampered")
    status, out = run("warehouse_loaddata", str(dumped))
    assert status == 1
    assert "SHA-256 differs" in out
    assert (Contract.objects.count(), Document.objects.count()) == (0, 0)
    assert large_object_oids() == set()


def test_a_manifest_path_out_of_the_dump_is_refused(rows, dumped):
    manifest = json.loads((dumped / MANIFEST).read_text())
    manifest["files"][0]["path"] = "../../etc/hostname"
    (dumped / MANIFEST).write_text(json.dumps(manifest))
    status, out = run("warehouse_loaddata", str(dumped))
    assert (status, large_object_oids()) == (1, set())
    assert "outside files/" in out


@pytest.mark.parametrize(
    "manifest", ["[]", '{"format": 1}', '{"format": 1, "files": [{"name": "1.pdf"}]}', "nonsense"]
)
def test_a_manifest_that_is_not_one_is_a_clear_error(rows, dumped, manifest):
    (dumped / MANIFEST).write_text(manifest)
    status, out = run("warehouse_loaddata", str(dumped))
    assert (status, large_object_oids()) == (1, set())
    assert MANIFEST in out


def test_a_row_naming_a_missing_file_fails_the_dump_and_writes_nothing(rows, tmp_path):
    db_file_storage.delete(Contract.objects.get(title="shared").document.name)
    status, out = run("warehouse_dumpdata", *MODELS, "-o", str(tmp_path / "dump"))
    assert status == 1
    assert "tests.contract" in out and "document=" in out
    assert list(tmp_path.iterdir()) == []


def test_the_dump_refuses_a_directory_that_is_not_empty(rows, tmp_path):
    (tmp_path / "dump").mkdir()
    (tmp_path / "dump" / "kept").write_text("mine")
    with pytest.raises(CommandError, match="not an empty directory"):
        call_command("warehouse_dumpdata", *MODELS, "-o", str(tmp_path / "dump"))
    assert [path.name for path in (tmp_path / "dump").iterdir()] == ["kept"]


def test_the_registry_is_never_dumped(rows, tmp_path):
    run("warehouse_dumpdata", "-o", str(tmp_path / "dump"))
    objects = json.loads((tmp_path / "dump" / FIXTURE).read_text())
    assert not [obj for obj in objects if obj["model"] == "warehouse.storedfile"]


def test_files_still_in_the_previous_storage_are_carried_into_large_objects(
    previous_storage, tmp_path
):
    ReceiptOnDiskFactory(title="old", file__data=b"from before the move")
    run("warehouse_dumpdata", "tests.Receipt", "-o", str(tmp_path / "dump"))
    Receipt.objects.all().delete()
    assert run("warehouse_loaddata", str(tmp_path / "dump"))[0] == 0
    receipt = Receipt.objects.get()
    assert is_large_object_name(receipt.file.name)
    with receipt.file.open("rb") as file:
        assert file.read() == b"from before the move"
