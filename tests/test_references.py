"""references finds what points at a large object, in whatever tables this database has."""

import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.db import connection, models
from django.test.utils import CaptureQueriesContext

from tests.conftest import large_object_oids, role_that_may_not_read
from tests.factories import DocumentFactory
from tests.models import Document, LegacyBlob
from warehouse import references
from warehouse.fields import DbFileField
from warehouse.storage import db_file_storage, oid_of

pytestmark = pytest.mark.django_db

# Never a table of the test database.
ELSEWHERE = "warehouse_test_archived_scan"
# A table made by hand, as a legacy schema or another tool would have it.
LEGACY = "warehouse_test_legacy_scan"


@pytest.fixture
def make_model():
    """Declare a model with a file field for one test; forget it afterwards."""
    made = []

    def make(db_table: str, *, managed: bool = False) -> type[models.Model]:
        meta = type("Meta", (), {"app_label": "tests", "db_table": db_table, "managed": managed})
        name = "".join(part.title() for part in db_table.split("_"))
        attrs = {"__module__": __name__, "Meta": meta, "scan": DbFileField(auto_delete=False)}
        model = type(name, (models.Model,), attrs)
        made.append(model)
        return model

    yield make
    for model in made:
        del apps.all_models["tests"][model._meta.model_name]
    apps.clear_cache()


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


def stored(content: bytes = b"content") -> str:
    return db_file_storage.save("file.pdf", ContentFile(content))


def holding(name: str) -> Document:
    """A row holding ``name`` whatever it names: written as a bulk import would."""
    document = Document.objects.create()
    Document.objects.filter(pk=document.pk).update(file=name)
    return document


def replace(document: Document) -> None:
    document.file = ContentFile(b"new", name="new.pdf")
    document.save()


# -- which rows hold an object --------------------------------------------------------


@pytest.mark.parametrize("spelling", ["{oid}", "{oid}.pdf", "{oid}.tar.gz"])
def test_a_row_holds_an_object_under_any_name_with_its_oid(spelling):
    loid = oid_of(stored())
    Document.objects.create(file=spelling.format(oid=loid))
    assert references.referenced_among([loid], "default") == {loid}


def test_a_name_whose_oid_begins_with_the_same_digits_is_another_object():
    loid = oid_of(stored())
    holding(f"{loid}0.pdf")
    holding(f"{loid}0")
    assert references.referenced_among([loid], "default") == set()


@pytest.mark.parametrize("extra", [0, references.INDEXABLE_OIDS])
def test_few_and_many_oids_are_looked_up_alike(extra):
    held, loose = oid_of(stored()), oid_of(stored())
    Document.objects.create(file=f"{held}.pdf")
    holding(f"{loose}0.pdf")
    others = [10**9 + number for number in range(extra)]
    assert references.referenced_among([held, loose, *others], "default") == {held}


def test_the_excluded_row_does_not_count_but_another_row_with_the_name_does():
    document = DocumentFactory()
    loid = oid_of(document.file.name)
    assert references.referenced_among([loid], "default", exclude=document) == set()
    Document.objects.create(file=document.file.name)
    assert references.referenced_among([loid], "default", exclude=document) == {loid}


def test_looking_up_a_few_oids_can_use_an_index_serving_like_prefixes():
    loid = oid_of(stored())
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE INDEX warehouse_test_file ON tests_document (file varchar_pattern_ops)"
        )
        cursor.execute("SET LOCAL enable_seqscan = off")
    with CaptureQueriesContext(connection) as queries:
        references.referenced_among([loid], "default")
    (lookup,) = [
        q["sql"] for q in queries if '"tests_document" WHERE' in q["sql"] and '("file"' in q["sql"]
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {lookup}")
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "Index Cond" in plan
    assert "Seq Scan" not in plan


# -- tables that are not there, or not ours to read -----------------------------------


def test_a_model_whose_table_is_in_another_database_is_left_out(make_model):
    make_model(ELSEWHERE)
    assert ELSEWHERE not in [
        model._meta.db_table for model, _ in references.file_fields_on("default")
    ]


def test_replacing_a_file_works_while_a_model_has_its_table_in_another_database(make_model):
    make_model(ELSEWHERE)
    document = DocumentFactory()
    old = oid_of(document.file.name)
    replace(document)
    assert old not in large_object_oids()


def test_an_unmanaged_model_over_a_table_here_keeps_its_objects(make_model):
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {LEGACY} (id bigserial PRIMARY KEY, scan varchar(100))")
    model = make_model(LEGACY)
    name = stored()
    model.objects.create(scan=name)
    assert oid_of(name) in references.referenced_among([oid_of(name)], "default")
    assert oid_of(name) in references.referenced_oids("default")


def test_another_sessions_temporary_table_with_an_oid_column_is_left_out(
    other_sessions_temporary_oid_table,
):
    loid = oid_of(stored())
    assert references.referenced_among([loid], "default") == set()
    assert list(references.oid_column_references("default")) == []


def test_replacing_a_file_works_while_another_session_has_a_temporary_oid_table(
    other_sessions_temporary_oid_table,
):
    document = DocumentFactory()
    old = oid_of(document.file.name)
    replace(document)
    assert old not in large_object_oids()


def test_an_oid_column_the_role_may_not_read_is_left_out_and_named():
    loid = oid_of(stored())
    LegacyBlob.objects.create(loid=loid)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE warehouse_test_secret (blob oid)")
    with role_that_may_not_read("warehouse_test_secret"):
        assert references.referenced_among([loid], "default") == {loid}
        assert list(references.oid_column_references("default")) == [loid]
        assert references.unreadable_oid_columns("default") == ["public.warehouse_test_secret.blob"]


def test_every_oid_column_is_readable_by_the_owner_of_the_tables():
    assert references.unreadable_oid_columns("default") == []
