"""warehouse_verify finds rows naming missing objects, and objects that changed since saved."""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from tests.conftest import role_that_may_not_read
from tests.factories import ContractFactory, ReceiptOnDiskFactory
from tests.models import Contract, DocumentHistory, LegacyBlob
from warehouse.storage import db_file_storage, oid_of

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, as a console's would."""

    def isatty(self) -> bool:
        return True


def verify(*args: str, stderr: io.StringIO | None = None) -> tuple[int, str, str]:
    """Run the command; return its exit status and what it printed."""
    out, err = io.StringIO(), stderr or io.StringIO()
    try:
        call_command("warehouse_verify", *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def sql(statement: str, *params: object) -> None:
    """Change the database behind the storage's back, as a person at psql would."""
    with connections["default"].cursor() as cursor:
        cursor.execute(statement, params)


def test_a_clean_database_verifies_with_exit_0_and_a_summary():
    ContractFactory(document__data=b"12345")
    ContractFactory(document__data=b"1234567")
    status, out, _ = verify()
    assert status == 0
    assert out.splitlines() == [
        "verified 2 files (12 bytes): 0 dangling, 0 mismatched, 0 malformed, "
        "0 unregistered, 0 unreadable, 0 unreferenced"
    ]


def test_a_corrupted_object_is_a_sha256_mismatch_and_fails():
    contract = ContractFactory(document__data=b"%PDF-1.7 signed")
    sql("SELECT lo_put(%s, 0, '\\x00ff'::bytea)", oid_of(contract.document.name))
    status, out, _ = verify()
    assert status == 1
    [line, summary] = out.splitlines()
    assert line.startswith(f"mismatch: {contract.document.name} sha256 expected ")
    assert "1 mismatched" in summary


def test_an_object_that_grew_is_a_size_mismatch():
    contract = ContractFactory(document__data=b"12345")
    sql("SELECT lo_put(%s, 5, '\\x00'::bytea)", oid_of(contract.document.name))
    status, out, _ = verify()
    assert status == 1
    assert f"mismatch: {contract.document.name} size expected 5 got 6" in out.splitlines()


def test_a_row_naming_an_unlinked_object_is_dangling():
    contract = ContractFactory()
    sql("SELECT lo_unlink(%s)", oid_of(contract.document.name))
    status, out, _ = verify()
    assert status == 1
    line = f"dangling: tests.Contract.document pk={contract.pk} -> {contract.document.name}"
    assert f"{line} (no large object)" in out.splitlines()


def test_a_registry_row_whose_object_is_gone_is_dangling():
    loid = oid_of(db_file_storage.save("lost.pdf", ContentFile(b"lost")))
    sql("SELECT lo_unlink(%s)", loid)
    status, out, _ = verify()
    assert status == 1
    line = f"dangling: warehouse.StoredFile pk={loid} -> {loid}"
    assert f"{line} (no large object; uploaded as 'lost.pdf')" in out.splitlines()


def test_every_row_naming_a_missing_object_is_reported():
    first = ContractFactory()
    second = Contract.objects.create(document=first.document.name)
    sql("SELECT lo_unlink(%s)", oid_of(first.document.name))
    _, out, _ = verify()
    assert [line.split(" -> ")[0] for line in out.splitlines() if "Contract" in line] == [
        f"dangling: tests.Contract.document pk={first.pk}",
        f"dangling: tests.Contract.document pk={second.pk}",
    ]


def test_a_name_that_is_not_the_storages_is_malformed():
    contract = Contract.objects.create(document="../etc/passwd")
    status, out, _ = verify()
    assert status == 1
    assert out.splitlines()[0] == (
        f"malformed: tests.Contract.document pk={contract.pk} -> '../etc/passwd' "
        "(not a name of this storage)"
    )
    assert "1 malformed" in out


def test_an_unregistered_object_is_counted_and_is_no_error(make_object):
    Contract.objects.create(document=f"{make_object(b'made by DbFileIO')}.pdf")
    status, out, _ = verify()
    assert status == 0
    assert out.splitlines() == [
        "verified 1 files (16 bytes): 0 dangling, 0 mismatched, 0 malformed, "
        "1 unregistered, 0 unreadable, 0 unreferenced"
    ]


def test_an_object_several_rows_name_is_checked_once():
    contract = ContractFactory(document__data=b"shared")
    Contract.objects.create(document=contract.document.name)
    Contract.objects.create(document=str(oid_of(contract.document.name)))
    _, out, _ = verify()
    assert out.startswith("verified 1 files (6 bytes)")


def test_no_checksums_skips_the_hash():
    contract = ContractFactory()
    sql("SELECT lo_put(%s, 0, '\\x00ff'::bytea)", oid_of(contract.document.name))
    status, out, _ = verify("--no-checksums")
    assert status == 0
    assert "0 mismatched" in out


def test_no_checksums_still_compares_the_size():
    contract = ContractFactory(document__data=b"12345")
    sql("SELECT lo_truncate(lo_open(%s, x'60000'::int), 2)", oid_of(contract.document.name))
    status, out, _ = verify("--no-checksums")
    assert status == 1
    assert f"mismatch: {contract.document.name} size expected 5 got 2" in out.splitlines()


def test_no_checksums_still_finds_a_missing_object():
    contract = ContractFactory()
    sql("SELECT lo_unlink(%s)", oid_of(contract.document.name))
    status, out, _ = verify("--no-checksums")
    assert status == 1
    assert "2 dangling" in out  # the row, and the registry row


def test_progress_is_a_line_every_batch_on_stderr():
    for _ in range(5):
        ContractFactory(document__data=b"abc")
    _, out, err = verify("--batch-size", "2")
    assert err.splitlines() == [
        "verify: 2 files (6 bytes)",
        "verify: 4 files (12 bytes)",
        "verify: 5 files (15 bytes)",
    ]
    assert "verify:" not in out


def test_progress_on_a_terminal_is_one_line_rewritten():
    ContractFactory(document__data=b"abc")
    ContractFactory(document__data=b"defg")
    _, _, err = verify(stderr=Terminal())
    assert err == "\r\x1b[Kverify: 1 files (3 bytes)\r\x1b[Kverify: 2 files (7 bytes)\n"


def test_verbosity_0_shows_no_progress():
    ContractFactory()
    _, out, err = verify("--verbosity", "0")
    assert err == ""
    assert out.startswith("verified 1 files")


def test_a_batch_size_below_1_is_refused():
    with pytest.raises(CommandError, match="--batch-size: must be at least 1"):
        call_command("warehouse_verify", "--batch-size", "0")


@pytest.mark.django_db(transaction=True)
def test_verifying_in_autocommit_reads_every_object_in_its_own_transaction():
    contracts = [ContractFactory(document__data=b"abc") for _ in range(3)]
    try:
        status, out, _ = verify("--batch-size", "1")
        assert status == 0
        assert out.startswith("verified 3 files (9 bytes)")
    finally:
        for contract in contracts:
            sql("SELECT lo_unlink(%s)", oid_of(contract.document.name))


def test_an_object_the_role_may_not_read_is_reported_not_a_crash():
    contract = ContractFactory(document__data=b"secret")
    with role_that_may_not_read():
        status, out, _ = verify()
    assert status == 1
    assert f"unreadable: {contract.document.name} " in out
    assert "1 unreadable" in out


def test_a_registered_object_nothing_references_is_reported_once_past_the_grace_period():
    name = db_file_storage.save("leaked.pdf", ContentFile(b"leaked"))
    assert verify()[0] == 0  # within the grace period: its row may be about to be saved
    status, out, _ = verify("--grace-hours", "0")
    assert status == 1
    assert f"unreferenced: large object {oid_of(name)} (6 bytes, registered " in out
    assert "1 unreferenced" in out


def test_an_unregistered_object_nothing_references_is_reported(make_object):
    loid = make_object(b"made by hand")
    status, out, _ = verify()
    assert status == 1
    assert f"unreferenced: large object {loid} (unregistered; nothing references it)" in out


def test_an_object_an_oid_column_references_is_not_reported(make_object):
    LegacyBlob.objects.create(loid=make_object(b"legacy"))
    assert verify("--grace-hours", "0")[0] == 0


# -- during a move -----------------------------------------------------------------------


def test_a_file_of_the_previous_storage_is_counted_as_there_not_as_broken(previous_storage):
    ReceiptOnDiskFactory()
    ContractFactory(document__data=b"12345")
    status, out, _ = verify()
    assert status == 0
    assert out.splitlines() == [
        "verified 1 files (5 bytes): 0 dangling, 0 mismatched, 0 malformed, "
        "0 unregistered, 0 unreadable, 0 unreferenced, 1 in the previous storage"
    ]


def test_a_name_missing_from_the_previous_storage_too_is_dangling_and_fails(previous_storage):
    receipt = ReceiptOnDiskFactory()
    (previous_storage / receipt.file.name).unlink()
    status, out, _ = verify()
    assert status == 1
    assert out.splitlines()[0] == (
        f"dangling: tests.Receipt.file pk={receipt.pk} -> {receipt.file.name} "
        "(no large object, and not in the previous storage)"
    )


def test_without_a_previous_storage_such_a_name_is_malformed_as_before(previous_storage, settings):
    receipt = ReceiptOnDiskFactory()
    settings.WAREHOUSE_PREVIOUS_STORAGE = None
    status, out, _ = verify()
    assert status == 1
    assert out.splitlines()[0].startswith(f"malformed: tests.Receipt.file pk={receipt.pk} -> ")
    assert "in the previous storage" not in out


def test_a_reference_field_naming_a_file_of_the_previous_storage_counts_it_there(
    previous_storage, settings
):
    settings.WAREHOUSE_REFERENCE_FIELDS = ["tests.DocumentHistory.file"]
    DocumentHistory.objects.create(file=ReceiptOnDiskFactory().file.name)
    status, out, _ = verify()
    assert status == 0
    assert out.endswith(", 2 in the previous storage\n")
