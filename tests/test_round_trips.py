"""Round trips to PostgreSQL per operation, counted at the protocol by a proxy.

Every connection is persistent here (``CONN_MAX_AGE = None``) and warmed
by one operation first: connecting, and libpq's one lookup of the
large-object functions per connection, are not what these count.
"""

import pytest
from django.core.files.base import ContentFile
from django.db import connections, transaction
from django.test import RequestFactory, override_settings

from tests.protocol import package_connections_through
from warehouse.storage import db_file_storage
from warehouse.views import db_serve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def proxy():
    """Every connection through the proxy: the package's, and the caller's from its next query."""
    connection = connections["default"]
    settings_dict = connection.settings_dict
    saved = settings_dict["CONN_MAX_AGE"]
    settings_dict["CONN_MAX_AGE"] = None
    connection.close()
    try:
        with package_connections_through(settings_dict) as proxy:
            yield proxy
            connection.close()
    finally:
        settings_dict["CONN_MAX_AGE"] = saved


def round_trips_of(proxy, serve) -> int:
    serve()  # warm: connect, and libpq's lookup of the large-object functions
    proxy.reset()
    serve()
    return proxy.round_trips


def test_a_small_registered_file_is_served_in_5_round_trips(proxy):
    name = db_file_storage.save("small.pdf", ContentFile(b"x" * 1024))

    def serve():
        response = db_serve(RequestFactory().get("/"), name)
        assert response.content == b"x" * 1024

    # BEGIN, the facts (existence, privilege, registry row), lo_open, loread, ROLLBACK.
    assert round_trips_of(proxy, serve) == 5


def test_a_not_modified_answer_takes_3_round_trips(proxy):
    name = db_file_storage.save("small.pdf", ContentFile(b"x" * 1024))
    etag = db_serve(RequestFactory().get("/"), name)["ETag"]

    def serve():
        assert (
            db_serve(RequestFactory().get("/", headers={"If-None-Match": etag}), name).status_code
            == 304
        )

    # BEGIN, the facts, ROLLBACK.
    assert round_trips_of(proxy, serve) == 3


# -- the storage, outside any transaction of the caller's -------------------------------------


def stored(content: bytes = b"x" * 1024) -> str:
    return db_file_storage.save("small.pdf", ContentFile(content))


def test_saving_a_small_file_takes_6_round_trips(proxy):
    # BEGIN, lo_creat, lo_open, lowrite, the registry row, COMMIT (which closes
    # the descriptor: no lo_close), on a connection of the package's own.
    assert round_trips_of(proxy, stored) == 6


def test_saving_a_small_file_for_read_roles_takes_1_round_trip_more(proxy):
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT current_user")
        (role,) = cursor.fetchone()
    # As above, and the GRANT (for a role of its own: any role would do).
    with override_settings(WAREHOUSE_READ_ROLES=[role]):
        assert round_trips_of(proxy, stored) == 7


def test_saving_a_small_file_inside_atomic_takes_9_round_trips(proxy):
    def stored_in_a_transaction():
        with transaction.atomic():
            stored()

    # BEGIN, SAVEPOINT, lo_creat, lo_open, lowrite, lo_close (the transaction goes
    # on), the registry row, RELEASE SAVEPOINT, COMMIT.
    assert round_trips_of(proxy, stored_in_a_transaction) == 9


def test_reading_a_small_file_whole_takes_4_round_trips(proxy):
    name = stored()

    def read():
        with db_file_storage.open(name) as file:
            assert file.read() == b"x" * 1024

    # BEGIN, lo_open (nothing asked first: a miss fails only the reader's own
    # transaction), one loread (short: the end), ROLLBACK.
    assert round_trips_of(proxy, read) == 4


def test_reading_a_small_file_chunk_by_chunk_takes_4_round_trips(proxy):
    name = stored()

    def read():
        with db_file_storage.open(name) as file:
            assert b"".join(file.chunks()) == b"x" * 1024

    # As above: the short loread found the end, so the read after it asks nothing.
    assert round_trips_of(proxy, read) == 4


def test_reading_beside_another_reader_asks_before_opening(proxy):
    first, second = stored(), stored()

    def read():
        with db_file_storage.open(first), db_file_storage.open(second) as file:
            assert file.read() == b"x" * 1024

    # BEGIN, lo_open; then, in the transaction the first shares: existence and
    # privilege, lo_open, loread, lo_close (the transaction goes on); ROLLBACK.
    # A failed open there would have aborted the first reader's transaction.
    assert round_trips_of(proxy, read) == 7


@pytest.mark.parametrize("ask", ["exists", "size"])
def test_asking_about_a_registered_file_takes_1_round_trip(proxy, ask):
    name = stored()
    assert round_trips_of(proxy, lambda: getattr(db_file_storage, ask)(name)) == 1


def test_deleting_a_file_takes_4_round_trips(proxy):
    names = [stored(), stored()]
    # BEGIN, the registry row and whether the object exists, lo_unlink, COMMIT.
    assert round_trips_of(proxy, lambda: db_file_storage.delete(names.pop())) == 4
