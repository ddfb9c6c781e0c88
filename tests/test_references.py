"""references decides whether an object may be unlinked, and keeps it when in doubt."""

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import override_settings

from tests.conftest import LEGACY, large_object_oids, role_that_may_not_read
from tests.factories import DocumentFactory
from tests.models import Document, DocumentHistory, LegacyBlob
from warehouse import checks, references, unlinking
from warehouse.names import oid_in_sql
from warehouse.storage import db_file_storage, oid_of

pytestmark = pytest.mark.django_db

# Never a table of the test database.
ELSEWHERE = "warehouse_test_archived_scan"


@pytest.fixture
def other_sessions_temporary_oid_table(db):
    """A temporary table with an oid column, in a session of its own."""
    # Not the replica's connection: the test wraps it in a transaction too, and
    # the table must be committed for this session's catalog queries to see it.
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        other.autocommit = True
        with other.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE scratch (blob oid)")
        yield
    finally:
        other.close()  # and its temporary table with it


class RouteScansElsewhere:
    """A router that keeps the model over ELSEWHERE in another database."""

    def db_for_write(self, model, **hints):
        return "read_alias" if model._meta.db_table == ELSEWHERE else None


def stored(content: bytes = b"content") -> int:
    return oid_of(db_file_storage.save("file.pdf", ContentFile(content)))


def holding(name: str) -> Document:
    """A row holding ``name`` whatever it names: written as a bulk import would."""
    document = Document.objects.create()
    Document.objects.filter(pk=document.pk).update(file=name)
    return document


def unlink(*oids: int) -> unlinking.Verdict:
    return unlinking.unlink_unreferenced(oids, "default")


# -- which rows hold an object ------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["{oid}", "{oid}.pdf", "{oid}.tar.gz"])
def test_a_row_holds_an_object_under_any_name_with_its_oid(spelling):
    loid = stored()
    holding(spelling.format(oid=loid))
    assert unlink(loid) == (set(), {loid}, [])
    assert loid in large_object_oids()


@pytest.mark.parametrize("spelling", ["{oid}0", "{oid}0.pdf", "{oid}/x.pdf", "0{oid}.pdf"])
def test_a_string_that_is_no_name_of_the_object_does_not_hold_it(spelling):
    loid = stored()
    holding(spelling.format(oid=loid))
    assert unlink(loid) == ({loid}, set(), [])
    assert loid not in large_object_oids()


@pytest.mark.parametrize(
    "name",
    [
        "16384",
        "16384.pdf",
        "16384.tar.gz",
        "16384.",
        "016384",
        "16384/x",
        "16384\\x",
        "x16384",
        "4294967295.a",
        "4294967296",
        "99999999999",
        "",
        "16384.pdf ",
    ],
)
def test_python_and_sql_read_a_name_alike(name):
    try:
        expected = oid_of(name)
    except FileNotFoundError:
        expected = None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {oid_in_sql('n')} FROM (SELECT %s::text AS n) AS t", [name])
        assert cursor.fetchone()[0] == expected


@pytest.mark.parametrize("extra", [0, unlinking.INDEXABLE_OIDS])
def test_few_and_many_oids_are_looked_up_alike(extra):
    held, loose = stored(), stored()
    holding(f"{held}.pdf")
    holding(f"{loose}0.pdf")
    others = [10**9 + number for number in range(extra)]
    assert unlink(held, loose, *others).unlinked == {loose}


def test_an_oid_in_an_oid_column_holds_the_object():
    loid = stored()
    LegacyBlob.objects.create(loid=loid)
    assert unlink(loid).kept == {loid}


def test_an_unmanaged_model_over_a_table_here_holds_its_objects(make_model):
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {LEGACY} (id bigserial PRIMARY KEY, scan varchar(100))")
    model = make_model(LEGACY)
    loid = stored()
    model.objects.create(scan=f"{loid}.pdf")
    assert unlink(loid).kept == {loid}
    assert loid in references.referenced_oids("default")


def test_the_unlinked_objects_registry_rows_go_with_them():
    loid = stored()
    unlink(loid)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM warehouse_storedfile WHERE oid = %s", [loid])
        assert cursor.fetchone()[0] == 0


def test_looking_up_a_few_oids_uses_the_index_db_index_makes():
    loid = stored()
    query = unlinking._names_query('"tests_document"', '"file"', [loid])
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {query}", {"oids": [loid]})
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "Index" in plan
    assert "Seq Scan" not in plan


# -- sources it cannot see keep everything -------------------------------------------------


def test_a_model_whose_table_is_not_on_this_database_keeps_everything(make_model):
    make_model(ELSEWHERE)
    loid = stored()
    verdict = unlink(loid)
    assert verdict.kept == {loid}
    assert verdict.blind == [
        f"tests.{ELSEWHERE.title().replace('_', '')}.scan: missing on this database"
    ]
    assert loid in large_object_oids()


def test_a_table_in_a_schema_off_the_search_path_keeps_everything(make_model):
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA warehouse_test_tenant")
        cursor.execute(
            f"CREATE TABLE warehouse_test_tenant.{LEGACY} (id bigserial PRIMARY KEY, scan text)"
        )
    make_model(LEGACY)
    loid = stored()
    assert unlink(loid).kept == {loid}
    assert references.blind_sources("default") == [
        f"tests.{LEGACY.title().replace('_', '')}.scan: missing on this database"
    ]


def test_a_model_routed_to_another_database_keeps_everything(make_model):
    model = make_model(ELSEWHERE)
    loid = stored()
    with override_settings(DATABASE_ROUTERS=[RouteScansElsewhere()]):
        verdict = unlink(loid)
    assert verdict.kept == {loid}
    assert verdict.blind == [f"{model._meta.label}.scan: routed to database 'read_alias'"]


def test_an_app_migrated_here_but_no_longer_installed_keeps_everything():
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES ('retired', '0001', now())"
        )
    loid = stored()
    verdict = unlink(loid)
    assert verdict.kept == {loid}
    assert verdict.blind == ["app 'retired': migrated on this database but not in INSTALLED_APPS"]


def test_an_oid_column_the_role_may_not_read_keeps_everything_and_is_named():
    loid = stored()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE warehouse_test_secret (blob oid)")
    with role_that_may_not_read("warehouse_test_secret"):
        # The role cannot lock the registry either: what it saw decides, by the owner.
        catalog = references.read_catalog("default")
    assert catalog.blind == ["public.warehouse_test_secret.blob: not readable by this role"]
    verdict = unlinking.unlink_unreferenced([loid], "default", catalog=catalog)
    assert verdict.kept == {loid}
    assert loid in large_object_oids()


def test_a_file_column_the_role_may_not_read_is_named():
    with role_that_may_not_read("tests_document"):
        assert "tests.Document.file: not readable by this role" in references.blind_sources(
            "default"
        )


def test_an_object_the_role_does_not_own_is_kept():
    loid = stored()
    with role_that_may_not_read(), connection.cursor() as cursor:
        # A role that may change the registry, but owns no object.
        cursor.execute("SELECT current_user")
        (role,) = cursor.fetchone()
        cursor.execute("RESET ROLE")
        cursor.execute(f"GRANT UPDATE, DELETE ON warehouse_storedfile TO {role}")
        cursor.execute(f"SET LOCAL ROLE {role}")
        assert unlinking.unlink_unreferenced([loid], "default", wait=False).kept == {loid}
    assert loid in large_object_oids()


def test_another_sessions_temporary_table_with_an_oid_column_is_no_source(
    other_sessions_temporary_oid_table,
):
    loid = stored()
    assert references.blind_sources("default") == []
    assert unlink(loid).unlinked == {loid}


def test_every_source_is_visible_to_the_owner_of_the_tables():
    assert references.blind_sources("default") == []


def test_replacing_a_file_keeps_the_old_one_while_a_source_cannot_be_seen(make_model):
    make_model(ELSEWHERE)
    document = DocumentFactory()
    old = oid_of(document.file.name)
    document.file = ContentFile(b"new", name="new.pdf")
    document.save()
    assert old in large_object_oids()


def test_the_storage_deletes_a_file_only_when_nothing_references_it():
    document = DocumentFactory()
    copy = Document.objects.create(file=document.file.name)
    assert not db_file_storage.delete_unreferenced(document.file.name)
    copy.delete()
    Document.objects.filter(pk=document.pk).update(file="")
    assert db_file_storage.delete_unreferenced(document.file.name)
    assert large_object_oids() == set()


def replaced_while_history_names_it() -> int:
    """Replace a document's file while a history row holds its old name; return the old oid."""
    document = DocumentFactory()
    DocumentHistory.objects.create(file=document.file.name)
    replaced = oid_of(document.file.name)
    document.file = ContentFile(b"new", name="new.pdf")
    document.save()
    return replaced


@override_settings(WAREHOUSE_REFERENCE_FIELDS=["tests.DocumentHistory.file"])
def test_a_declared_reference_field_holds_the_files_it_names():
    replaced = replaced_while_history_names_it()
    assert replaced in large_object_oids()
    assert replaced in references.referenced_oids("default")


def test_without_the_declaration_a_copied_name_is_no_reference():
    assert replaced_while_history_names_it() not in large_object_oids()


@pytest.mark.parametrize(
    "label", ["tests.DocumentHistory", "tests.Nothing.file", "tests.Document.folder"]
)
def test_a_declared_reference_field_that_names_no_column_is_e005(label):
    with override_settings(WAREHOUSE_REFERENCE_FIELDS=[label]):
        assert [message.id for message in checks.check_reference_fields()] == ["warehouse.E005"]
