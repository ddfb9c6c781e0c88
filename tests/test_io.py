"""DbFileIO behaves like a raw binary file from open(), over a large object."""

import io

import pytest
from django.db import connection

from tests.conftest import large_object_content, large_object_oids
from warehouse.io import READ_SIZE, DbFileIO, open_large_object, read_size_to_ask
from warehouse.objects import MAX_OID

pytestmark = pytest.mark.django_db


def test_writing_with_loid_0_creates_a_new_object():
    with DbFileIO(0, "wb") as file:
        file.write(b"invoice")
    assert file.loid in large_object_oids()
    assert large_object_content(file.loid) == b"invoice"


def test_loid_none_also_creates_a_new_object():
    with DbFileIO(None, "wb") as file:
        file.write(b"x")
    assert large_object_content(file.loid) == b"x"


def test_name_defaults_to_the_oid():
    with DbFileIO(0, "wb") as file:
        assert file.name == str(file.loid)


def test_name_is_kept_when_given(make_object):
    with DbFileIO(make_object(b"x"), "rb", name="42.pdf") as file:
        assert file.name == "42.pdf"


def test_reading_returns_the_content(make_object):
    with DbFileIO(make_object(b"contract"), "rb") as file:
        assert file.read() == b"contract"


def test_read_with_a_size_returns_at_most_that_many_bytes(make_object):
    with DbFileIO(make_object(b"abcdef"), "rb") as file:
        assert file.read(4) == b"abcd"
        assert file.read(4) == b"ef"


def test_read_at_end_of_file_returns_empty_bytes(make_object):
    with DbFileIO(make_object(b"ab"), "rb") as file:
        file.read()
        assert file.read() == b""
        assert file.read(10) == b""


def test_readinto_fills_a_buffer(make_object):
    buffer = bytearray(3)
    with DbFileIO(make_object(b"abcdef"), "rb") as file:
        assert file.readinto(buffer) == 3
    assert buffer == b"abc"


def test_readline_and_iteration_come_from_rawiobase(make_object):
    with DbFileIO(make_object(b"one\ntwo\n"), "rb") as file:
        assert list(file) == [b"one\n", b"two\n"]


def test_a_backends_first_read_asks_for_four_times_the_size_and_later_ones_for_the_size(
    fresh_backends,
):
    assert read_size_to_ask(connection, READ_SIZE) == 4 * READ_SIZE
    assert read_size_to_ask(connection, READ_SIZE) == READ_SIZE


def test_a_backend_prepared_for_a_size_is_prepared_for_smaller_ones(fresh_backends):
    read_size_to_ask(connection, READ_SIZE)
    assert read_size_to_ask(connection, READ_SIZE // 2) == READ_SIZE // 2


def test_a_read_that_may_not_go_past_a_limit_asks_for_no_more(fresh_backends):
    assert read_size_to_ask(connection, READ_SIZE, limit=4 * READ_SIZE - 1) == READ_SIZE
    assert read_size_to_ask(connection, READ_SIZE, limit=10) == 10


def test_a_first_read_returns_only_what_was_asked_though_it_read_more(make_object, fresh_backends):
    with DbFileIO(make_object(b"abcdef"), "rb") as file:
        assert file.read(3) == b"abc"
        assert file.tell() == 3
        assert file.read(2) == b"de"
        assert file.read() == b"f"


def test_reading_everything_after_a_read_that_read_more_reads_to_the_end(
    make_object, fresh_backends
):
    content = bytes(range(256)) * (5 * READ_SIZE // 256)  # more than was read past
    with DbFileIO(make_object(content), "rb") as file:
        assert file.read(3) == content[:3]
        assert file.read() == content[3:]


def test_seeking_after_a_read_that_read_more_reads_from_the_new_position(
    make_object, fresh_backends
):
    with DbFileIO(make_object(b"abcdef"), "rb") as file:
        file.read(2)
        file.seek(1)
        assert file.read(3) == b"bcd"


def test_the_size_after_a_read_that_read_more_keeps_the_position(make_object, fresh_backends):
    with DbFileIO(make_object(b"abcdef"), "rb") as file:
        file.read(2)
        assert file.size == 6
        assert file.read(2) == b"cd"


def test_size_does_not_move_the_position(make_object):
    with DbFileIO(make_object(b"abcdef"), "rb") as file:
        file.seek(2)
        assert file.size == 6
        assert file.tell() == 2
        assert file.read(1) == b"c"


def test_seek_from_start_current_and_end(make_object):
    with DbFileIO(make_object(b"abcdef"), "rb") as file:
        assert file.seek(1) == 1
        assert file.seek(2, io.SEEK_CUR) == 3
        assert file.seek(-2, io.SEEK_END) == 4
        assert file.read() == b"ef"


def test_seek_before_the_start_is_an_oserror_and_keeps_the_position(make_object):
    with DbFileIO(make_object(b"abc"), "rb") as file:
        file.seek(1)
        with pytest.raises(OSError):
            file.seek(-5, io.SEEK_END)
        assert file.tell() == 1
        assert file.read() == b"bc"


def test_seek_with_a_bad_whence_is_a_valueerror(make_object):
    with DbFileIO(make_object(b"abc"), "rb") as file, pytest.raises(ValueError):
        file.seek(0, 3)


def test_writing_after_seeking_past_the_end_fills_with_zeros():
    with DbFileIO(0, "wb") as file:
        file.write(b"ab")
        file.seek(5)
        file.write(b"z")
    assert large_object_content(file.loid) == b"ab\0\0\0z"


def test_truncate_shortens_without_moving_the_position(make_object):
    loid = make_object(b"abcdef")
    with DbFileIO(loid, "r+b") as file:
        file.seek(4)
        assert file.truncate(2) == 2
        assert file.tell() == 4
    assert large_object_content(loid) == b"ab"


def test_truncate_beyond_the_end_fills_with_zeros(make_object):
    loid = make_object(b"ab")
    with DbFileIO(loid, "r+b") as file:
        file.truncate(4)
    assert large_object_content(loid) == b"ab\0\0"


def test_truncate_without_size_cuts_at_the_position(make_object):
    loid = make_object(b"abcdef")
    with DbFileIO(loid, "r+b") as file:
        file.seek(3)
        file.truncate()
    assert large_object_content(loid) == b"abc"


def test_wb_truncates_an_existing_object(make_object):
    loid = make_object(b"old content")
    with DbFileIO(loid, "wb") as file:
        file.write(b"new")
    assert large_object_content(loid) == b"new"


def test_rplus_keeps_the_content_and_overwrites_in_place(make_object):
    loid = make_object(b"abcdef")
    with DbFileIO(loid, "r+b") as file:
        file.seek(2)
        file.write(b"XY")
    assert large_object_content(loid) == b"abXYef"


def test_wplus_can_read_back_what_it_wrote(make_object):
    with DbFileIO(make_object(b"old"), "w+b") as file:
        file.write(b"fresh")
        file.seek(0)
        assert file.read() == b"fresh"


def test_append_writes_at_the_end_whatever_the_position(make_object):
    loid = make_object(b"abc")
    with DbFileIO(loid, "a+b") as file:
        assert file.tell() == 3
        file.seek(0)
        assert file.read(1) == b"a"
        file.write(b"de")
        assert file.tell() == 5
    assert large_object_content(loid) == b"abcde"


def test_ab_creates_a_new_object_with_loid_0():
    with DbFileIO(0, "ab") as file:
        file.write(b"log")
    assert large_object_content(file.loid) == b"log"


def test_xb_creates_a_new_object():
    with DbFileIO(0, "xb") as file:
        file.write(b"new")
    assert large_object_content(file.loid) == b"new"


def test_xb_refuses_an_existing_object(make_object):
    with pytest.raises(FileExistsError):
        DbFileIO(make_object(b"x"), "xb")


def test_write_accepts_memoryview_and_bytearray():
    with DbFileIO(0, "wb") as file:
        file.write(bytearray(b"ab"))
        file.write(memoryview(b"cd"))
    assert large_object_content(file.loid) == b"abcd"


def test_write_returns_the_number_of_bytes_written():
    with DbFileIO(0, "wb") as file:
        assert file.write(b"abc") == 3
        assert file.write(b"") == 0


@pytest.mark.parametrize(
    ("mode", "readable", "writable"),
    [
        ("rb", True, False),
        ("wb", False, True),
        ("ab", False, True),
        ("r+b", True, True),
        ("w+b", True, True),
        ("a+b", True, True),
    ],
)
def test_readable_and_writable_follow_the_mode(make_object, mode, readable, writable):
    with DbFileIO(make_object(b"x"), mode) as file:
        assert (file.readable(), file.writable(), file.seekable()) == (readable, writable, True)


def test_reading_a_write_only_file_is_unsupported():
    with DbFileIO(0, "wb") as file, pytest.raises(io.UnsupportedOperation):
        file.read()


def test_writing_a_read_only_file_is_unsupported(make_object):
    with DbFileIO(make_object(b"x"), "rb") as file, pytest.raises(io.UnsupportedOperation):
        file.write(b"y")


def test_truncating_a_read_only_file_is_unsupported(make_object):
    with DbFileIO(make_object(b"x"), "rb") as file, pytest.raises(io.UnsupportedOperation):
        file.truncate(0)


def test_fileno_is_unsupported(make_object):
    with DbFileIO(make_object(b"x"), "rb") as file, pytest.raises(io.UnsupportedOperation):
        file.fileno()


@pytest.mark.parametrize(
    "operation",
    [
        lambda f: f.read(),
        lambda f: f.readinto(bytearray(1)),
        lambda f: f.write(b"x"),
        lambda f: f.seek(0),
        lambda f: f.tell(),
        lambda f: f.truncate(0),
        lambda f: f.size,
        lambda f: f.readable(),
        lambda f: f.flush(),
    ],
)
def test_every_operation_on_a_closed_file_is_a_valueerror(make_object, operation):
    file = DbFileIO(make_object(b"x"), "r+b")
    file.close()
    with pytest.raises(ValueError, match="closed"):
        operation(file)


def test_close_is_idempotent(make_object):
    file = DbFileIO(make_object(b"x"), "rb")
    file.close()
    file.close()
    assert file.closed


def test_a_missing_oid_is_filenotfounderror():
    with pytest.raises(FileNotFoundError):
        DbFileIO(MAX_OID, "rb")


def test_a_missing_oid_leaves_the_callers_transaction_usable(make_object):
    with pytest.raises(FileNotFoundError):
        DbFileIO(MAX_OID, "r+b")
    assert large_object_content(make_object(b"still works")) == b"still works"


@pytest.mark.parametrize("loid", [-1, 2**32, 2**32 + 12])
def test_an_oid_out_of_range_is_a_valueerror(loid):
    with pytest.raises(ValueError):
        DbFileIO(loid, "rb")


@pytest.mark.parametrize("loid", ["16384", 1.0, True])
def test_a_non_integer_oid_is_a_typeerror(loid):
    with pytest.raises(TypeError):
        DbFileIO(loid, "rb")


@pytest.mark.parametrize("mode", ["rb", "r+b"])
def test_loid_0_in_a_reading_mode_is_a_valueerror(mode):
    with pytest.raises(ValueError):
        DbFileIO(0, mode)


@pytest.mark.parametrize("mode", ["r", "w", "rt", "rwb", "rbb", "b", "z", "", "r+"])
def test_a_bad_mode_is_a_valueerror(mode):
    objects_before = large_object_oids()
    with pytest.raises(ValueError):
        DbFileIO(0, mode)
    assert large_object_oids() == objects_before


def test_repr_shows_oid_and_mode(make_object):
    loid = make_object(b"x")
    with DbFileIO(loid, "rb") as file:
        assert repr(file) == f"<DbFileIO loid={loid} mode='rb'>"
    assert repr(file).endswith("closed>")


def test_readall_reads_objects_larger_than_a_chunk(make_object):
    content = bytes(range(256)) * 5000  # more than one CHUNK_SIZE
    with DbFileIO(make_object(content), "rb") as file:
        assert file.readall() == content


def test_text_mode_through_textiowrapper_keeps_multibyte_characters_whole():
    text = "Rechnung für Ωmega — ✓\n" * 10000
    with io.TextIOWrapper(io.BufferedWriter(DbFileIO(0, "wb")), encoding="utf-8") as out:
        out.write(text)
        loid = out.buffer.raw.loid
    with io.TextIOWrapper(io.BufferedReader(DbFileIO(loid, "rb"), 7), encoding="utf-8") as back:
        assert back.read() == text


def test_open_large_object_gives_text_in_text_modes():
    with open_large_object(0, "w", encoding="utf-8") as out:
        out.write("zwölf\n")
        loid = out.buffer.raw.loid
    with open_large_object(loid, "r", encoding="utf-8") as back:
        assert back.readline() == "zwölf\n"
        assert back.mode == "r"


def test_open_large_object_gives_a_buffered_file_in_binary_modes(make_object):
    with open_large_object(make_object(b"x"), "rb") as file:
        assert isinstance(file, io.BufferedReader)


def test_open_large_object_unbuffered_gives_the_raw_file(make_object):
    with open_large_object(make_object(b"x"), "rb", buffering=0) as file:
        assert isinstance(file, DbFileIO)


def test_an_unclosed_file_warns_when_collected(make_object):
    file = DbFileIO(make_object(b"x"), "rb")
    with pytest.warns(ResourceWarning, match="unclosed large object"):
        del file


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("wb", {"encoding": "utf-8"}),
        ("w", {"buffering": 0}),
        ("w", {"newline": "\t"}),
        ("w", {"encoding": "no-such-codec"}),
    ],
)
def test_open_large_object_refuses_bad_arguments_before_truncating(make_object, mode, options):
    loid = make_object(b"precious contract")
    with pytest.raises((ValueError, LookupError)):
        open_large_object(loid, mode, **options)
    assert large_object_content(loid) == b"precious contract"
