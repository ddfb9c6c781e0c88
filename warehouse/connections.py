"""The package's own database connections, for files opened outside the caller's transactions.

A large-object descriptor lives only inside a transaction, and Django runs
in autocommit. A file opened there must not start a transaction on the
caller's connection: every query the caller makes meanwhile would join it,
and what the caller later commits or rolls back would decide the file's
fate (and the file the caller's). So such a file runs on a connection of
the package's own to the same database:

* Reading files share one connection per thread and alias, and its
  transaction. It holds no writes, so it may be ended at any moment (a
  request ends, one reader fails): the readers still open reopen their
  object on their next read.
* Each writable file takes a connection no other file uses meanwhile, and
  owns its transaction: committed or rolled back by that file alone.

They are made from the alias's settings and treated the way Django treats
its own: ``connection_created`` is sent, ``CONN_HEALTH_CHECKS`` is honoured,
and at the start and end of every request the idle ones are closed when
``CONN_MAX_AGE`` says so (or when they failed). Outside a request, with
``CONN_MAX_AGE = 0``, a connection is closed as soon as no file uses it,
unless inside :func:`kept_open` (a management command reading many files).
"""

from __future__ import annotations

import contextlib
import select
import threading
from collections.abc import Iterator

from asgiref.local import Local
from django.core.signals import request_finished, request_started
from django.db import Error as DatabaseError
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

from warehouse.driver import ISOLATION_LEVEL_REPEATABLE_READ as REPEATABLE_READ
from warehouse.objects import database_connection

# Idle connections kept per thread and alias beyond the one in use: enough for a
# reader and a writer side by side, without hoarding after a burst of writers.
MAX_IDLE = 2  # connections

# Per thread (per async context, as Django's own connections): alias -> Pool.
_local = Local()


class OwnConnection:
    """One of the package's connections, and the files on it."""

    def __init__(self, pool: Pool, wrapper: BaseDatabaseWrapper) -> None:
        self.pool = pool
        self.wrapper = wrapper
        self.readers = 0
        self.writer = False
        # Whether its readers' transaction is one reader's alone, in one snapshot.
        self.snapshot = False
        # Bumped whenever its transaction ends, so a reader can tell its descriptor is gone.
        self.generation = 0

    @property
    def idle(self) -> bool:
        return not self.readers and not self.writer


class Pool:
    """The package's connections to one alias in one thread.

    A file may be closed, or collected, in another thread than the one that
    opened it; the lock keeps the bookkeeping (and the ending of a
    transaction) one at a time.
    """

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.lock = threading.RLock()
        self.connections: list[OwnConnection] = []

    def for_reading(self, *, snapshot: bool = False) -> tuple[OwnConnection, int]:
        """The reading connection, its transaction begun; returns it and its generation.

        With ``snapshot``, a connection of the reader's own whose every
        statement sees the same snapshot (REPEATABLE READ): what a first
        query found is what the reads then read, whatever commits meanwhile.
        """
        with self.lock:
            own = None
            if not snapshot:
                own = next(
                    (own for own in self.connections if own.readers and not own.snapshot), None
                )
            if own is None:
                own = self._take_idle(snapshot=snapshot)
                own.readers, own.snapshot = 1, snapshot
            else:
                own.readers += 1
            return own, own.generation

    def for_writing(self) -> OwnConnection:
        """A connection for one writable file alone, its transaction begun."""
        with self.lock:
            own = self._take_idle()
            own.writer = True
            return own

    def release(self, own: OwnConnection, generation: int | None, *, commit: bool) -> None:
        """Give back a file's use of ``own``; the last one ends the transaction.

        A reader whose ``generation`` is over gives back nothing: its
        transaction was ended already. Raises what committing raised.
        """
        with self.lock:
            if own.writer:
                own.writer = False
            elif generation == own.generation and own.readers:
                own.readers -= 1
                if own.readers:
                    return
            else:
                return
            try:
                self._end(own, commit=commit)
            finally:
                self._put_back(own)

    def end_reading(self, own: OwnConnection) -> None:
        """Roll back the shared reading transaction now; its readers reopen when next used."""
        with self.lock:
            if own.readers:
                own.readers = 0
                try:
                    self._end(own, commit=False)
                finally:
                    self._put_back(own)

    def close_obsolete(self, *, request_ended: bool) -> None:
        """What Django's ``close_old_connections`` does, for these connections."""
        with self.lock:
            for own in list(self.connections):
                if own.readers and not own.writer and request_ended:
                    # Readers left open by the request hold a snapshot: end it.
                    self.end_reading(own)
                if own.idle:
                    own.wrapper.close_if_unusable_or_obsolete()
                    if own.wrapper.connection is None:
                        self._discard(own)

    def close_idle(self, *, unless_kept: bool = False) -> None:
        """Close the connections no file uses (``unless_kept``: those not meant to stay open)."""
        with self.lock:
            for own in list(self.connections):
                if own.idle and not (unless_kept and _keep_when_idle(own.wrapper)):
                    self._discard(own)

    # -- inside the lock ----------------------------------------------------------

    def _take_idle(self, *, snapshot: bool = False) -> OwnConnection:
        own = None
        for idle in [own for own in self.connections if own.idle]:
            if not _ended_by_the_server(idle.wrapper):
                own = idle
                break
            self._discard(idle)
        if own is None:
            wrapper = _new_wrapper(self.alias)
            own = OwnConnection(self, wrapper)
            self.connections.append(own)
        try:
            # Health-checks the connection first, when CONN_HEALTH_CHECKS asks for it.
            own.wrapper.set_autocommit(False)
            if snapshot:
                # Sent with the BEGIN psycopg2 sends before the first statement: no round trip.
                own.wrapper.connection.isolation_level = REPEATABLE_READ
        except BaseException:
            self._discard(own)
            raise
        return own

    def _end(self, own: OwnConnection, *, commit: bool) -> None:
        wrapper = own.wrapper
        own.generation += 1
        if wrapper.connection is None or wrapper.connection.closed:
            if commit:
                # The server never said COMMIT: nothing was kept.
                raise OperationalError("the connection was lost before the transaction committed")
            return
        committed = False
        try:
            if commit:
                wrapper.commit()
                committed = True
        finally:
            if not committed:
                # Asked to, or the commit failed: a broken connection loses nothing more.
                with contextlib.suppress(DatabaseError):
                    wrapper.rollback()

    def _put_back(self, own: OwnConnection) -> None:
        wrapper = own.wrapper
        if not own.idle:
            return
        if wrapper.connection is None or wrapper.connection.closed:
            self._discard(own)
            return
        try:
            if own.snapshot:
                # Back to the alias's own (as Django set it from OPTIONS; None: the
                # server's default) before autocommit, where psycopg2 would SET it.
                wrapper.connection.isolation_level = _isolation_level(wrapper)
                own.snapshot = False
            wrapper.set_autocommit(wrapper.settings_dict["AUTOCOMMIT"])
        except DatabaseError:
            self._discard(own)
            return
        idle = [other for other in self.connections if other.idle]
        if len(idle) > MAX_IDLE or not _keep_when_idle(wrapper):
            self._discard(own)

    def _discard(self, own: OwnConnection) -> None:
        with contextlib.suppress(ValueError):
            self.connections.remove(own)
        with contextlib.suppress(DatabaseError):
            own.wrapper.close()


def _new_wrapper(alias: str) -> BaseDatabaseWrapper:
    """A new Django connection to the database behind ``alias``.

    Made from the settings the caller's connection uses right now (a test
    database's name included), as Django's ``ConnectionHandler`` makes its own.
    """
    template = database_connection(alias)
    wrapper = type(template)(template.settings_dict, alias)
    # A file may be closed or collected in another thread; it alone uses this connection then.
    wrapper.inc_thread_sharing()
    return wrapper


def _ended_by_the_server(wrapper: BaseDatabaseWrapper) -> bool:
    """Whether the server ended an idle connection (its backend killed, or a restart).

    An idle connection of the package's is sent nothing (it listens on no
    channel): something to read is the server's last words, or the end of
    the stream. Asked of the socket, without a round trip, so that a
    connection kept from an earlier request fails no later one. Django's
    own connections fail the first request that uses them unless
    ``CONN_HEALTH_CHECKS`` is on; the package's connections, which a
    request may not touch until later, would otherwise fail one more.
    """
    raw = wrapper.connection
    if raw is None:
        return False  # never opened: connects when first used
    if raw.closed:
        return True
    poll = select.poll()  # not select.select(): it refuses descriptors from 1024 up
    poll.register(raw.fileno(), select.POLLIN)
    return bool(poll.poll(0))


def _isolation_level(wrapper: BaseDatabaseWrapper) -> int | None:
    return wrapper.settings_dict.get("OPTIONS", {}).get("isolation_level")


def _keep_when_idle(wrapper: BaseDatabaseWrapper) -> bool:
    """Whether an idle connection stays open: persistent ones, or until the request ends."""
    return (
        wrapper.settings_dict["CONN_MAX_AGE"] != 0
        or getattr(_local, "in_request", False)
        or getattr(_local, "kept_open", 0) > 0
    )


def pool(alias: str) -> Pool:
    """This thread's connections to ``alias``."""
    pools = _pools()
    if alias not in pools:
        pools[alias] = Pool(alias)
    return pools[alias]


def _pools() -> dict[str, Pool]:
    try:
        return _local.pools
    except AttributeError:
        _local.pools = {}
        return _local.pools


@contextlib.contextmanager
def kept_open() -> Iterator[None]:
    """Keep this thread's idle connections open until the block ends, as a request does."""
    _local.kept_open = getattr(_local, "kept_open", 0) + 1
    try:
        yield
    finally:
        _local.kept_open -= 1
        for each in _pools().values():
            each.close_idle(unless_kept=True)


def close_all() -> None:
    """Close this thread's idle connections (before dropping a test database, say)."""
    for each in _pools().values():
        each.close_idle()


def _request_started(**kwargs: object) -> None:
    _local.in_request = True
    for each in _pools().values():
        each.close_obsolete(request_ended=False)


def _request_finished(**kwargs: object) -> None:
    _local.in_request = False
    for each in _pools().values():
        each.close_obsolete(request_ended=True)


request_started.connect(_request_started, dispatch_uid="warehouse.connections.request_started")
request_finished.connect(_request_finished, dispatch_uid="warehouse.connections.request_finished")
