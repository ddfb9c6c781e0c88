"""A physical streaming replica as ``WAREHOUSE_DB_FOR_READ``: a second server replaying the first.

The standby (``tests/standby.py``) is a hot standby of the test server made
by ``pg_basebackup -R``: it holds what replay has brought it, and nothing
else. Pausing replay is what tells its answers from the primary's: a file
rewritten on the primary meanwhile still reads as it was there, and a file
saved meanwhile is not there at all.
"""

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connections, transaction
from django.test import Client, RequestFactory, override_settings

from tests.conftest import LONGER_THAN_READ_AHEAD
from tests.factories import DocumentFactory
from tests.standby import database_alias, running_standby, why_no_standby
from warehouse.objects import large_object_exists
from warehouse.storage import db_file_storage, oid_of
from warehouse.views import db_serve

STANDBY = "standby"

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", STANDBY])

SAVED = b"as saved on the primary"
REWRITTEN = b"rewritten on the primary, later"


@pytest.fixture(scope="module")
def standby(django_db_setup, django_db_blocker):
    """A hot standby of the test server as the alias "standby", for this module's tests.

    Made after the test database was created, so the copy holds it.
    """
    with django_db_blocker.unblock():
        reason = why_no_standby(connections["default"])
        if reason is not None:
            pytest.skip(f"no standby can be made: {reason}")
        with (
            running_standby(connections["default"]) as server,
            database_alias(STANDBY, server.settings_dict),
        ):
            yield server


@pytest.fixture
def replica(standby):
    """Reads go to the standby, caught up with everything committed before the test."""
    with override_settings(WAREHOUSE_DB_FOR_READ=STANDBY):
        standby.catch_up()
        yield standby


def save(content: bytes = SAVED, name: str = "report.txt") -> str:
    return db_file_storage.save(name, ContentFile(content))


def rewrite_on_the_primary(name: str, content: bytes = REWRITTEN) -> None:
    """Change a file's bytes in a transaction of its own on the primary (the write alias)."""
    with db_file_storage.open(name, "wb") as file:
        file.write(content)


@contextmanager
def rewritten_on_the_primary_only(replica, name: str) -> Iterator[None]:
    """The standby holds ``name`` as saved; the primary has rewritten it since (replay paused)."""
    replica.catch_up()
    with replica.replay_paused():
        rewrite_on_the_primary(name)
        yield


def on_the_standby(name: str) -> bool:
    return large_object_exists(connections[STANDBY], oid_of(name))


def etag_of(content: bytes) -> str:
    return f'"{hashlib.sha256(content).hexdigest()}"'


def test_the_standby_is_a_second_server_in_recovery(standby):
    with connections[STANDBY].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), inet_server_port()")
        assert cursor.fetchone() == (True, standby.port)


# -- once replayed, the standby serves -------------------------------------------------


def test_a_replayed_file_is_read_from_the_standby(replica):
    name = save()
    with rewritten_on_the_primary_only(replica, name), db_file_storage.open(name) as file:
        assert file.read() == SAVED


def test_db_serve_sends_a_replayed_file_from_the_standby(replica):
    name = save()
    with rewritten_on_the_primary_only(replica, name):
        response = Client().get(f"/serve/{name}")
    assert (response.status_code, response.content) == (200, SAVED)
    assert response["ETag"] == etag_of(SAVED)


def test_a_replayed_file_longer_than_the_read_ahead_streams_from_the_standby(replica):
    content = bytes(range(256)) * (LONGER_THAN_READ_AHEAD // 256)
    name = save(content, "long.bin")
    with rewritten_on_the_primary_only(replica, name):
        response = Client().get(f"/serve/{name}")
        assert response.streaming
        assert b"".join(response.streaming_content) == content
        response.close()


def test_size_and_exists_of_a_replayed_file_are_the_standbys(replica):
    name = save()
    with rewritten_on_the_primary_only(replica, name):
        assert db_file_storage.exists(name)
        assert db_file_storage.size(name) == len(SAVED)


def test_inside_atomic_a_file_not_written_in_the_transaction_is_still_read_from_the_standby(
    replica,
):
    name = save()
    with (
        rewritten_on_the_primary_only(replica, name),
        transaction.atomic(),
        db_file_storage.open(name) as file,
    ):
        assert file.read() == SAVED


# -- before replay, the primary answers -------------------------------------------------


def test_a_read_right_after_a_save_falls_back_to_the_primary(replica):
    with replica.replay_paused():
        name = save()
        assert not on_the_standby(name)
        with db_file_storage.open(name) as file:
            assert file.read() == SAVED


def test_db_serve_right_after_a_save_falls_back_to_the_primary(replica):
    with replica.replay_paused():
        name = save()
        response = Client().get(f"/serve/{name}", headers={"Range": "bytes=3-7"})
    assert (response.status_code, response.content) == (206, SAVED[3:8])
    assert response["ETag"] == etag_of(SAVED)


def test_size_exists_and_times_right_after_a_save_fall_back_to_the_primary(replica):
    with replica.replay_paused():
        name = save()
        assert db_file_storage.exists(name)
        assert db_file_storage.size(name) == len(SAVED)
        assert db_file_storage.get_modified_time(name) is not None


def test_a_file_saved_before_replay_is_read_from_the_standby_once_replayed(replica):
    with replica.replay_paused():
        name = save()
    with rewritten_on_the_primary_only(replica, name), db_file_storage.open(name) as file:
        assert file.read() == SAVED


def test_a_file_deleted_on_the_primary_is_seen_on_the_standby_until_replayed(replica):
    name = save()
    replica.catch_up()
    with replica.replay_paused():
        db_file_storage.delete(name)
        assert db_file_storage.exists(name)
    replica.catch_up()
    assert not db_file_storage.exists(name)
    with pytest.raises(FileNotFoundError):
        db_file_storage.open(name)


# -- read-your-writes: what the caller's transaction wrote stays on the primary --------


def test_inside_atomic_a_file_rewritten_in_the_transaction_is_read_there(replica):
    name = save()
    replica.catch_up()
    with transaction.atomic():
        rewrite_on_the_primary(name)  # inside the block: in the caller's transaction
        with db_file_storage.open(name) as file:
            assert file.read() == REWRITTEN
        assert db_file_storage.size(name) == len(REWRITTEN)


def test_inside_atomic_db_serve_sends_a_file_rewritten_in_the_transaction(replica):
    name = save()
    replica.catch_up()
    with transaction.atomic():
        rewrite_on_the_primary(name)
        response = db_serve(RequestFactory().get("/"), name)
        assert b"".join(response) == REWRITTEN
        response.close()


def test_inside_atomic_a_file_saved_in_the_transaction_is_read_there(replica):
    with transaction.atomic():
        name = save()
        assert db_file_storage.exists(name)
        assert db_file_storage.size(name) == len(SAVED)
        with db_file_storage.open(name) as file:
            assert file.read() == SAVED


def test_after_the_transaction_the_file_is_read_from_the_standby_again(replica):
    name = save()
    replica.catch_up()
    with replica.replay_paused():
        with transaction.atomic():
            rewrite_on_the_primary(name, b"committed with the block")
        # Replay has not reached the commit: the standby still has the bytes before it.
        with db_file_storage.open(name) as file:
            assert file.read() == SAVED


# -- maintenance on the standby ----------------------------------------------------------


def verify() -> str:
    out = io.StringIO()
    call_command("warehouse_verify", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_warehouse_verify_on_the_standby_finds_every_replayed_file_whole(replica):
    DocumentFactory.create_batch(2)
    replica.catch_up()
    assert "verified 2 files" in verify()
    assert "0 dangling, 0 mismatched" in verify()


def test_warehouse_verify_on_the_standby_sees_only_what_was_replayed(replica):
    DocumentFactory()
    replica.catch_up()
    with replica.replay_paused():
        DocumentFactory()
        assert "verified 1 files" in verify()
