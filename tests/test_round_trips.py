"""Round trips to PostgreSQL per operation, counted at the protocol by a proxy.

The package's connection is persistent here (``CONN_MAX_AGE = None``) and
warmed by one request first: connecting, and libpq's one lookup of the
large-object functions per connection, are not what these count.
"""

import pytest
from django.core.files.base import ContentFile
from django.db import connections
from django.test import RequestFactory

from tests.protocol import package_connections_through
from warehouse.storage import db_file_storage
from warehouse.views import db_serve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def proxy():
    settings_dict = connections["default"].settings_dict
    saved = settings_dict["CONN_MAX_AGE"]
    settings_dict["CONN_MAX_AGE"] = None
    try:
        with package_connections_through(settings_dict) as proxy:
            yield proxy
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
