"""Where a file's descriptor gets its transaction, and that the caller's connection never notices.

Every test here commits for real (``transaction=True``): autocommit is the point.
"""

import errno
import gc
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.signals import request_finished, request_started
from django.db import OperationalError, connection, connections, transaction
from django.db.backends.signals import connection_created
from django.db.transaction import TransactionManagementError
from django.test import RequestFactory, override_settings

from tests.conftest import (
    LONGER_THAN_READ_AHEAD,
    SimulatedError,
    large_object_content,
    large_object_oids,
    role_that_may_not_read,
    server_in_transaction,
    terminate_backends,
    terminate_idle_transactions_of_the_package,
    transaction_state,
)
from tests.factories import DocumentFactory
from tests.models import Document, Folder
from warehouse import connections as own_connections
from warehouse import streams, transactions
from warehouse.io import MAX_READ, MAX_SIZE, DbFileIO, open_large_object
from warehouse.storage import db_file_storage, oid_of
from warehouse.views import db_serve

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica", "read_alias"])

AUTOCOMMIT = (True, False, [], 0, False)


def committed_oids() -> set[int]:
    """Objects another connection can see: only committed ones."""
    return large_object_oids(using="replica")


def committed_usernames() -> set[str]:
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT username FROM auth_user")
        return {name for (name,) in cursor.fetchall()}


# -- a file outside the caller's transaction --------------------------------------


def test_a_writable_file_in_autocommit_commits_when_closed():
    with DbFileIO(0, "wb") as file:
        file.write(b"kept")
        assert file.loid not in committed_oids()
    assert large_object_content(file.loid) == b"kept"


def test_an_open_file_leaves_the_callers_connection_in_autocommit(make_object):
    with DbFileIO(make_object(b"x"), "rb"), DbFileIO(0, "wb"):
        assert transaction_state() == AUTOCOMMIT
        assert not server_in_transaction()


def test_queries_made_while_a_file_is_open_commit_at_once():
    with DbFileIO(0, "wb"):
        get_user_model().objects.create(username="made-during-upload")
        assert "made-during-upload" in committed_usernames()


def test_a_failed_upload_does_not_roll_back_a_query_made_beside_it():
    with pytest.raises(SimulatedError), DbFileIO(0, "wb") as file:
        get_user_model().objects.create(username="kept")
        raise SimulatedError
    assert "kept" in committed_usernames()
    assert file.loid not in large_object_oids()


def test_a_write_file_whose_block_raises_is_rolled_back():
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


def test_a_missing_object_leaves_no_transaction_open():
    with pytest.raises(FileNotFoundError):
        DbFileIO(2**32 - 1, "rb")
    with pytest.raises(FileNotFoundError):
        DbFileIO(2**32 - 1, "r+b")
    assert transaction_state() == AUTOCOMMIT
    assert not server_in_transaction()


def test_a_missing_object_inside_atomic_leaves_the_block_usable(make_object):
    with transaction.atomic():
        with pytest.raises(FileNotFoundError):
            DbFileIO(2**32 - 1, "r+b")
        loid = make_object(b"after the miss")
    assert large_object_content(loid) == b"after the miss"


def test_readers_share_one_connection_of_the_package(make_object):
    first, second = DbFileIO(make_object(b"1"), "rb"), DbFileIO(make_object(b"2"), "rb")
    with connections["replica"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%%'"
        )
        assert cursor.fetchone()[0] == 1
    assert (first.read(), second.read()) == (b"1", b"2")
    first.close()
    second.close()


def test_a_reader_whose_transaction_was_ended_reopens_where_it_was(make_object):
    reader = DbFileIO(make_object(b"0123456789" * 10), "rb")
    assert reader.read(4) == b"0123"
    terminate_idle_transactions_of_the_package()
    with pytest.raises(OperationalError):
        reader.read(20)  # more than a first read may have read past what it returned
    assert reader.read(3) == b"456"
    reader.close()


def test_a_failed_writer_harms_no_other_open_file(make_object):
    reader, writer = DbFileIO(make_object(b"read"), "rb"), DbFileIO(0, "wb")
    writer.write(b"kept")
    with pytest.raises(SimulatedError), DbFileIO(0, "wb") as failing:
        failing.write(b"half")
        raise SimulatedError
    writer.close()
    assert reader.read() == b"read"
    reader.close()
    assert large_object_content(writer.loid) == b"kept"
    assert failing.loid not in large_object_oids()


def test_each_writer_commits_on_its_own_close():
    first, second = DbFileIO(0, "wb"), DbFileIO(0, "wb")
    first.write(b"1")
    first.close()
    assert first.loid in committed_oids()
    assert second.loid not in committed_oids()
    second.close()
    assert second.loid in committed_oids()


def test_a_writer_collected_without_close_is_rolled_back():
    file = DbFileIO(0, "wb")
    file.write(b"never closed")
    loid = file.loid
    with pytest.warns(ResourceWarning):
        del file
        gc.collect()
    assert loid not in large_object_oids()


def test_a_writer_closed_in_another_thread_commits():
    file = DbFileIO(0, "wb")
    file.write(b"closed elsewhere")
    closer = threading.Thread(target=file.close)
    closer.start()
    closer.join()
    assert large_object_content(file.loid) == b"closed elsewhere"
    assert not server_in_transaction()


def test_a_thread_reused_after_its_file_was_collected_elsewhere_works(make_object):
    loid = make_object(b"still readable")
    with ThreadPoolExecutor(max_workers=1) as pool:

        def drop_a_file_in_a_cycle():
            file = DbFileIO(0, "wb")
            file.write(b"dropped")
            file.cycle = file  # freed only by the cyclic collector, in whichever thread runs it

        def work_after_it():
            try:
                Folder.objects.create(name="after")
                with DbFileIO(loid, "rb") as file:
                    return file.read(), transaction_state(), server_in_transaction()
            finally:
                connections.close_all()

        gc.disable()
        try:
            pool.submit(drop_a_file_in_a_cycle).result()
            with pytest.warns(ResourceWarning):
                gc.collect()
        finally:
            gc.enable()
        assert pool.submit(work_after_it).result() == (b"still readable", AUTOCOMMIT, False)
    assert Folder.objects.filter(name="after").exists()


def test_a_durable_block_opens_while_a_file_is_open(make_object):
    with DbFileIO(make_object(b"x"), "rb"), transaction.atomic(durable=True):
        Folder.objects.create()
    assert Folder.objects.count() == 1


def test_select_for_update_outside_atomic_still_raises_while_a_file_is_open(make_object):
    with DbFileIO(make_object(b"x"), "rb"), pytest.raises(TransactionManagementError):
        list(Folder.objects.select_for_update())


def test_on_commit_runs_at_once_in_autocommit_while_a_file_is_open(make_object):
    ran = []
    with DbFileIO(make_object(b"x"), "rb"):
        transaction.on_commit(lambda: ran.append(True))
        assert ran == [True]


# -- a file inside the caller's transaction ----------------------------------------


def test_a_file_inside_atomic_is_part_of_the_callers_transaction():
    objects_before = large_object_oids()
    with pytest.raises(SimulatedError), transaction.atomic():
        with DbFileIO(0, "wb") as file:
            file.write(b"rolled back with the block")
        assert file.loid in large_object_oids()
        raise SimulatedError
    assert large_object_oids() == objects_before


def test_a_file_inside_atomic_commits_with_the_block():
    with transaction.atomic():
        state = transaction_state()
        with DbFileIO(0, "wb") as file:
            file.write(b"x")
        assert transaction_state() == state
        assert file.loid not in committed_oids()
    assert file.loid in committed_oids()


def test_a_file_outliving_its_callers_transaction_says_so():
    with transaction.atomic():
        file = DbFileIO(0, "wb")
    with pytest.raises(ValueError, match="transaction it was opened in has ended"):
        file.write(b"late")
    file.close()
    assert transaction_state() == AUTOCOMMIT


def test_the_package_writes_no_state_of_the_callers_connection(make_object):
    loid = make_object(b"x")
    watched = connections["default"]
    written = []

    class Watched(type(watched)):
        def __setattr__(self, name, value):
            if self is watched:
                written.append(name)
            super().__setattr__(name, value)

    watched.ensure_connection()
    original, watched.__class__ = watched.__class__, Watched
    try:
        with DbFileIO(loid, "rb") as file:
            file.read()
        with DbFileIO(0, "wb") as file:
            file.write(b"y")
        assert written == []
        with transaction.atomic():
            before = list(written)
            with DbFileIO(0, "wb") as file:
                file.write(b"joined")
            with db_file_storage.open(str(loid)) as file:
                file.read()
            assert written == before
    finally:
        watched.__class__ = original


# -- routing reads ------------------------------------------------------------------


@pytest.fixture
def the_same_oid_on_both_databases(make_object):
    """One oid holding different bytes on the write and on the read database."""
    loid = make_object(b"on the write database")
    make_object(b"on the read database", using="read_alias", oid=loid)
    return str(loid)


@override_settings(WAREHOUSE_DB_FOR_READ="read_alias")
def test_reads_go_to_the_read_alias(the_same_oid_on_both_databases):
    with db_file_storage.open(the_same_oid_on_both_databases) as file:
        assert file.read() == b"on the read database"


@override_settings(WAREHOUSE_DB_FOR_READ="read_alias")
def test_reads_inside_atomic_on_the_write_alias_still_go_to_the_read_alias(
    the_same_oid_on_both_databases,
):
    with transaction.atomic(), db_file_storage.open(the_same_oid_on_both_databases) as file:
        assert file.read() == b"on the read database"


@override_settings(WAREHOUSE_DB_FOR_READ="read_alias")
def test_an_object_written_in_the_callers_transaction_is_read_there(
    the_same_oid_on_both_databases,
):
    name = the_same_oid_on_both_databases
    with transaction.atomic():
        with db_file_storage.open(name, "wb") as file:
            file.write(b"written in this transaction")
        with db_file_storage.open(name) as file:
            assert file.read() == b"written in this transaction"
        assert db_file_storage.size(name) == len(b"written in this transaction")


@override_settings(WAREHOUSE_DB_FOR_READ="read_alias")
def test_after_that_transaction_reads_go_to_the_read_alias_again(
    the_same_oid_on_both_databases,
):
    name = the_same_oid_on_both_databases
    with transaction.atomic(), db_file_storage.open(name, "wb") as file:
        file.write(b"written")
    with db_file_storage.open(name) as file:
        assert file.read() == b"on the read database"


@override_settings(WAREHOUSE_DB_FOR_READ="read_alias")
def test_a_file_saved_in_the_callers_transaction_is_read_back_before_it_commits():
    with transaction.atomic():
        name = db_file_storage.save("new.txt", ContentFile(b"uncommitted"))
        assert db_file_storage.exists(name)
        with db_file_storage.open(name) as file:
            assert file.read() == b"uncommitted"


@override_settings(WAREHOUSE_DB_FOR_READ="read_alias")
def test_a_read_the_replica_has_not_caught_up_with_falls_back_to_the_write_alias():
    name = db_file_storage.save("lagging.txt", ContentFile(b"only on the primary"))
    with db_file_storage.open(name) as file:
        assert file.read() == b"only on the primary"


@override_settings(WAREHOUSE_DB_FOR_READ="read_alias")
def test_db_serve_under_atomic_requests_reads_from_the_read_alias(the_same_oid_on_both_databases):
    request = RequestFactory().get("/")
    with transaction.atomic():
        response = db_serve(request, the_same_oid_on_both_databases)
    assert b"".join(response) == b"on the read database"
    response.close()


# -- requests -------------------------------------------------------------------------


# Django's FieldFile leaves the file open after read(): the warning is the point.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_field_file_left_open_in_an_autocommit_view_loses_no_row(live_server):
    document = DocumentFactory(file=ContentFile(b"left open", name="open.txt"))
    for _ in range(3):
        with urllib.request.urlopen(
            f"{live_server.url}/read-then-create/{document.pk}"
        ) as response:
            assert response.read() == b"left open"
    assert Folder.objects.using("replica").count() == 3
    gc.collect()  # the FieldFiles are in reference cycles with their instances


def test_file_response_of_a_field_file_streams_under_atomic_requests(live_server, atomic_requests):
    content = bytes(range(256)) * 4096  # 1 MiB: more than one chunk
    document = DocumentFactory(file=ContentFile(content, name="big.bin"))
    with urllib.request.urlopen(f"{live_server.url}/document/{document.pk}") as response:
        assert response.status == 200
        assert response.read() == content


# -- failures: the first cause, and the thread carries on ---------------------------


def test_a_backend_killed_mid_read_is_an_operational_error_and_the_thread_carries_on(
    make_object,
):
    loid = make_object(b"0123456789")
    file = DbFileIO(loid, "rb")
    assert file.read(2) == b"01"
    assert terminate_idle_transactions_of_the_package() == 1
    with pytest.raises(OperationalError):
        file.read(8)  # more than a first read may have read past what it returned
    file.close()
    Folder.objects.create()
    with DbFileIO(loid, "rb") as again:
        assert again.read() == b"0123456789"
    assert transaction_state() == AUTOCOMMIT


def test_a_backend_killed_mid_write_keeps_nothing_and_the_thread_carries_on():
    with pytest.raises(OperationalError), DbFileIO(0, "wb") as file:
        file.write(b"before the kill")
        terminate_idle_transactions_of_the_package()
        file.write(b"after")
    assert file.loid not in large_object_oids()
    name = db_file_storage.save("next.txt", ContentFile(b"next"))
    assert db_file_storage.open(name).read() == b"next"
    assert transaction_state() == AUTOCOMMIT


def test_closing_a_writer_whose_backend_was_killed_says_the_write_was_lost():
    file = DbFileIO(0, "wb")
    file.write(b"unsaved")
    terminate_idle_transactions_of_the_package()
    with pytest.raises(OperationalError):
        file.close()
    assert file.closed
    assert file.loid not in large_object_oids()


def test_a_backend_killed_mid_stream_ends_the_body_and_the_next_download_works(monkeypatch):
    # One window for the whole body, however long the kill takes: a new window
    # would begin on a new connection, and the body would go on from there.
    monkeypatch.setattr(streams, "SLOW_CLIENT_SECONDS", 3600)
    monkeypatch.setattr(streams, "WINDOW_SECONDS", 3600)
    size = LONGER_THAN_READ_AHEAD  # so that some of it is read after the kill
    name = db_file_storage.save("stream.bin", ContentFile(b"x" * size))
    request = RequestFactory().get("/")
    response = db_serve(request, name)
    body = iter(response)
    next(body)
    terminate_idle_transactions_of_the_package()
    with pytest.raises(OperationalError):
        for _ in body:  # chunks read ahead before the kill may still come first
            pass
    response.close()
    again = db_serve(request, name)
    assert b"".join(again) == b"x" * size
    again.close()
    assert transaction_state() == AUTOCOMMIT


@pytest.fixture
def statement_timeout():
    """Every new connection of the package gives up on a statement after 20 ms.

    Enough for any query it makes, too little to read 64 MiB in one call.
    """

    def set_timeout(connection, **kwargs):
        if connection is not connections[connection.alias]:  # not the caller's own
            with connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = '20ms'")

    connection_created.connect(set_timeout)
    yield
    connection_created.disconnect(set_timeout)


def test_a_statement_timeout_during_a_read_stays_a_timeout(make_object, statement_timeout):
    loid = make_object(b"x" * MAX_READ)
    file = DbFileIO(loid, "rb")
    with pytest.raises(OperationalError) as raised:
        file.read(MAX_READ)
    assert "statement timeout" in str(raised.value)
    file.close()  # raises nothing more
    assert transaction_state() == AUTOCOMMIT


def test_a_statement_timeout_inside_atomic_stays_a_timeout_and_close_adds_nothing(make_object):
    loid = make_object(b"x" * MAX_READ)
    with (
        pytest.raises(OperationalError) as raised,
        transaction.atomic(),
        DbFileIO(loid, "r+b") as file,
    ):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = '20ms'")
        file.read(MAX_READ)
    assert "statement timeout" in str(raised.value)
    assert transaction_state() == AUTOCOMMIT


def test_an_object_the_role_may_not_read_is_a_permission_error(make_object):
    loid = make_object(b"not for this role")
    with role_that_may_not_read(), pytest.raises(PermissionError):
        DbFileIO(loid, "rb")


def test_a_permission_error_leaves_the_callers_transaction_usable(make_object):
    loid = make_object(b"not for this role")
    with role_that_may_not_read(), transaction.atomic():
        with pytest.raises(PermissionError):
            DbFileIO(loid, "r+b")
        assert Folder.objects.count() == 0  # the transaction was not aborted


def test_an_object_the_role_may_not_read_still_exists(make_object):
    loid = make_object(b"not for this role")
    with role_that_may_not_read():
        assert db_file_storage.exists(str(loid))


def test_db_serve_answers_404_for_an_object_the_role_may_not_read(make_object, caplog):
    loid = make_object(b"not for this role")
    with role_that_may_not_read(), pytest.raises(Exception) as raised:
        db_serve(RequestFactory().get("/"), str(loid))
    assert type(raised.value).__name__ == "Http404"
    assert "may not read" in caplog.text


# -- limits and names ---------------------------------------------------------------


def test_max_size_is_postgresqls_limit():
    assert MAX_SIZE == (2**31 - 1) * 2048


@pytest.mark.parametrize(
    "operation",
    [
        lambda file: file.seek(MAX_SIZE + 1),
        lambda file: file.seek(MAX_SIZE - 1, 2) if file.write(b"ab") else None,
        lambda file: file.truncate(MAX_SIZE + 1),
    ],
    ids=["seek", "seek-from-end", "truncate"],
)
def test_a_position_past_the_limit_is_einval_and_aborts_nothing(operation):
    with transaction.atomic(), DbFileIO(0, "w+b") as file:
        with pytest.raises(OSError) as raised:
            operation(file)
        assert raised.value.errno == errno.EINVAL
        file.write(b"still usable")
        Folder.objects.create()
    assert Folder.objects.count() == 1


def test_a_write_past_the_limit_is_efbig():
    with DbFileIO(0, "wb") as file:
        file.seek(MAX_SIZE)
        with pytest.raises(OSError) as raised:
            file.write(b"x")
        assert raised.value.errno == errno.EFBIG


def test_a_seek_to_the_limit_itself_is_allowed():
    with DbFileIO(0, "wb") as file:
        assert file.seek(MAX_SIZE) == MAX_SIZE


def test_a_name_that_is_not_a_str_is_refused_before_anything_is_written():
    objects_before = large_object_oids()
    with pytest.raises(TypeError):
        db_file_storage.save(b"", ContentFile(b"x"))
    assert large_object_oids() == objects_before
    assert not Document.objects.exists()


# -- the package's connections follow Django's rules --------------------------------


@pytest.fixture
def connection_settings():
    """Change CONN_MAX_AGE / CONN_HEALTH_CHECKS of the default alias for one test."""
    settings_dict = connections["default"].settings_dict
    saved = dict(settings_dict)
    yield settings_dict
    settings_dict.update(saved)
    own_connections.close_all()


def package_connection_pids() -> list[int]:
    return [
        own.wrapper.connection.info.backend_pid
        for pool in own_connections._pools().values()
        for own in pool.connections
        if own.wrapper.connection is not None
    ]


def read_in_a_request(loid: int) -> bytes:
    request_started.send(sender=None)
    try:
        with DbFileIO(loid, "rb") as file:
            return file.read()
    finally:
        request_finished.send(sender=None)


def test_with_conn_max_age_0_the_reading_connection_closes_at_request_end(
    make_object, connection_settings
):
    connection_settings["CONN_MAX_AGE"] = 0
    assert read_in_a_request(make_object(b"x")) == b"x"
    assert package_connection_pids() == []


def test_persistent_reading_connections_are_reused_across_requests(
    make_object, connection_settings
):
    connection_settings["CONN_MAX_AGE"] = None
    loid = make_object(b"x")
    read_in_a_request(loid)
    first = package_connection_pids()
    read_in_a_request(loid)
    assert package_connection_pids() == first != []


def test_health_checks_replace_a_persistent_connection_that_died_between_requests(
    make_object, connection_settings
):
    connection_settings.update(CONN_MAX_AGE=None, CONN_HEALTH_CHECKS=True)
    loid = make_object(b"x")
    read_in_a_request(loid)
    (dead,) = package_connection_pids()
    terminate_backends([dead], using="replica")
    assert read_in_a_request(loid) == b"x"
    assert dead not in package_connection_pids()


# -- one snapshot for a download --------------------------------------------------------


def isolation_of(seat) -> str:
    with seat.connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('transaction_isolation')")
        return cursor.fetchone()[0]


def test_a_snapshot_reader_sees_one_snapshot_on_a_connection_of_its_own():
    loid = oid_of(db_file_storage.save("x.bin", ContentFile(b"x")))
    shared, _ = transactions.for_reading(loid)
    alone, _ = transactions.for_reading(loid, snapshot=True)
    try:
        assert isolation_of(alone) == "repeatable read"
        assert alone.connection is not shared.connection
    finally:
        alone.release(commit=False)
        shared.release(commit=False)


def test_a_download_gives_its_connection_back_at_the_isolation_level_of_the_alias():
    name = db_file_storage.save("x.bin", ContentFile(b"x"))
    with own_connections.kept_open():
        db_serve(RequestFactory().get("/"), name).close()
        seat, _ = transactions.for_reading(oid_of(name))
        try:
            assert isolation_of(seat) == "read committed"
        finally:
            seat.release(commit=False)
