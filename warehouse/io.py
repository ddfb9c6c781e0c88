"""File objects over PostgreSQL large objects, through psycopg2's ``connection.lobject()``.

``DbFileIO`` is a raw binary file in the sense of Python's ``io`` module:
wrap it in ``io.BufferedReader``/``BufferedWriter``/``BufferedRandom`` and
``io.TextIOWrapper`` (or call :func:`open_large_object`, which does that the
way the built-in ``open()`` does) for buffering and text.

Transactions: a descriptor lives only inside a transaction. Inside a
transaction the caller opened, a writable file is part of it; outside one, a
file runs on a connection of the package's own and never touches the
caller's. :mod:`warehouse.transactions` says exactly where each file goes.
"""

from __future__ import annotations

import contextlib
import errno
import io
import operator
import threading
import warnings
import weakref
from typing import TYPE_CHECKING, Any

from warehouse import transactions
from warehouse.driver import TRANSACTION_STATUS_INERROR as _FAILED
from warehouse.grants import grant_to_read_roles
from warehouse.objects import (
    check_access,
    file_errors,
    large_object_access,
    unlink_known_large_object,
    validate_loid,
)

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

# PostgreSQL's MAX_LARGE_OBJECT_SIZE: INT_MAX pages of LOBLKSIZE (2 KiB) bytes.
MAX_SIZE = (2**31 - 1) * 2048  # bytes
# The server refuses a single lo_read of 1 GiB or more; reads are cut well below.
MAX_READ = 64 * 1024**2  # bytes
# Large enough that a round trip per write costs little, small enough to hold in memory.
CHUNK_SIZE = 1024**2  # bytes
# Every read asks for this much (reads and writes in the same chunks). Measured on a
# prepared backend (read_size_to_ask): 1 MiB files read in 1.0-1.3 ms per 1 MiB call
# against 1.3-1.6 ms in four 256 KiB calls, and 64 MiB files 1.4x as fast.
READ_SIZE = CHUNK_SIZE  # bytes
# How much more than a read's size a backend's first read of that size asks for: see
# read_size_to_ask(). Per psycopg2 connection (one backend), the largest read its heap
# is ready for; reads above the cap are rare, and their buffers mmapped anyway.
PREPARING_FACTOR = 4
_prepared_backends: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PREPARED_UP_TO = 4 * 1024**2  # bytes: asks up to 16 MiB, below glibc's largest mmap threshold
# What open_large_object() buffers; Django reads in 64 KiB chunks, a round trip each without it.
DEFAULT_BUFFER_SIZE = READ_SIZE


def read_size_to_ask(connection: BaseDatabaseWrapper, size: int, limit: int | None = None) -> int:
    """How much to ask ``lo_read`` for on ``connection`` to read ``size`` (never over ``limit``).

    ``size``, except on a backend's first read of that size, which asks for
    ``PREPARING_FACTOR`` times as much. A PostgreSQL backend (glibc's malloc)
    grows its heap for the buffers of every ``lo_read`` (the bytes read and
    the message that sends them, twice their size) and trims it again after,
    four ``brk`` calls and their page faults per 256 KiB read (counted with
    strace), until it has once freed a block large enough: that raises
    malloc's mmap and trim thresholds for the rest of the backend's life. The
    buffer is as large as what was asked, whatever the object holds, so one
    read of four times the size prepares the backend even on a small object.
    Measured here: 256 KiB reads on a fresh backend ran at 200-300 MiB/s
    before that block, 600-900 after it; a 1 MiB read took 4-6 ms after a
    first read of 2 MiB and 1.0-1.3 ms after one of 4 MiB or more. The block
    costs little more than its allocation: ``lo_read`` allocates what it was
    asked for and fills what the object has.
    """
    backend = connection.connection  # psycopg2's: one per backend
    if backend is None or size > _PREPARED_UP_TO or _prepared_backends.get(backend, 0) >= size:
        return size if limit is None else min(size, limit)
    if limit is not None and limit < PREPARING_FACTOR * size:
        return min(size, limit)
    _prepared_backends[backend] = size
    return PREPARING_FACTOR * size


_MODE_LETTERS = frozenset("rwax")
_ENDED_TRANSACTION = ("lobject isn't valid anymore", "can't use a lobject outside of transactions")


def _parse_mode(mode: str) -> tuple[bool, bool, str]:
    """Return (readable, writable, letter) for a binary mode like ``open()``'s."""
    if not isinstance(mode, str):
        raise TypeError(f"mode must be str, not {type(mode).__name__}")
    chars = set(mode)
    letters = chars & _MODE_LETTERS
    if "t" in chars:
        raise ValueError(f"DbFileIO is binary; wrap it in io.TextIOWrapper for mode {mode!r}")
    if len(chars) != len(mode) or not chars <= {"r", "w", "a", "x", "b", "+"} or len(letters) != 1:
        raise ValueError(f"invalid mode: {mode!r}")
    if "b" not in chars:
        raise ValueError(f"DbFileIO needs a binary mode ('{mode}b'), not {mode!r}")
    (letter,) = letters
    plus = "+" in chars
    return letter == "r" or plus, letter != "r" or plus, letter


class DbFileIO(io.RawIOBase):
    """A raw binary file over one PostgreSQL large object."""

    # Class-level defaults keep close() and __del__ safe after a failed __init__.
    _lobject: Any = None
    _seat: transactions.Seat | None = None
    _opener_thread = 0
    _loid = 0
    _pos = 0
    _readable = False
    _writable = False
    _appending = False
    # Roll back at close: a with block raised, or roll_back_on_close() was called.
    _failed = False
    # The first database error: the transaction this file is in can no longer commit.
    _error: BaseException | None = None
    # Whether this file made the object, and whether it changed one that existed.
    _created = False
    _changed = False
    # Where a short read of a reader found the end: its snapshot keeps it there.
    _end_seen: int | None = None
    # Bytes a reader's read got beyond what it was asked for; the server's position is past them.
    _read_past: bytes = b""
    mode = ""
    name = ""

    def __init__(
        self,
        loid: int | None = 0,
        mode: str = "rb",
        name: str | None = None,
        using: str | None = None,
    ) -> None:
        readable, writable, letter = _parse_mode(mode)
        loid = validate_loid(loid)
        if loid == 0 and letter == "r":
            raise ValueError(f"mode {mode!r} needs an existing object; loid 0 only creates one")
        self.mode = mode
        self._readable, self._writable = readable, writable
        self._appending = letter == "a"
        self._opener_thread = threading.get_ident()
        self._loid = loid  # what errors while opening name; a new object's comes next
        if writable:
            self._seat = transactions.for_writing(using)
        else:
            self._seat, self._lobject = transactions.open_for_reading(loid, using)
        try:
            if writable:
                self._lobject = self._open(loid, letter)
            self._seat.pin()
            self._loid = self._lobject.oid
            if writable and self._seat.joined:
                transactions.note_written(self._seat.connection, self._loid)
            if self._created:
                # Before PostgreSQL 18 nothing grants an object ahead: now, as it is made.
                grant_to_read_roles(self._seat.connection, self._loid)
            if letter == "w" and not self._created:
                self._call("truncate", 0)
                self._changed = True
            elif self._appending:
                self._pos = self._call("seek", 0, io.SEEK_END)
        except BaseException:
            # Roll back what this file began; a miss changed nothing.
            self._failed = True
            self.close()
            raise
        self.name = name if name is not None else str(self._loid)

    def _open(self, loid: int, letter: str) -> Any:
        """Open (or create) the object for writing."""
        connection = self._seat.connection
        exists = bool(loid)
        if loid:
            access = large_object_access(connection, loid)
            if letter == "x" and access.exists:
                raise FileExistsError(errno.EEXIST, "Large object exists", str(loid))
            if letter != "x":
                check_access(access, loid, writable=True)
            exists = access.exists
        self._created = not exists
        # Always binary: psycopg2's text mode decodes each read on its own and
        # can split a UTF-8 character. "w" is INV_WRITE, which reads too.
        with self._database_errors():
            if exists:
                return connection.connection.lobject(loid, "wb")
            return connection.connection.lobject(0, "wb", new_oid=loid)

    # -- the state every operation checks first -------------------------------

    @property
    def loid(self) -> int:
        """The oid of the large object."""
        return self._loid

    @property
    def using(self) -> str:
        """The alias of the database the object is open on."""
        return self._seat.connection.alias

    @property
    def connection(self) -> BaseDatabaseWrapper:
        """The connection whose transaction this file is in: the caller's, or the package's own.

        What must be kept or lost with this file's writes (a row naming the
        object) is written here before ``close()``, which commits it where
        the transaction is the file's own.
        """
        self._check_usable()
        return self._seat.connection

    def _check_usable(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        if self._error is not None and not isinstance(self._seat, transactions.ReadingSeat):
            raise OSError(
                errno.EIO,
                f"large object {self._loid}: an earlier operation failed and its transaction "
                "can no longer commit; close the file",
            ) from self._error

    def _check_readable_now(self) -> None:
        self._check_usable()
        if not self._readable:
            raise io.UnsupportedOperation("File not open for reading")

    def _check_writable_now(self) -> None:
        self._check_usable()
        if not self._writable:
            raise io.UnsupportedOperation("File not open for writing")

    def _database_errors(self) -> contextlib.AbstractContextManager[None]:
        """Django's error types; a file's own errors as ``OSError``; the first error kept."""
        return file_errors(self._seat.connection, self._loid, self._failed_with)

    def _failed_with(self, exc: BaseException) -> None:
        # psycopg2's words for a descriptor whose transaction is over.
        if any(words in str(exc) for words in _ENDED_TRANSACTION):
            raise self._ended() from exc
        if self._error is None:
            self._error = exc
        self._seat.failed()

    def _call(self, method: str, *args: Any) -> Any:
        """Call a method of the descriptor, reopening it if its reading transaction ended."""
        if self._seat.ended:
            if not isinstance(self._seat, transactions.ReadingSeat):
                raise self._ended()
            self._reopen()
        if method != "read":
            self._read_past = b""  # every other call sets the server's position anew
        with self._database_errors():
            return getattr(self._lobject, method)(*args)

    def _ended(self) -> ValueError:
        return ValueError(
            f"large object {self._loid}: the transaction it was opened in has ended; open it again"
        )

    def _reopen(self) -> None:
        """Open the object again in a new reading transaction, at the same position.

        A reader holds no writes, so the package may end its transaction (at
        the end of a request, or when another reader failed) without loss.
        """
        seat, lobject = transactions.open_for_reading(self._loid, self.using)
        try:
            if self._pos:
                with file_errors(seat.connection, self._loid):
                    lobject.seek(self._pos, io.SEEK_SET)
        except BaseException:
            seat.release(commit=False)
            raise
        self._seat, self._lobject, self._error = seat, lobject, None
        self._end_seen, self._read_past = None, b""  # a new snapshot: the object may have changed

    # -- io.RawIOBase ---------------------------------------------------------

    def readable(self) -> bool:
        self._check_usable()
        return self._readable

    def writable(self) -> bool:
        self._check_usable()
        return self._writable

    def seekable(self) -> bool:
        self._check_usable()
        return True

    def fileno(self) -> int:
        raise io.UnsupportedOperation("a large object has no file descriptor")

    def isatty(self) -> bool:
        self._check_usable()
        return False

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes in one round trip; everything when negative."""
        self._check_readable_now()
        if size is None or size < 0:
            return self.readall()
        if size == 0:
            return b""
        return self._read_chunk(min(size, MAX_READ))

    def readall(self) -> bytes:
        """Read to the end, in chunks the server accepts.

        ``lo_read`` returns less than asked only at the end of the object, so
        a short chunk ends the loop: no round trip to read nothing.
        """
        self._check_readable_now()
        chunks = []
        while data := self._read_chunk(READ_SIZE):
            chunks.append(data)
            if len(data) < READ_SIZE:
                break
        return b"".join(chunks)

    def readinto(self, buffer: Any) -> int:
        self._check_readable_now()
        view = memoryview(buffer).cast("B")
        if view.readonly:
            # Refused before reading, as a file does: what was read could not be handed over.
            raise TypeError(
                "readinto() argument must be read-write bytes-like object, "
                f"not {type(buffer).__name__}"
            )
        if not view:
            return 0
        data = self._read_chunk(min(len(view), MAX_READ))
        view[: len(data)] = data
        return len(data)

    def _read_chunk(self, size: int) -> bytes:
        """``size`` bytes, fewer only at the end: one ``lo_read`` at most.

        ``lo_read`` returns less than asked only at the end. A read-only
        descriptor reads one snapshot, so that end stays where it was: the
        read after it (``chunks()`` and ``while read(n)`` loops make one) needs
        no round trip to learn it. What a reader's read got past ``size``
        (see :func:`read_size_to_ask`) is returned first by the next.
        """
        kept, self._read_past = self._read_past[:size], self._read_past[size:]
        self._pos += len(kept)
        if len(kept) == size or (self._pos == self._end_seen and not self._seat.ended):
            return kept
        wanted = size - len(kept)  # less than size only at the end, as lo_read's
        asked = wanted if self._writable else read_size_to_ask(self._seat.connection, wanted)
        try:
            data = self._call("read", asked)
        except BaseException:
            self._pos, self._read_past = self._pos - len(kept), kept  # not read after all
            raise
        if len(data) < asked and not self._writable:
            self._end_seen = self._pos + len(data)
        if len(data) > wanted:  # a backend's first read asked for more: the rest is next
            data, self._read_past = data[:wanted], data[wanted:]
        self._pos += len(data)
        return kept + data if kept else data

    def write(self, data: Any) -> int:
        self._check_writable_now()
        if not isinstance(data, bytes):
            # lobject.write() takes bytes only. Not bytes(data), which takes an int for a
            # size to allocate and a list of ints for bytes: a bytes-like object, or TypeError.
            data = memoryview(data).tobytes()
        if not data:
            return 0
        if self._appending:
            self._pos = self._call("seek", 0, io.SEEK_END)
        if self._pos + len(data) > MAX_SIZE:
            raise OSError(errno.EFBIG, "File too large", self.name)
        self._changed = True
        written = self._call("write", data)
        self._pos += written
        return written

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_usable()
        offset = operator.index(offset)
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            if offset == 0:
                self._pos = self._call("seek", 0, io.SEEK_END)
                return self._pos
            target = self._end() + offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        # A position the server refuses would abort the transaction (the caller's too).
        if not 0 <= target <= MAX_SIZE:
            raise OSError(errno.EINVAL, "Invalid argument")
        if target != self._pos:
            self._pos = self._call("seek", target, io.SEEK_SET)
        return self._pos

    def tell(self) -> int:
        self._check_usable()
        return self._pos

    def truncate(self, size: int | None = None) -> int:
        self._check_writable_now()
        size = self._pos if size is None else operator.index(size)
        if not 0 <= size <= MAX_SIZE:
            raise OSError(errno.EINVAL, "Invalid argument")
        self._changed = True
        self._call("truncate", size)
        return size

    @property
    def size(self) -> int:
        """The length in bytes, found without moving the position."""
        self._check_usable()
        return self._end()

    def _end(self) -> int:
        end = self._call("seek", 0, io.SEEK_END)
        self._call("seek", self._pos, io.SEEK_SET)
        return end

    # -- ending ---------------------------------------------------------------

    def close(self) -> None:
        """Close the file: commit what it wrote where the transaction is its own.

        Raises when its writes were not kept: the commit failed, or an
        earlier operation failed and the file was not told to roll back.
        """
        if self.closed:
            return
        seat = self._seat
        keep = not self._failed and self._error is None
        try:
            super().close()
            if self._lobject is not None and keep:
                self._finish(seat)
            if self._error is not None and not self._failed and self._writable:
                raise OSError(
                    errno.EIO,
                    f"large object {self._loid}: nothing this file wrote was kept, "
                    "an earlier operation failed",
                ) from self._error
        except BaseException:
            keep = False
            raise
        finally:
            try:
                if seat is not None:
                    seat.release(commit=keep)
            finally:
                # Only now: psycopg2 sends lo_close for a descriptor dropped inside its transaction.
                if seat is None or not _lost(seat.connection):
                    self._lobject = None

    def _finish(self, seat: transactions.Seat) -> None:
        """Before the commit: bring the registry up to date, close what outlives the file."""
        from warehouse import registry

        over = seat.ended
        if not over and seat.connection.connection.get_transaction_status() == _FAILED:
            return  # a query of the caller's failed: everything here is rolled back anyway
        if self._changed and not self._created:
            if over:
                # Closed after the caller's block ended: its writes were committed (or
                # not) without the registry. Say so rather than vouch for stale facts.
                registry.forget_digest(seat.connection, self._loid)
            else:
                registry.refresh(seat.connection, self._loid)
        if not over and (seat.joined or seat.shared):
            # Ending a transaction of ours closes the descriptor without a round trip.
            with self._database_errors():
                self._lobject.close()

    def roll_back_on_close(self) -> None:
        """Have ``close()`` roll back what this file wrote, where the transaction is its own.

        What a ``with`` block that raises does; the buffered and text layers
        of :func:`open_large_object` and the storage's files call it too.
        """
        if self._writable:
            self._failed = True

    def discard(self) -> None:
        """Close, leaving nothing this file created: what an upload given up half-way does.

        Its own transaction is rolled back. In the caller's, which is the
        caller's to end, the object it created is unlinked there instead.
        """
        seat, created = self._seat, self._created
        self.roll_back_on_close()
        self.close()  # first: unlinking an object closes its descriptors on the server
        if seat is None or not (seat.joined and created) or seat.ended:
            return
        if seat.connection.connection.get_transaction_status() != _FAILED:
            # A failed transaction can only roll back, and the object with it.
            unlink_known_large_object(seat.connection, self._loid)

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        # A half-written object must not persist.
        if exc_type is not None:
            self.roll_back_on_close()
        self.close()

    def __del__(self) -> None:
        if self._lobject is None or self.closed:
            return
        warnings.warn(f"unclosed large object {self!r}", ResourceWarning, stacklevel=2, source=self)
        # The caller's connection belongs to the thread that opened the file: from
        # another, leave it (its transaction closes the descriptor when it ends).
        if self._seat.joined and self._opener_thread != threading.get_ident():
            return
        # Never committed by accident: a file nobody closed did not finish writing.
        self.roll_back_on_close()
        # Nothing can be raised from a finalizer.
        with contextlib.suppress(Exception):
            self.close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<{type(self).__name__} loid={self._loid} mode={self.mode!r}{state}>"


def _lost(connection: BaseDatabaseWrapper) -> bool:
    """Whether ``connection`` was lost (a backend killed) and is not closed yet.

    psycopg2 closes a descriptor when it is collected, and for one whose
    connection was lost prints "the connection is broken" to stderr, an
    error of nobody's. The caller's connection stays so until Django closes
    it as its atomic block ends: a file keeps such a descriptor until the
    file is collected itself.
    """
    raw = connection.connection
    return raw is not None and raw.closed == 2  # psycopg2's "broken", not "closed" (1)


def large_object_size(loid: int, using: str | None = None) -> int:
    """The length of an object in bytes, measured on the object itself."""
    with DbFileIO(loid, "rb", using=using) as file:
        # Not .size: the file closes next, so keeping the position would be a round trip lost.
        return file.seek(0, io.SEEK_END)


def raw_of(file: Any) -> DbFileIO:
    """The :class:`DbFileIO` under a buffered or text layer."""
    while not isinstance(file, DbFileIO):
        file = getattr(file, "buffer", None) or file.raw
    return file


def close_rolled_back(file: Any) -> None:
    """Close ``file`` (a DbFileIO or a layer over one), keeping nothing it wrote.

    The raw file closes first: a buffer's close would write what it holds
    (lost anyway), and after a failed write fail anew, with an error that
    hides the one the caller is to see.
    """
    raw = raw_of(file)
    raw.roll_back_on_close()
    raw.close()


class _RollsBackOnFailure:
    """For the layers over a DbFileIO: a ``with`` block that raises rolls its writes back."""

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        if exc_type is not None:
            close_rolled_back(self)
        return super().__exit__(exc_type, exc_value, traceback)  # type: ignore[misc]


class _BufferedWriter(_RollsBackOnFailure, io.BufferedWriter):
    pass


class _BufferedRandom(_RollsBackOnFailure, io.BufferedRandom):
    pass


class _TextIOWrapper(_RollsBackOnFailure, io.TextIOWrapper):
    pass


def open_large_object(
    loid: int | None = 0,
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    *,
    name: str | None = None,
    using: str | None = None,
) -> Any:
    """Open a large object the way the built-in ``open()`` opens a file.

    Returns a buffered binary file for binary modes and a ``TextIOWrapper``
    for text modes, over a :class:`DbFileIO`; ``buffering=0`` returns the raw
    file itself. Arguments are checked before anything is opened, created or
    truncated.
    """
    if not isinstance(mode, str):
        raise TypeError(f"mode must be str, not {type(mode).__name__}")
    text = "b" not in mode
    if "t" in mode and not text:
        raise ValueError("can't have text and binary mode at once")
    raw_mode = mode.replace("t", "") + ("b" if text else "")
    _parse_mode(raw_mode)
    buffering = operator.index(buffering)
    if text and buffering == 0:
        raise ValueError("can't have unbuffered text I/O")
    if not text and (encoding or errors or newline):
        raise ValueError("binary mode doesn't take an encoding, errors or newline argument")
    if newline not in (None, "", "\n", "\r", "\r\n"):
        raise ValueError(f"illegal newline value: {newline!r}")
    if text:
        # Stored files outlive the machine's locale: UTF-8 unless told otherwise.
        encoding = encoding or "utf-8"
        # The text layer's own checks (a text encoding; errors and newline of the right
        # types), made on a stand-in: once the object is open, "w" has truncated it.
        io.TextIOWrapper(io.BytesIO(), encoding, errors, newline).detach()

    raw = DbFileIO(loid, raw_mode, name=name, using=using)
    if buffering == 0:
        return raw
    try:
        return _layer(raw, text, buffering, encoding, errors, newline)
    except BaseException:
        raw.roll_back_on_close()
        raw.close()
        raise


def _layer(
    raw: DbFileIO,
    text: bool,
    buffering: int,
    encoding: str | None,
    errors: str | None,
    newline: str | None,
) -> Any:
    line_buffering = buffering == 1
    if buffering < 0 or buffering == 1:
        buffering = DEFAULT_BUFFER_SIZE
    if raw.readable() and raw.writable():
        buffer: Any = _BufferedRandom(raw, buffering)
    elif raw.writable():
        buffer = _BufferedWriter(raw, buffering)
    else:
        buffer = io.BufferedReader(raw, buffering)
    if not text:
        return buffer
    wrapper = _TextIOWrapper(buffer, encoding, errors, newline, line_buffering)
    wrapper.mode = raw.mode.replace("b", "")
    return wrapper
