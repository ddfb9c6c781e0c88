"""Range and If-Range, parsed on their own: no database, no request."""

import pytest
from django.utils.http import http_date

from warehouse.ranges import ByteRange, UnsatisfiableRangeError, if_range_allows, parse_range

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 100)),
        ("bytes=100-", ByteRange(100, 900)),
        ("bytes=-10", ByteRange(990, 10)),
        ("bytes=-5000", ByteRange(0, 1000)),
        ("bytes=990-5000", ByteRange(990, 10)),
        ("bytes=999-999", ByteRange(999, 1)),
        ("bytes = 1 - 2", ByteRange(1, 2)),
    ],
)
def test_a_single_range_is_the_bytes_it_names(header, expected):
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=",
        "bytes=-",
        "bytes=5-3",
        "bytes=a-b",
        "bytes=0-1,5-6",
        "items=0-1",
        "bytes=٣-٤",
        "bytes=0-99\r\nX-Injected: 1",
        "bytes=" + "9" * 30 + "-",
    ],
)
def test_a_malformed_or_multiple_range_is_ignored(header):
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_a_range_past_the_end_is_unsatisfiable(header):
    with pytest.raises(UnsatisfiableRangeError):
        parse_range(header, SIZE)


def test_no_range_of_an_empty_file_is_satisfiable():
    with pytest.raises(UnsatisfiableRangeError):
        parse_range("bytes=-1", 0)


def test_content_range_names_the_last_byte_and_the_size():
    assert ByteRange(990, 10).content_range(SIZE) == "bytes 990-999/1000"


def test_if_range_with_the_same_strong_etag_allows_the_range():
    assert if_range_allows('"abc"', '"abc"', None)


@pytest.mark.parametrize("header", ['"other"', 'W/"abc"'])
def test_if_range_with_another_or_a_weak_etag_refuses_it(header):
    assert not if_range_allows(header, '"abc"', None)


def test_if_range_with_the_exact_last_modified_date_allows_the_range():
    assert if_range_allows(http_date(1_700_000_000), None, 1_700_000_000)


def test_if_range_with_another_date_refuses_it():
    assert not if_range_allows(http_date(1_600_000_000), None, 1_700_000_000)


def test_if_range_against_a_file_without_validators_refuses_it():
    assert not if_range_allows('"abc"', None, None)
    assert not if_range_allows("not a date", None, None)


def test_no_if_range_allows_the_range():
    assert if_range_allows(None, None, None)
