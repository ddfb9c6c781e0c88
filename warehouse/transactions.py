"""Which connection and transaction a file uses: decided here, and nowhere else.

A large-object descriptor lives only inside a transaction. Where a file
gets one decides what its writes mean:

* **Inside a transaction the caller opened** on the file's database
  (``atomic()``, or ``AUTOCOMMIT`` off), a writable file joins it: rolled
  back with it, committed with it, and closed before the block ends.
* **Outside one**, a file never touches the caller's connection. It runs on
  a connection of the package's own (:mod:`warehouse.connections`): reading
  files share one and its transaction, a writable file owns one and its
  transaction, committed at its ``close()`` and rolled back on an error in
  its ``with`` block, a failure, or collection without ``close()``.
* **Reads are routed by what was written**, not by whether a block is open.
  An object created, written, truncated or unlinked in the caller's current
  transaction is read there (read-your-writes, tracked below). Every other
  read goes to ``WAREHOUSE_DB_FOR_READ`` on the package's reading
  connection, so it outlives the caller's transaction (``ATOMIC_REQUESTS``
  commits before a response streams). A miss there tries, in order, the
  write alias (a replica not yet caught up) and a transaction the caller
  has open on the read or the write alias (an object made in it by means
  the package did not see, such as SQL in a ``TestCase``).

The caller's connection is only ever read here (``in_atomic_block``,
``get_autocommit()``, ``atomic_blocks``), never changed.
"""

from __future__ import annotations

import itertools
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from asgiref.local import Local
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from warehouse.conf import alias_for_reading, alias_for_writing
from warehouse.connections import OwnConnection, Pool, pool
from warehouse.driver import TRANSACTION_STATUS_IDLE
from warehouse.objects import (
    check_access,
    database_connection,
    file_errors,
    large_object_access,
    not_found,
)


class Seat:
    """A file's place: a connection, and the transaction it lives in there."""

    connection: BaseDatabaseWrapper
    #: Whether the transaction is the caller's (joined), not the package's.
    joined = False
    #: Whether other files' descriptors are in the same transaction of the package's.
    shared = False

    @property
    def ended(self) -> bool:
        """Whether the transaction the descriptor was opened in is over (a reader reopens)."""
        return False

    def pin(self) -> None:
        """The descriptor is open: from now on, ``ended`` tells whether its transaction is over."""

    def failed(self) -> None:
        """An operation failed: end what others share, so that it harms only this file."""

    def release(self, *, commit: bool) -> None:
        """The file is closing: commit or roll back what is the package's to end."""


class CallersSeat(Seat):
    """A file inside a transaction the caller opened; the caller ends it."""

    joined = True
    _opened_in: object = None

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection

    def pin(self) -> None:
        self._opened_in = current_transaction(self.connection)

    @property
    def ended(self) -> bool:
        return (
            self._opened_in is not None and current_transaction(self.connection) != self._opened_in
        )


class ReadingSeat(Seat):
    """A reader on the package's reading connection, sharing its transaction.

    With ``snapshot``, alone in a transaction that sees one snapshot throughout.
    """

    def __init__(self, connections_of_alias: Pool, *, snapshot: bool = False) -> None:
        self._own, self._generation = connections_of_alias.for_reading(snapshot=snapshot)
        self.connection = self._own.wrapper

    @property
    def ended(self) -> bool:
        return self._generation != self._own.generation

    def failed(self) -> None:
        if not self.ended:
            self._own.pool.end_reading(self._own)

    def release(self, *, commit: bool) -> None:
        # Nothing was written: rolling back keeps as much as committing, at the same cost.
        self._own.pool.release(self._own, self._generation, commit=False)

    @property
    def shared(self) -> bool:
        """Whether other readers are in this transaction too."""
        return not self.ended and self._own.readers > 1


class WritingSeat(Seat):
    """A writable file alone on a package connection, owning its transaction."""

    def __init__(self, own: OwnConnection) -> None:
        self._own = own
        self.connection = own.wrapper

    def release(self, *, commit: bool) -> None:
        self._own.pool.release(self._own, None, commit=commit)


def in_callers_transaction(connection: BaseDatabaseWrapper) -> bool:
    """Whether the caller has a transaction open on ``connection`` (read, never changed)."""
    if connection.in_atomic_block:
        return True
    if connection.connection is None:
        # No connection yet: one with AUTOCOMMIT off begins a transaction when opened.
        return not connection.settings_dict["AUTOCOMMIT"]
    return not connection.get_autocommit()


def for_writing(using: str | None = None) -> Seat:
    """The seat of a writable file on ``using`` (the write alias by default)."""
    connection = database_connection(using or alias_for_writing())
    if in_callers_transaction(connection):
        return CallersSeat(connection)
    return WritingSeat(pool(connection.alias).for_writing())


Probe = Callable[[BaseDatabaseWrapper, int], Any]


def for_reading(
    loid: int, using: str | None = None, *, probe: Probe | None = None, snapshot: bool = False
) -> tuple[Seat, Any]:
    """Where a file reading ``loid`` is seated, and what ``probe`` found there.

    ``probe(connection, loid)`` answers ``exists`` and ``may_read`` in one
    query (by default :func:`~warehouse.objects.large_object_access`; the
    view asks the registry's facts in the same query). Raises
    ``FileNotFoundError`` when no place in the routing order has the object,
    and ``PermissionError`` when the first that has it may not read it.

    With ``snapshot``, a transaction of the package's is the reader's alone
    and sees one snapshot: the bytes read are those ``probe`` described,
    even if a rewrite commits in between (the caller's transaction is the
    caller's to isolate).
    """
    order = _reading_order(loid, using, snapshot)
    return _first_that_has(loid, order, probe or large_object_access)


def open_for_reading(loid: int, using: str | None = None) -> tuple[Seat, Any]:
    """Seat a reader of ``loid`` and open its descriptor there (``lobject``, mode ``rb``).

    Where a failed open would harm nobody, nothing is asked first: a reader
    alone in a new transaction of the package's opens at once. If the
    object is missing there, that transaction alone is rolled back and the
    places after it in the routing order are asked as :func:`for_reading`
    does; if it may not be read, that is the answer. In the caller's
    transaction, or one that other readers share, a failed open would abort
    it for everyone: there the question comes first.
    """
    order = _reading_order(loid, using, snapshot=False)
    seat = next(order)()
    if isinstance(seat, ReadingSeat) and not seat.shared:
        try:
            return seat, _open_reader(seat, loid)
        except FileNotFoundError as miss:
            # The frames the miss passed through hold it: cleared, so that nothing
            # waits for the cycle collector (an unclosed file warns when dropped).
            _clear_frames(miss)
            seat.release(commit=False)  # maybe not replicated yet: the places after it
        except BaseException:
            seat.release(commit=False)
            raise
    else:
        order = itertools.chain([lambda: seat], order)
    seat, _ = _first_that_has(loid, order, large_object_access)
    try:
        return seat, _open_reader(seat, loid)
    except BaseException:
        seat.release(commit=False)
        raise


def _first_that_has(
    loid: int, order: Iterator[Callable[[], Seat]], probe: Probe
) -> tuple[Seat, Any]:
    for make_seat in order:
        seat = make_seat()
        try:
            found = probe(seat.connection, loid)
            if found.exists:
                check_access(found, loid, writable=False)
                return seat, found
        except BaseException:
            seat.release(commit=False)
            raise
        seat.release(commit=False)
    raise not_found(loid)


def _open_reader(seat: Seat, loid: int) -> Any:
    # Always binary: psycopg2's text mode decodes each read on its own and can
    # split a UTF-8 character.
    with file_errors(seat.connection, loid):
        return seat.connection.connection.lobject(loid, "rb")


def _clear_frames(error: BaseException | None) -> None:
    while error is not None:
        traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__


def aliases_for_looking(loid: int, using: str | None = None) -> list[str]:
    """Where a one-shot look at ``loid`` (exists, size, times) asks, in order.

    A query on the caller's connection sees the caller's open transaction
    too, and leaves none open in autocommit, so one alias each is enough.
    """
    written = _written_on(loid)
    if written is not None:
        return [written.alias]
    return _aliases(using)


def _reading_order(loid: int, using: str | None, snapshot: bool) -> Iterator[Callable[[], Seat]]:
    written = _written_on(loid)
    if written is not None:
        yield lambda: CallersSeat(written)
        return
    aliases = _aliases(using)
    for alias in aliases:
        yield lambda alias=alias: ReadingSeat(pool(alias), snapshot=snapshot)
    for alias in aliases:
        connection = database_connection(alias)
        if in_callers_transaction(connection):
            yield lambda connection=connection: CallersSeat(connection)


def _aliases(using: str | None) -> list[str]:
    """``using`` alone, or the read alias, then the write alias (once if they are one)."""
    if using:
        return [using]
    return list(dict.fromkeys([alias_for_reading(), alias_for_writing()]))


# -- read-your-writes -------------------------------------------------------------

# Per thread, as the caller's connections: alias -> (connection, the transaction it
# was in, see current_transaction, the oids created, written, truncated or unlinked in it).
_written = Local()


def note_written(connection: BaseDatabaseWrapper, loid: int) -> None:
    """Remember that ``loid`` changed in the caller's transaction open on ``connection``."""
    current = current_transaction(connection)
    if current is None:
        return
    written = _written_here()
    seen_on, seen, oids = written.get(connection.alias, (None, None, set()))
    if seen_on is not connection or seen != current:
        oids = set()
    oids.add(loid)
    written[connection.alias] = (connection, current, oids)


def written_in_callers_transaction(loid: int) -> bool:
    """Whether ``loid`` was made or changed in a transaction of the caller's still open."""
    return _written_on(loid) is not None


def _written_on(loid: int) -> BaseDatabaseWrapper | None:
    """The caller's connection whose open transaction changed ``loid``, if any."""
    for alias, (connection, seen, oids) in _written_here().items():
        if (
            loid in oids
            and connections[alias] is connection
            and current_transaction(connection) == seen
        ):
            return connection
    return None


def _written_here() -> dict[str, tuple[BaseDatabaseWrapper, object, set[int]]]:
    try:
        return _written.by_alias
    except AttributeError:
        _written.by_alias = {}
        return _written.by_alias


def current_transaction(connection: BaseDatabaseWrapper) -> object | None:
    """What tells the transaction open on ``connection`` from the next one, or None.

    libpq knows, without a round trip, whether the server has a transaction
    open; the outermost atomic block tells one Django transaction from the
    next on the same connection.
    """
    raw = connection.connection
    if raw is None or raw.closed:
        return None
    if raw.get_transaction_status() == TRANSACTION_STATUS_IDLE:
        return None
    outermost = connection.atomic_blocks[0] if connection.in_atomic_block else None
    return (id(raw), outermost)
