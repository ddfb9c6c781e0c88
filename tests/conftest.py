"""Fixtures that look at PostgreSQL directly, not through the code under test."""

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import hypothesis
import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection, connections, models, transaction
from django.db.backends.signals import connection_created

import warehouse.io
from warehouse import connections as own_connections
from warehouse import streams
from warehouse.io import PREPARING_FACTOR

# `make stress` sets HYPOTHESIS_PROFILE=stress: ten times the examples for the properties
# that scale with the profile (tests/test_hostile_input.py).
hypothesis.settings.register_profile("stress", max_examples=1000)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# A table made by hand, as a legacy schema or another tool would have it.
LEGACY = "warehouse_test_legacy_scan"

# More than a download reads ahead (the queue and the chunk being read, the first of them
# PREPARING_FACTOR chunks on a new backend), twice over: the reader waits for the client.
LONGER_THAN_READ_AHEAD = (
    2 * (streams.READ_AHEAD_CHUNKS + 1 + PREPARING_FACTOR) * streams.STREAM_CHUNK_SIZE
)


class SimulatedError(Exception):
    """Raised by a test to make a block fail."""


def large_object_oids(using: str = "default") -> set[int]:
    """Every large object in the database, from the catalog."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_largeobject_metadata")
        return {oid for (oid,) in cursor.fetchall()}


def large_object_content(loid: int, using: str = "default") -> bytes:
    """An object's bytes, read by the server's own lo_get (not by the code under test)."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT lo_get(%s)", [loid])
        return bytes(cursor.fetchone()[0])


def transaction_state(using: str = "default") -> tuple:
    """What Django knows about the connection's transaction, to compare before and after."""
    connection = connections[using]
    return (
        connection.get_autocommit(),
        connection.in_atomic_block,
        list(connection.savepoint_ids),
        len(connection.atomic_blocks),
        connection.needs_rollback,
    )


def terminate_idle_transactions_of_the_package(using: str = "default") -> int:
    """Kill the server processes of sessions idle in a transaction: the package's, in a test.

    The caller's own connections are in autocommit, so only the package's
    connections (holding a file's transaction) are idle in one.
    """
    deadline = time.monotonic() + 10
    with connections[using].cursor() as cursor:
        while True:
            # A read may be under way (a download reads ahead): wait until it is done.
            # A large-object call is a 'fastpath function call', not 'active'.
            cursor.execute(
                "SELECT pid, state LIKE 'idle in transaction%%' FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state IN ('active', 'fastpath function call', 'idle in transaction', "
                "'idle in transaction (aborted)')"
            )
            sessions = cursor.fetchall()
            if all(idle for _, idle in sessions) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    pids = [pid for pid, idle in sessions if idle]
    terminate_backends(pids, using)
    return len(pids)


def terminate_backends(pids: list[int], using: str = "default") -> None:
    """Kill server processes, as a network failure or a restart would; return once they are gone."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids])
            if not cursor.fetchone()[0]:
                return
            time.sleep(0.01)


def server_in_transaction(using: str = "default") -> bool:
    """Whether PostgreSQL itself sees a transaction open on the connection."""
    import psycopg2.extensions

    raw = connections[using].connection
    return raw.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE


@pytest.fixture
def fresh_backends(monkeypatch):
    """As if every backend had yet to make its first read: the first read asks for more."""
    monkeypatch.setattr(warehouse.io, "_prepared_backends", weakref.WeakKeyDictionary())


@pytest.fixture
def make_object(django_db_blocker):
    """Create a large object with the given bytes (and oid, if given) by SQL; return its oid."""

    def make(content: bytes = b"", *, using: str = "default", oid: int = 0) -> int:
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT lo_from_bytea(%s, %s)", [oid, content])
            return cursor.fetchone()[0]

    return make


@pytest.fixture(autouse=True)
def _unlink_objects_left_by_transactional_tests(request, django_db_blocker):
    """Unlink the objects a transactional test committed.

    Django empties the tables after such a test but knows nothing of large
    objects, which would leak into the next test's counts.
    """
    yield
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    separate = [
        alias
        for alias in ("default", "read_alias")
        if alias in marker.kwargs.get("databases", ["default"])
    ]
    with django_db_blocker.unblock():
        for alias in separate or ["default"]:
            with connections[alias].cursor() as cursor:
                while True:
                    # Batches: every unlink holds a lock until its transaction ends.
                    cursor.execute("SELECT lo_unlink(oid) FROM pg_largeobject_metadata LIMIT 1000")
                    if cursor.rowcount < 1000:
                        break


@pytest.fixture(autouse=True)
def _no_connection_of_the_package_left_open():
    """Outside a request, with CONN_MAX_AGE = 0, the package keeps no idle connection."""
    yield
    left = [own for pool in own_connections._pools().values() for own in pool.connections]
    own_connections.close_all()
    assert not left, "the package left its own connections open"


@contextmanager
def role_that_may_not_read(*tables: str) -> Iterator[None]:
    """Act as a new role that can read every table but ``tables``, and no large object."""
    role = f"warehouse_test_reader_{os.getpid()}"
    # In the test's transaction the role, its grants and SET LOCAL vanish with the
    # rollback; a transactional test commits them, and must undo them by hand.
    rolled_back = connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
        )
        if not cursor.fetchone()[0]:
            pytest.skip("the test database's user may not create roles")
        cursor.execute(f"CREATE ROLE {role}")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        for table in tables:
            cursor.execute(f"REVOKE SELECT ON {table} FROM {role}")
        cursor.execute(f"SET {'LOCAL' if rolled_back else 'SESSION'} ROLE {role}")

    def act_as_the_role(connection, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute(f"SET SESSION ROLE {role}")

    if not rolled_back:
        # The package's own connections log in anew: they must be the role too.
        own_connections.close_all()
        connection_created.connect(act_as_the_role)
    try:
        yield
    finally:
        connection_created.disconnect(act_as_the_role)
        own_connections.close_all()
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
            if not rolled_back:
                cursor.execute(f"DROP OWNED BY {role}")
                cursor.execute(f"DROP ROLE {role}")


# Marks a test that uses the `roles` fixture: its aliases, and real commits (the
# roles' own connections must see the roles and what the test made).
as_roles = pytest.mark.django_db(transaction=True, databases=["default", "writer", "reader"])


@dataclass
class Roles:
    """The roles behind the aliases "writer" and "reader" (tests/settings.py)."""

    writer: str
    reader: str

    def run(self, alias: str, statement: str, *params: object) -> list[tuple]:
        """Run SQL as the role behind ``alias`` ("default": the test's superuser)."""
        with connections[alias].cursor() as cursor:
            # No parameters, no %-interpolation: SQL given by a hint may hold a %.
            cursor.execute(statement, params or None)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture
def roles(request):
    """Create the roles of the aliases "writer" and "reader"; drop them afterwards.

    The writer is no superuser: it may change the rows of every table, as an
    application's role does. The reader may read every table but the
    registry, and no large object: the rest is what tests grant it.
    """
    if request.node.get_closest_marker("django_db") is None:
        pytest.fail("a test with roles needs @as_roles")
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            pytest.skip("creating roles needs a superuser")
    names = Roles(
        writer=settings.DATABASES["writer"]["USER"], reader=settings.DATABASES["reader"]["USER"]
    )
    created = []
    try:
        for alias in ("writer", "reader"):
            role, password = getattr(names, alias), settings.DATABASES[alias]["PASSWORD"]
            names.run("default", f'CREATE ROLE "{role}" LOGIN PASSWORD %s', password)
            created.append(role)
        names.run(
            "default",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
            f'TO "{names.writer}";'
            f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{names.writer}";'
            f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{names.reader}";'
            f'REVOKE SELECT ON warehouse_storedfile FROM "{names.reader}"',
        )
        yield names
    finally:
        for alias in ("writer", "reader"):
            connections[alias].close()
        if created:
            # With what the writer granted onwards (DROP OWNED BY the reader would not).
            names.run(
                "default",
                f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{names.writer}" CASCADE',
            )
        # One role at a time, the reader first: "DROP OWNED BY writer, reader" fails on
        # PostgreSQL 18 ("could not find tuple for default ACL") when a default
        # privilege of the one names the other.
        for role in reversed(created):
            names.run("default", f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')


@contextmanager
def open_transaction_in_another_thread(
    begin: Callable[[], object],
    finish: Callable[[object], None] = lambda result: None,
    *,
    commit_after: float = 30,
) -> Iterator[object]:
    """Run ``begin`` in an atomic block of another thread, and keep it open meanwhile.

    The block runs ``finish(begin's result)`` and commits when the ``with``
    body ends, or after ``commit_after`` seconds if the body is waiting on it.
    """
    started, release = threading.Event(), threading.Event()
    results = []

    def hold_open() -> None:
        try:
            with transaction.atomic():
                results.append(begin())
                started.set()
                release.wait(timeout=commit_after)
                finish(results[0])
        finally:
            connections.close_all()

    other = threading.Thread(target=hold_open)
    other.start()
    try:
        assert started.wait(timeout=30), "the other transaction did not begin"
        yield results[0]
    finally:
        release.set()
        other.join()


@pytest.fixture
def make_model():
    """Declare a model with a file field for one test; forget it afterwards."""
    made = []

    def make(db_table: str) -> type[models.Model]:
        from warehouse.fields import DbFileField

        meta = type("Meta", (), {"app_label": "tests", "db_table": db_table, "managed": False})
        name = "".join(part.title() for part in db_table.replace('"', "").split("_"))
        attrs = {"__module__": "tests.models", "Meta": meta, "scan": DbFileField(auto_delete=False)}
        model = type(name, (models.Model,), attrs)
        made.append(model)
        return model

    yield make
    for model in made:
        del apps.all_models["tests"][model._meta.model_name]
    apps.clear_cache()


@pytest.fixture
def atomic_requests():
    """Every request in a transaction of the default database, as ATOMIC_REQUESTS = True."""
    settings_dict = connections["default"].settings_dict
    settings_dict["ATOMIC_REQUESTS"] = True
    yield
    settings_dict["ATOMIC_REQUESTS"] = False


@pytest.fixture
def previous_storage(tmp_path, settings) -> Path:
    """A site moving in: files in MEDIA_ROOT, read through the STORAGES alias "previous".

    ``WAREHOUSE_PREVIOUS_STORAGE`` names the alias; returns MEDIA_ROOT.
    """
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {
        **settings.STORAGES,
        "previous": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    settings.WAREHOUSE_PREVIOUS_STORAGE = "previous"
    return Path(settings.MEDIA_ROOT)
