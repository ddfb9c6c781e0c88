"""Hostile input to the storage, to DbFileIO and to the upload handler: file errors, no leftovers.

Whatever hypothesis makes of names, modes, oids, offsets, whence, sizes and
uploads, every call answers, or raises an error a file would raise
(``ValueError``, ``TypeError``, ``OSError`` and its kinds, Django's
``SuspiciousFileOperation``; see ``DOCUMENTED``), never a database error,
and an upload gets a 200 or a 400, never a 500. And after each call
the caller's connection is in no transaction (in ``atomic()``, its
transaction still works), the package holds no connection, and no large
object is left that the call was not asked to make. (``db_serve``'s own
fuzz is in ``test_serving_fuzz.py``.)
"""

import base64
import contextlib
import hashlib
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import psycopg2
import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import path
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.conftest import large_object_content, large_object_oids, server_in_transaction
from warehouse import connections as own_connections
from warehouse.io import MAX_SIZE, DbFileIO, open_large_object, raw_of
from warehouse.models import StoredFile
from warehouse.names import is_large_object_name
from warehouse.objects import MAX_OID
from warehouse.storage import db_file_storage, oid_of
from warehouse.uploads import DbFileUploadHandler

pytestmark = pytest.mark.django_db(transaction=True)

# Half the loaded profile's examples (50; HYPOTHESIS_PROFILE=stress, as `make stress`
# sets it: 500), and for uploads of up to megabytes each an eighth.
HOSTILE = settings(
    max_examples=settings.default.max_examples // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
UPLOADS = settings(
    HOSTILE,
    max_examples=max(10, settings.default.max_examples // 8),
    # Explaining a failure reruns it hundreds of times: minutes, with megabytes each.
    phases=[phase for phase in Phase if phase is not Phase.explain],
)

# What a file may raise. io.UnsupportedOperation, FileNotFoundError, FileExistsError and
# PermissionError are OSErrors; OverflowError is what CPython's own files raise for a size
# past sys.maxsize (readline(2**63)), in the methods DbFileIO inherits from them, and
# LookupError what open() raises for an unknown encoding.
DOCUMENTED = (
    ValueError,
    TypeError,
    OSError,
    OverflowError,
    LookupError,
    SuspiciousFileOperation,
)
CONTENT = b"0123456789" * 7

# -- what hypothesis draws ------------------------------------------------------------

# Digits that are not ASCII's: Arabic-Indic, Persian, Devanagari, NKo, superscript, circled.
unicode_digits = "0123456789" + "".join(
    chr(code) for code in [*range(0x660, 0x66A), 0x6F1, 0x6F2, 0x96A, 0x96B, 0x7C1, 0xB9, 0x2460]
)
NAMES = st.one_of(
    st.text(max_size=300),
    st.text(unicode_digits, min_size=1, max_size=12).map(lambda digits: digits + ".pdf"),
    st.builds(lambda oid, ext: f"{oid}{ext}", st.integers(-5, 2**33), st.text(max_size=12)),
    st.sampled_from(
        [
            "",
            ".",
            "..",
            "../../etc/passwd",
            "/etc/passwd",
            "a/b/c.txt",
            "a\\b.txt",
            "\x00",
            "1\x00.pdf",
            "\udcff.pdf",
            "\u0661\u0662\u0663.pdf",
            "16384/..",
            "x" * 10_000 + ".pdf",
            "1." + "x" * 10_000,
            f"{MAX_OID}.pdf",
            f"{MAX_OID + 1}.pdf",
        ]
    ),
    st.binary(max_size=20),
    st.none(),
    st.integers(),
)
MODES = st.one_of(
    st.sampled_from(
        [
            *["rb", "r", "wb", "w", "ab", "a", "r+b", "w+b", "a+b", "xb", "x", "rt", "br"],
            *["b", "+", "rw", "rbb", "", "r+", "U", "rU", "rb\x00", "wbt"],
        ]
    ),
    st.text(max_size=4),
    st.binary(max_size=3),
    st.integers(),
    st.none(),
)
# Bogus oids; "the file" stands for an existing object's, drawn per example.
OIDS = st.one_of(
    st.just("the file"),
    st.just("the file + 2**32"),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, MAX_OID, MAX_OID + 1, 2**63, -(2**63)]),
    st.floats(),
    st.text(max_size=5),
    st.binary(max_size=4),
    st.none(),
    st.booleans(),
    st.sampled_from([Decimal(1), Fraction(3, 2), 1j, [], object()]),
)
# Sizes and offsets that the server could act on stay small (a position of terabytes is
# valid, and reading to the end of an object grown there would take days); the rest
# is out of any range.
SMALL = st.integers(-300, 300)
OUT_OF_RANGE = st.one_of(
    st.integers(MAX_SIZE + 1, 2**70), st.integers(-(2**70), -1), st.sampled_from([2**63, -(2**63)])
)
NOT_A_NUMBER = st.one_of(
    st.none(), st.floats(), st.text(max_size=3), st.binary(max_size=3), st.booleans()
)
# Past sys.maxsize (OverflowError), or a few MiB at most: a buffered reader allocates what
# it is asked for before reading, and PYTHONDEVMODE fills it (gigabytes, for real).
READ_SIZES = st.one_of(SMALL, st.integers(0, 2**22), st.sampled_from([2**63, 2**70]), NOT_A_NUMBER)
OFFSETS = st.one_of(SMALL, OUT_OF_RANGE, NOT_A_NUMBER)
WHENCES = st.one_of(st.integers(-2, 5), NOT_A_NUMBER)
DATA = st.one_of(
    st.binary(max_size=50),
    st.binary(max_size=50).map(bytearray),
    st.binary(max_size=50).map(memoryview),
    st.text(max_size=5),
    st.integers(-5, 10**15),
    st.lists(st.integers(0, 300), max_size=5),
    st.none(),
)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("read"), READ_SIZES),
        st.tuples(st.just("read1"), READ_SIZES),
        st.tuples(st.just("readline"), READ_SIZES),
        st.tuples(st.just("readlines"), READ_SIZES),
        st.tuples(
            st.just("readinto"),
            st.one_of(
                st.integers(0, 100).map(bytearray),
                st.binary(max_size=5),
                st.integers(0, 100).map(lambda n: memoryview(bytes(n))),
                st.none(),
            ),
        ),
        st.tuples(st.just("seek"), OFFSETS, WHENCES),
        st.tuples(st.just("truncate"), OFFSETS),
        st.tuples(st.just("write"), DATA),
        st.tuples(st.just("writelines"), st.lists(DATA, max_size=3)),
        st.tuples(st.just("tell")),
        st.tuples(st.just("flush")),
        st.tuples(st.just("fileno")),
        st.tuples(st.just("close")),
    ),
    max_size=8,
)


# -- what must hold after every call -----------------------------------------------------


def attempt(call: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """What ``call`` returned, or the documented error it raised; anything else fails the test."""
    try:
        return call(), None
    except DOCUMENTED as error:
        assert not isinstance(error, DatabaseError | psycopg2.Error), error
        assert not isinstance(error, KeyError | IndexError), error  # LookupErrors, but bugs
        # psycopg2's own refusal of a NUL in a query parameter is a ValueError too.
        assert "NUL (0x00)" not in str(error), error
        return None, error


@contextlib.contextmanager
def on_the_callers_side(in_atomic: bool) -> Iterator[None]:
    """Autocommit, or a transaction of the caller's that must still work after the calls."""
    if not in_atomic:
        yield
        return
    with transaction.atomic():
        yield
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")  # fails in a transaction a call aborted


@contextlib.contextmanager
def nothing_left_behind(
    *, may_create: Callable[[], set[int]] = set, may_unlink: frozenset[int] = frozenset()
) -> Iterator[None]:
    """No large object made or unlinked but those allowed; no transaction or connection left.

    The objects the block was allowed to make are unlinked afterwards.
    """
    before = large_object_oids()
    yield
    after = large_object_oids()
    assert before - after <= may_unlink, "an object was lost"
    made = after - before
    assert made <= may_create(), f"objects left behind: {made - may_create()}"
    for loid in made:
        db_file_storage.delete(str(loid))
    assert not connection.in_atomic_block
    assert connection.get_autocommit()
    assert connection.connection is None or not server_in_transaction()
    assert not [own for pool in own_connections._pools().values() for own in pool.connections]


def existing_file(content: bytes = CONTENT) -> str:
    return db_file_storage.save("existing.txt", ContentFile(content))


# -- the storage -------------------------------------------------------------------------


@HOSTILE
@example(  # the uploaded name is kept in the registry without its NUL
    name="report.txt", content_name="re\x00port.txt", content=b"", in_atomic=False
)
@given(
    name=NAMES,
    content_name=st.one_of(st.none(), st.text(max_size=300)),
    content=st.binary(max_size=64),
    in_atomic=st.booleans(),
)
def test_saving_under_any_name_stores_the_file_or_refuses_the_name(
    name, content_name, content, in_atomic
):
    saved: set[int] = set()
    with nothing_left_behind(may_create=lambda: saved), on_the_callers_side(in_atomic):
        upload = ContentFile(content, name=content_name)
        stored, error = attempt(lambda: db_file_storage.save(name, upload))
        if error is None:
            saved.add(oid_of(stored))
            with db_file_storage.open(stored) as file:
                assert file.read() == content


def test_saving_under_a_name_with_a_nul_is_a_valueerror_and_writes_nothing():
    with nothing_left_behind(), pytest.raises(ValueError, match="must not contain NUL"):
        db_file_storage.save("report\x00.txt", ContentFile(b"never written"))


@HOSTILE
@given(data=st.data(), in_atomic=st.booleans())
def test_looking_at_any_name_answers_or_raises_a_file_error(data, in_atomic):
    with nothing_left_behind(may_create=lambda: {oid_of(stored)}):
        stored = existing_file()
        name = data.draw(st.one_of(NAMES, around(stored)))
        with on_the_callers_side(in_atomic):
            for look in (
                db_file_storage.exists,
                db_file_storage.size,
                db_file_storage.url,
                db_file_storage.get_modified_time,
                db_file_storage.get_created_time,
                db_file_storage.generate_filename,
                db_file_storage.get_available_name,
            ):
                answer, _ = attempt(lambda look=look: look(name))
                if look is db_file_storage.exists:
                    assert answer in (True, False)
        assert large_object_content(oid_of(stored)) == CONTENT


@HOSTILE
@given(data=st.data(), mode=MODES, in_atomic=st.booleans())
def test_opening_any_name_in_any_mode_opens_a_file_or_raises_a_file_error(data, mode, in_atomic):
    made: set[int] = set()
    with nothing_left_behind(may_create=lambda: made | {oid_of(stored)}):
        stored = existing_file()
        name = data.draw(st.one_of(NAMES, around(stored)))
        with on_the_callers_side(in_atomic):
            file, error = attempt(lambda: db_file_storage.open(name, mode))
            if file is not None:
                if "x" in mode:
                    made.add(oid_of(name))
                file.close()
        if error is not None or set(mode) <= {"r", "b", "t"}:
            assert large_object_content(oid_of(stored)) == CONTENT


@HOSTILE
@given(data=st.data(), in_atomic=st.booleans())
def test_deleting_any_name_unlinks_the_object_it_names_and_no_other(data, in_atomic):
    stored = oid_of(existing_file())
    name = data.draw(st.one_of(NAMES, around(str(stored))))
    with nothing_left_behind(may_unlink=frozenset({stored})):
        with on_the_callers_side(in_atomic):
            _, error = attempt(lambda: db_file_storage.delete(name))
        names_it = is_large_object_name(name) and oid_of(name) == stored
        assert (stored not in large_object_oids()) == (error is None and names_it)
    db_file_storage.delete(str(stored))


def around(stored: str) -> st.SearchStrategy:
    """Names near an existing file's: with something before, after or inside it."""
    return st.one_of(
        st.just(stored),
        st.builds(lambda suffix: stored + suffix, st.text(max_size=8)),
        st.builds(lambda prefix: prefix + stored, st.text(max_size=3)),
        st.sampled_from(
            [
                stored.encode(),
                f"0{stored}",
                f"/{stored}",
                f"a/{stored}",
                f"{stored}\x00",
                f"{stored}/",
            ]
        ),
    )


# -- DbFileIO ----------------------------------------------------------------------------


@HOSTILE
@given(loid=OIDS, mode=MODES, buffered=st.booleans(), in_atomic=st.booleans())
def test_any_oid_in_any_mode_opens_a_large_object_or_raises_a_file_error(
    loid, mode, buffered, in_atomic
):
    made: set[int] = set()
    with nothing_left_behind(may_create=lambda: made | {existing}):
        existing = oid_of(existing_file())
        if loid == "the file":
            loid = existing
        elif loid == "the file + 2**32":
            loid = existing + 2**32  # psycopg2 would wrap it round to the file's
        with on_the_callers_side(in_atomic):
            opener = open_large_object if buffered else DbFileIO
            file, error = attempt(lambda: opener(loid, mode))
            if file is not None:
                made.add(raw_of(file).loid)
                file.close()
        if error is not None:
            assert large_object_content(existing) == CONTENT


@HOSTILE
@given(
    mode=st.sampled_from(["r", "w", "a", "r+", "w+", "x", "rb", "wb"]),
    buffering=st.one_of(st.sampled_from([-1, 0, 1, 2, 4096]), NOT_A_NUMBER),
    encoding=st.one_of(
        st.none(),
        st.sampled_from(["utf-8", "latin-1", "rot13", "base64", "nope", "utf-8\x00", ""]),
        st.text(max_size=8),
        st.integers(),
    ),
    errors=st.one_of(st.none(), st.sampled_from(["strict", "nope"]), st.integers()),
    newline=st.one_of(st.none(), st.sampled_from(["", "\n", "\r", "\r\n", "\n\r"]), st.integers()),
    in_atomic=st.booleans(),
)
@example(  # refused by the buffered layer once open: "w" had truncated it in the block
    mode="w", buffering=None, encoding=None, errors=None, newline=None, in_atomic=True
)
@example(  # no text encoding, which TextIOWrapper says only once the object is open
    mode="w", buffering=-1, encoding="rot13", errors=None, newline=None, in_atomic=True
)
def test_any_arguments_of_the_layers_open_a_large_object_or_leave_it_untouched(
    mode, buffering, encoding, errors, newline, in_atomic
):
    with nothing_left_behind(may_create=lambda: {existing}):
        existing = oid_of(existing_file())
        with on_the_callers_side(in_atomic):
            file, error = attempt(
                lambda: open_large_object(existing, mode, buffering, encoding, errors, newline)
            )
            if file is not None:
                file.close()
        if error is not None:
            assert large_object_content(existing) == CONTENT


@HOSTILE
@given(
    mode=st.sampled_from(["rb", "wb", "ab", "r+b", "w+b", "a+b", "xb", "r", "w", "a+"]),
    buffering=st.sampled_from([0, -1, 1, 7]),
    new=st.booleans(),
    operations=OPERATIONS,
    in_atomic=st.booleans(),
)
@example(  # a read-only buffer: refused before reading, or the bytes read are lost
    mode="rb", buffering=0, new=False, operations=[("readinto", b"abc")], in_atomic=False
)
@example(  # an int: a TypeError, not a buffer of that many zeros (a petabyte)
    mode="wb", buffering=0, new=True, operations=[("write", 10**15)], in_atomic=False
)
def test_any_operations_on_an_open_large_object_give_file_errors_only(
    mode, buffering, new, operations, in_atomic
):
    made: set[int] = set()
    with nothing_left_behind(may_create=lambda: made | {existing}):
        existing = oid_of(existing_file())
        loid = 0 if new or mode.startswith("x") else existing
        if loid == 0 and mode.startswith("r"):
            mode = mode.replace("r", "w")
        if "b" not in mode and buffering == 0:
            buffering = -1  # text is buffered
        with on_the_callers_side(in_atomic), open_large_object(loid, mode, buffering) as file:
            made.add(raw_of(file).loid)
            for operation in operations:
                apply(file, operation)


def apply(file: Any, operation: tuple) -> None:
    """Run one operation; one that raises leaves the position where it was.

    (Where the position can be told: a closed file, and a text file after a
    failed iteration, as CPython's own, raise instead.)
    """
    method, *args = operation
    if not hasattr(file, method):
        return  # readinto of a text file, read1 of a raw one
    position, _ = attempt(file.tell)
    _, error = attempt(lambda: getattr(file, method)(*args))
    # writelines() writes the lines before the one that fails, as a file's does.
    if error is not None and position is not None and method != "writelines":
        after, _ = attempt(file.tell)
        assert after in (position, None), f"{method}{tuple(args)} failed and moved the file"


# -- uploads -----------------------------------------------------------------------------


class OddChunks(DbFileUploadHandler):
    """The package's handler, receiving chunks of whatever size the example draws."""


def uploaded(request: HttpRequest) -> JsonResponse:
    """What the view got: each upload's object, size and digest."""
    return JsonResponse(
        [
            {"loid": upload.loid, "size": upload.size, "sha256": upload.sha256}
            for upload in request.FILES.getlist("file")
        ],
        safe=False,
    )


urlpatterns = [path("upload", uploaded)]

BOUNDARY = "warehouse-hostile-boundary-7a1c"
# Up to 3 MiB: a few bytes either side of the 64 KiB blocks Django's parser reads in.
UPLOAD_SIZES = st.one_of(
    st.integers(0, 4096),
    st.builds(
        lambda blocks, off: max(0, blocks * 2**16 + off), st.integers(1, 48), st.integers(-3, 3)
    ),
)
UPLOAD_NAMES = st.one_of(
    st.sampled_from(["report.pdf", "", ".", "..", "../x.txt", "a/b.txt", "C:\\x.txt"]),
    st.sampled_from(
        ["\u0661\u0662\u0663.pdf", "x" * 1000 + ".pdf", 'quote".txt', "nul\x00.txt", "&amp;.txt"]
    ),
    st.text(max_size=40),
)
CONTENT_TYPES = st.one_of(
    st.sampled_from(["application/pdf", "text/plain", "text/plain; charset=latin-1"]),
    st.sampled_from(["text/plain; charset=nope", "", "x" * 1000, "text/plain\x00", "*/*"]),
    st.text(max_size=30),
)


def multipart(name: str, content_type: str, content: bytes, *, in_base64: bool) -> bytes:
    """A multipart body with one file part, written by hand: nothing escaped or checked."""
    headers = f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
    headers += f"Content-Type: {content_type}\r\n"
    if in_base64:
        headers += "Content-Transfer-Encoding: base64\r\n"
        content = base64.encodebytes(content)
    return (
        f"--{BOUNDARY}\r\n{headers}\r\n".encode("utf-8", "surrogatepass")
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


@UPLOADS
@example(  # a NUL in the declared type: the row keeps the rest, not a 500
    size=3,
    seed=0,
    chunk_size=1000,
    name="a.txt",
    content_type="text/plain\x00",
    in_base64=False,
    cut=None,
    atomic_requests=False,
)
@given(
    size=UPLOAD_SIZES,
    seed=st.integers(0, 2**32),
    chunk_size=st.one_of(st.integers(1000, 70_000), st.integers(1000, 2**20 + 3)),
    name=UPLOAD_NAMES,
    content_type=CONTENT_TYPES,
    in_base64=st.booleans(),
    cut=st.one_of(st.none(), st.floats(0, 1)),
    atomic_requests=st.booleans(),
)
@pytest.mark.urls(__name__)
def test_any_upload_is_stored_whole_or_answered_with_a_4xx(
    settings,
    monkeypatch,
    size,
    seed,
    chunk_size,
    name,
    content_type,
    in_base64,
    cut,
    atomic_requests,
):
    settings.FILE_UPLOAD_HANDLERS = [f"{__name__}.OddChunks"]
    monkeypatch.setattr(OddChunks, "chunk_size", chunk_size)
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", atomic_requests)
    content = random.Random(seed).randbytes(size)
    body = multipart(name, content_type, content, in_base64=in_base64)
    if cut is not None:  # the client went away: the parser sees the body end early
        body = body[: int(len(body) * cut)]
    stored: set[int] = set()
    with nothing_left_behind(may_create=lambda: stored):
        response = Client(raise_request_exception=False).generic(
            "POST", "/upload", body, content_type=f"multipart/form-data; boundary={BOUNDARY}"
        )
        assert response.status_code in (200, 400), response.content[:500]
        for upload in response.json() if response.status_code == 200 else []:
            stored.add(upload["loid"])
            row = StoredFile.objects.get(oid=upload["loid"])
            kept = large_object_content(upload["loid"])
            assert (row.size, row.sha256) == (upload["size"], upload["sha256"])
            assert (len(kept), hashlib.sha256(kept).hexdigest()) == (row.size, row.sha256)
            assert "\x00" not in row.content_type
            if cut is None:
                assert kept == content


@pytest.mark.urls(__name__)
def test_an_upload_the_parser_gives_up_with_an_error_is_discarded_when_the_request_ends(settings):
    settings.FILE_UPLOAD_HANDLERS = [f"{__name__}.OddChunks"]
    # Base64 cut one character short: Django's parser raises mid-file, leaving it open.
    body = multipart("cut.bin", "application/octet-stream", b"x" * 3000, in_base64=True)
    body = body.replace(b"eHh4\n\r\n--", b"eHh\n\r\n--")
    with nothing_left_behind():
        response = Client(raise_request_exception=False).generic(
            "POST", "/upload", body, content_type=f"multipart/form-data; boundary={BOUNDARY}"
        )
        assert response.status_code == 400
