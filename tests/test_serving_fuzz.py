"""Hostile requests to db_serve: whatever the name, method or headers, never a 500."""

from urllib.parse import quote

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import InvoiceFactory
from warehouse.storage import db_file_storage

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

numbers = st.one_of(st.integers(0, 3000).map(str), st.just(""), st.text("0123456789٣", max_size=25))
byte_ranges = st.builds(lambda a, b: f"bytes={a}-{b}", numbers, numbers)
header_values = st.one_of(
    byte_ranges,
    st.lists(byte_ranges, min_size=2, max_size=3).map(",".join),
    st.text(max_size=40).filter(lambda value: "\n" not in value and "\r" not in value),
    st.sampled_from(["*", 'W/"x"', '"x"', "Thu, 01 Jan 1970 00:00:00 GMT", "Fri, 31 Dec 9999"]),
)
names = st.one_of(
    st.text(max_size=300),
    st.builds(lambda oid, ext: f"{oid}{ext}", st.integers(-5, 2**33), st.text(max_size=12)),
)


@pytest.fixture
def served():
    """A stored file larger than one chunk, and a client that shows a 500 as a status."""
    name = db_file_storage.save("fuzz.pdf", ContentFile(bytes(range(256)) * 2048))
    return name, Client(raise_request_exception=False)


def status_of(response) -> int:
    if response.streaming:
        b"".join(response.streaming_content)
    return response.status_code


@FUZZ
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"]),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "Range",
                "If-Range",
                "If-Match",
                "If-None-Match",
                "If-Modified-Since",
                "If-Unmodified-Since",
            ]
        ),
        header_values,
        max_size=4,
    ),
)
def test_any_method_and_headers_get_a_2xx_304_or_4xx(served, method, headers):
    name, client = served
    response = client.generic(method, f"/serve/{name}", headers=headers)
    assert status_of(response) in {200, 206, 304, 405, 412, 416}


@FUZZ
@given(name=names)
def test_any_name_gets_a_2xx_or_404(served, name):
    _, client = served
    response = client.get("/serve/" + quote(name, safe=""))
    assert status_of(response) in {200, 404}


@FUZZ
@given(name=names)
def test_any_name_in_the_one_call_form_gets_a_2xx_or_404(served, name):
    _, client = served
    invoice = InvoiceFactory()
    client.force_login(invoice.owner)
    response = client.get("/owned/" + quote(name, safe=""))
    assert status_of(response) in {200, 404}
