"""Round trips to PostgreSQL of the file lifecycle, counted at the protocol by a proxy.

Every connection goes through the proxy, the caller's included: the row's
statements, the large-object calls and the implicit BEGINs all count. Each
count is taken after the same operation ran once, so that what a process
does once (connecting, libpq's lookup of the large-object functions,
reading which apps were migrated) is not counted.
"""

import pytest
from django.core.files.base import ContentFile
from django.db import connections

from tests.factories import DocumentFactory
from tests.models import Document
from tests.protocol import package_connections_through

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def proxy():
    """Every connection, the caller's included, through a counting proxy."""
    connection = connections["default"]
    connection.close()
    with package_connections_through(connection.settings_dict) as proxy:
        yield proxy
        connection.close()


def round_trips_of(proxy, operation, *, warm_up) -> int:
    warm_up()
    proxy.reset()
    operation()
    return proxy.round_trips


def uploaded(content: bytes = b"content") -> ContentFile:
    return ContentFile(content, name="file.pdf")


def replace(document: Document) -> None:
    document.file = uploaded(b"new")
    document.save()


def test_creating_a_row_with_an_upload_takes_8_round_trips(proxy):
    def create():
        Document.objects.create(file=uploaded())

    # BEGIN, lo_creat, lo_open, lowrite, lo_close, the registry row, the row, COMMIT.
    assert round_trips_of(proxy, create, warm_up=create) == 8


def test_replacing_a_file_takes_11_round_trips(proxy):
    document = DocumentFactory()
    # BEGIN, the upload (5), locking the row with the files it names, UPDATE,
    # the reference check, lo_unlink, COMMIT.
    assert round_trips_of(proxy, lambda: replace(document), warm_up=lambda: replace(document)) == 11


def test_deleting_a_row_takes_6_round_trips(proxy):
    first, second = DocumentFactory(), DocumentFactory()
    # BEGIN, locking the row with the files it names, DELETE, the reference
    # check, lo_unlink, COMMIT.
    assert round_trips_of(proxy, second.delete, warm_up=first.delete) == 6


@pytest.mark.parametrize("rows", [10, 40])
def test_deleting_rows_with_a_queryset_checks_their_files_in_a_constant_number_of_queries(
    proxy, rows
):
    DocumentFactory.create_batch(rows, title="doomed")
    DocumentFactory(title="warm-up")

    def delete():
        Document.objects.filter(title="doomed").delete()

    # The SELECT that collects the rows, BEGIN, locking them all, the DELETE, one
    # reference check, COMMIT; and one lo_unlink per file, which nothing can batch.
    count = round_trips_of(
        proxy, delete, warm_up=lambda: Document.objects.filter(title="warm-up").delete()
    )
    assert count == 6 + rows
