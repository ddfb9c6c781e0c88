"""Where a file's descriptor gets its transaction, and that it never leaves one open."""

import contextlib
import gc
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import Error, IntegrityError, connection, connections, transaction

from tests.conftest import (
    SimulatedError,
    large_object_content,
    large_object_oids,
    server_in_transaction,
    transaction_state,
)
from warehouse.io import DbFileIO, open_large_object
from warehouse.storage import db_file_storage
from warehouse.transactions import TransactionRolledBackError

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

AUTOCOMMIT = (True, False, [], 0, False)


def committed_oids() -> set[int]:
    """Objects another connection can see: only committed ones."""
    return large_object_oids(using="replica")


def test_a_file_in_autocommit_commits_when_closed():
    with DbFileIO(0, "wb") as file:
        file.write(b"kept")
        assert file.loid not in committed_oids()
    assert file.loid in committed_oids()


def test_a_file_in_autocommit_leaves_no_transaction_open_after_close(make_object):
    with DbFileIO(make_object(b"x"), "rb") as file:
        file.read()
    assert transaction_state() == AUTOCOMMIT
    assert not server_in_transaction()


def test_a_write_file_whose_block_raises_is_rolled_back():
    objects_before = large_object_oids()
    with pytest.raises(SimulatedError), DbFileIO(0, "wb") as file:
        file.write(b"half an upload")
        raise SimulatedError
    assert large_object_oids() == objects_before
    assert transaction_state() == AUTOCOMMIT


def test_a_read_file_whose_block_raises_still_ends_its_transaction(make_object):
    with pytest.raises(SimulatedError), DbFileIO(make_object(b"x"), "rb"):
        raise SimulatedError
    assert transaction_state() == AUTOCOMMIT
    assert not server_in_transaction()


def test_a_reader_keeps_working_after_a_writer_beside_it_closes(make_object):
    reader, writer = DbFileIO(make_object(b"one"), "rb"), DbFileIO(0, "wb")
    writer.write(b"two")
    writer.close()
    assert reader.read() == b"one"
    reader.close()
    assert large_object_content(writer.loid) == b"two"
    assert transaction_state() == AUTOCOMMIT
    assert not server_in_transaction()


def test_a_writer_keeps_working_after_a_reader_beside_it_closes(make_object):
    reader, writer = DbFileIO(make_object(b"one"), "rb"), DbFileIO(0, "wb")
    reader.close()
    writer.write(b"two")
    writer.close()
    assert large_object_content(writer.loid) == b"two"
    assert transaction_state() == AUTOCOMMIT
    assert not server_in_transaction()


def test_files_opened_together_commit_when_the_last_one_closes():
    first, second = DbFileIO(0, "wb"), DbFileIO(0, "wb")
    first.write(b"1")
    first.close()
    assert first.loid not in committed_oids()
    second.close()
    assert {first.loid, second.loid} <= committed_oids()


def test_a_failed_write_dooms_the_files_open_beside_it(make_object):
    other = DbFileIO(0, "wb")
    other.write(b"written beside a failure")
    with pytest.raises(SimulatedError), DbFileIO(0, "wb") as failing:
        failing.write(b"half")
        raise SimulatedError
    with pytest.raises(OSError, match="doomed"):
        other.write(b"more")
    other.close()
    assert {other.loid, failing.loid}.isdisjoint(large_object_oids())
    assert transaction_state() == AUTOCOMMIT


def test_opening_a_missing_object_does_not_doom_the_files_beside_it():
    writer = DbFileIO(0, "wb")
    with pytest.raises(FileNotFoundError):
        DbFileIO(2**32 - 1, "r+b")
    writer.write(b"unharmed")
    writer.close()
    assert large_object_content(writer.loid) == b"unharmed"


def test_queries_made_while_a_file_is_open_join_its_transaction():
    with pytest.raises(SimulatedError), DbFileIO(0, "wb"):
        get_user_model().objects.create(username="made-during-upload")
        raise SimulatedError
    assert not get_user_model().objects.filter(username="made-during-upload").exists()


def test_on_commit_callbacks_run_when_the_last_file_closes():
    ran = []
    with DbFileIO(0, "wb"):
        transaction.on_commit(lambda: ran.append(True))
        assert ran == []
    assert ran == [True]


def test_a_file_inside_atomic_is_part_of_the_callers_transaction():
    objects_before = large_object_oids()
    with pytest.raises(SimulatedError), transaction.atomic():
        with DbFileIO(0, "wb") as file:
            file.write(b"rolled back with the block")
        assert file.loid in large_object_oids()
        raise SimulatedError
    assert large_object_oids() == objects_before


def test_a_file_inside_atomic_does_not_end_the_callers_transaction():
    with transaction.atomic():
        state = transaction_state()
        with DbFileIO(0, "wb") as file:
            file.write(b"x")
        assert transaction_state() == state
    assert file.loid in committed_oids()


def test_a_file_closed_inside_a_later_atomic_block_hands_its_transaction_over():
    file = DbFileIO(0, "wb")
    file.write(b"handed over")
    with transaction.atomic():
        file.close()
        assert file.loid not in committed_oids()
    assert file.loid in committed_oids()
    assert transaction_state() == AUTOCOMMIT
    assert not server_in_transaction()


def test_a_block_that_took_over_the_transaction_rolls_it_back_on_error():
    file = DbFileIO(0, "wb")
    with pytest.raises(SimulatedError), transaction.atomic():
        file.close()
        raise SimulatedError
    assert file.loid not in large_object_oids()
    assert transaction_state() == AUTOCOMMIT


def test_a_file_opened_inside_a_later_atomic_block_joins_that_block(make_object):
    outer = DbFileIO(make_object(b"x"), "rb")
    with pytest.raises(SimulatedError), transaction.atomic():
        with DbFileIO(0, "wb") as inner:
            inner.write(b"y")
        raise SimulatedError
    assert inner.loid not in large_object_oids()
    assert outer.read() == b"x"
    outer.close()
    assert transaction_state() == AUTOCOMMIT


def test_a_collected_file_warns_and_ends_its_transaction():
    file = DbFileIO(0, "wb")
    file.write(b"dropped")
    loid = file.loid
    with pytest.warns(ResourceWarning):
        del file
        gc.collect()
    assert transaction_state() == AUTOCOMMIT
    assert not server_in_transaction()
    assert large_object_content(loid) == b"dropped"


def test_a_file_outliving_its_transaction_says_so(make_object):
    loid = make_object(b"x")
    with transaction.atomic():
        file = DbFileIO(loid, "rb")
    with pytest.raises(ValueError, match="transaction it was opened in has ended"):
        file.read()
    file.close()
    assert transaction_state() == AUTOCOMMIT


def test_a_missing_object_in_autocommit_leaves_no_transaction_open():
    with pytest.raises(FileNotFoundError):
        DbFileIO(2**32 - 1, "rb")
    assert transaction_state() == AUTOCOMMIT
    assert not server_in_transaction()


def test_a_missing_object_inside_atomic_leaves_the_block_usable(make_object):
    with transaction.atomic():
        with pytest.raises(FileNotFoundError):
            DbFileIO(2**32 - 1, "rb")
        loid = make_object(b"after the miss")
    assert large_object_content(loid) == b"after the miss"


def test_the_connection_is_usable_after_a_file_in_autocommit():
    with DbFileIO(0, "wb") as file:
        file.write(b"x")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def terminate_backend_of(using: str) -> None:
    """Kill the server process behind a connection, as a network failure would."""
    pid = connections[using].connection.info.backend_pid
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_dropped_connection_is_a_database_error_and_commits_nothing():
    with pytest.raises(Error), DbFileIO(0, "wb") as file:
        file.write(b"written before the drop")
        terminate_backend_of("default")
        file.write(b"more")
    connection.close_if_unusable_or_obsolete()
    assert file.loid not in large_object_oids()


def test_closing_a_file_whose_connection_dropped_says_so():
    file = DbFileIO(0, "wb")
    terminate_backend_of("default")
    with pytest.raises(Error):
        file.close()
    assert file.closed
    connection.close_if_unusable_or_obsolete()
    assert transaction_state() == AUTOCOMMIT


def test_a_buffered_write_whose_block_raises_is_rolled_back():
    objects_before = large_object_oids()
    with pytest.raises(SimulatedError), open_large_object(0, "wb") as file:
        file.write(b"half an upload")
        raise SimulatedError
    assert large_object_oids() == objects_before


def test_a_text_write_whose_block_raises_is_rolled_back():
    objects_before = large_object_oids()
    with pytest.raises(SimulatedError), open_large_object(0, "w") as file:
        file.write("half an upload")
        raise SimulatedError
    assert large_object_oids() == objects_before


def test_a_storage_write_whose_block_raises_leaves_the_old_content(make_object):
    name = str(make_object(b"original content"))
    with pytest.raises(SimulatedError), db_file_storage.open(name, "wb") as file:
        file.write(b"HALF")
        raise SimulatedError
    assert large_object_content(int(name)) == b"original content"


def test_a_failed_query_beside_an_open_file_makes_close_say_the_write_was_lost():
    file = DbFileIO(0, "wb")
    file.write(b"written before the query failed")
    with pytest.raises(IntegrityError):
        get_user_model().objects.create(username=None)
    with pytest.raises(OSError, match="doomed"):
        file.write(b"more")
    with pytest.raises(TransactionRolledBackError):
        file.close()
    assert file.loid not in large_object_oids()
    assert transaction_state() == AUTOCOMMIT


def test_a_doom_handed_over_through_nested_blocks_still_rolls_back():
    file = DbFileIO(0, "wb")
    file.write(b"first half ")
    with transaction.atomic(), contextlib.suppress(SimulatedError), transaction.atomic(), file:
        file.write(b"second half")
        raise SimulatedError
    assert file.loid not in large_object_oids()
    assert transaction_state() == AUTOCOMMIT


def test_a_file_collected_in_another_thread_leaves_this_threads_transaction_alone():
    dropped = {}

    def drop_a_file_in_a_cycle():
        file = DbFileIO(0, "wb")
        file.cycle = file  # freed only by the cyclic collector, in whichever thread runs it
        dropped["connection"] = connections["default"]

    gc.disable()
    try:
        worker = threading.Thread(target=drop_a_file_in_a_cycle)
        worker.start()
        worker.join()
        with transaction.atomic():
            state = transaction_state()
            with pytest.warns(ResourceWarning):
                gc.collect()
            assert transaction_state() == state
    finally:
        gc.enable()
        dropped["connection"].inc_thread_sharing()
        dropped["connection"].close()
