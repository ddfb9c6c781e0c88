"""The transaction a large-object descriptor lives in.

PostgreSQL closes every large-object descriptor when the transaction that
opened it ends, and psycopg2 refuses to open one in autocommit. Django runs
in autocommit. So a file needs a transaction, and where it gets one decides
what its writes mean:

* Inside ``transaction.atomic(using=...)`` (or with ``AUTOCOMMIT`` off) a
  file joins the caller's transaction. It is part of it: rolled back with it,
  committed with it, and it must be closed before the block ends.
* In autocommit the files opened on one connection share one transaction,
  an outermost ``atomic`` block that the first file enters and the last one
  to close leaves. Closing one file never ends the transaction under
  another, whatever the order of closing. Queries made on that connection
  while a file is open run in the same transaction, exactly as they would
  inside ``atomic()``.
* A writable file whose ``with`` block exits by an exception dooms the
  shared transaction: it is rolled back when the last file closes, and the
  other files still open refuse further work instead of writing into a
  transaction that will not commit.
* A file closed while an ``atomic`` block entered after it is still active
  hands the transaction over to that block, which then commits or rolls
  back on exit as if it had been the outermost one.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper


class TransactionRolledBackError(OSError):
    """The transaction files shared was rolled back for a reason of Django's, not theirs."""


class _SharedTransaction:
    """An outermost atomic block held open by the files that need it."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        self.atomic = transaction.Atomic(connection.alias, savepoint=False, durable=False)
        self.holders = 0
        self.doomed = False

    def begin(self) -> None:
        self.atomic.__enter__()

    def doom(self) -> None:
        """Roll back at the end; until then Django refuses queries, as after any error."""
        self.doomed = True
        if self._is_innermost():
            self.connection.needs_rollback = True

    @property
    def failed_under_files(self) -> bool:
        """Whether a query on the connection failed, so Django will roll back at the end."""
        return self._is_innermost() and self.connection.needs_rollback and not self.doomed

    def end(self) -> None:
        connection = self.connection
        if self._is_innermost():
            rolled_back_for_others = self.failed_under_files
            if self.doomed:
                connection.needs_rollback = True
            self.atomic.__exit__(None, None, None)
            if rolled_back_for_others:
                raise TransactionRolledBackError(
                    "A query failed while large objects were open on this connection: their "
                    "shared transaction was rolled back, and what the files wrote with it."
                )
        elif self.atomic in connection.atomic_blocks:
            self._hand_over()
        # Otherwise the connection was closed or reset under us: nothing is left to end.

    def _hand_over(self) -> None:
        """Make the oldest block opened inside ours the outermost one.

        Every block nested in an atomic block pushes one savepoint id (or
        None); dropping the first one is what makes Django's ``__exit__`` of
        that block take the outermost path: commit or roll back, then return
        the connection to autocommit.
        """
        connection = self.connection
        connection.atomic_blocks.remove(self.atomic)
        connection.savepoint_ids.pop(0)
        if self.doomed:
            # Without savepoints to roll back to, every block passes the doom outwards
            # (as Django does for a failed query in a savepoint=False block).
            connection.savepoint_ids[:] = [None] * len(connection.savepoint_ids)
            connection.needs_rollback = True

    def _is_innermost(self) -> bool:
        return self.connection.atomic_blocks[-1:] == [self.atomic]


_shared: WeakKeyDictionary[BaseDatabaseWrapper, _SharedTransaction] = WeakKeyDictionary()


class Lease:
    """A file's claim on a transaction; ``release()`` once when the file closes."""

    def __init__(self, shared: _SharedTransaction | None) -> None:
        self._shared = shared
        self._released = False

    @property
    def doomed(self) -> bool:
        """Whether the shared transaction will be rolled back: a file or a query failed."""
        shared = self._shared
        return shared is not None and (shared.doomed or shared.failed_under_files)

    def release(self, *, failed: bool = False) -> None:
        """Give up the claim; the last one ends the shared transaction."""
        if self._released:
            return
        self._released = True
        shared = self._shared
        if shared is None:
            return
        shared.holders -= 1
        if failed:
            shared.doom()
        if shared.holders == 0:
            if _shared.get(shared.connection) is shared:
                del _shared[shared.connection]
            shared.end()


def lease(connection: BaseDatabaseWrapper) -> Lease:
    """Put ``connection`` in a transaction a large object can be opened in."""
    shared = _shared.get(connection)
    if shared is not None and shared._is_innermost():
        shared.holders += 1
        return Lease(shared)
    if connection.in_atomic_block or not connection.get_autocommit():
        return Lease(None)
    shared = _SharedTransaction(connection)
    shared.begin()
    shared.holders = 1
    _shared[connection] = shared
    return Lease(shared)
