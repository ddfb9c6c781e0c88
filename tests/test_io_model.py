"""DbFileIO against io.BytesIO, operation by operation, for any sequence hypothesis finds."""

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from warehouse.io import DbFileIO

pytestmark = pytest.mark.django_db

MODES = ["rb", "wb", "ab", "r+b", "w+b", "a+b"]
positions = st.integers(min_value=0, max_value=64)
payloads = st.binary(max_size=24)


def outcome(operation):
    """What an operation returned, or the kind of error it raised."""
    try:
        return ("ok", operation())
    except io.UnsupportedOperation:
        return ("unsupported", None)


class ModelFile:
    """io.BytesIO with the mode rules of open(): the reference DbFileIO must match."""

    def __init__(self, content: bytes, mode: str) -> None:
        self.mode = mode
        self.bytes = io.BytesIO(b"" if mode.startswith("w") else content)
        if mode.startswith("a"):
            self.bytes.seek(0, io.SEEK_END)

    def readable(self):
        return self.mode.startswith("r") or "+" in self.mode

    def writable(self):
        return not self.mode.startswith("r") or "+" in self.mode

    def read(self, size):
        if not self.readable():
            raise io.UnsupportedOperation("not readable")
        return self.bytes.read(size)

    def write(self, data):
        if not self.writable():
            raise io.UnsupportedOperation("not writable")
        if self.mode.startswith("a") and data:
            self.bytes.seek(0, io.SEEK_END)
        return self.bytes.write(data)

    def truncate(self, size):
        if not self.writable():
            raise io.UnsupportedOperation("not writable")
        # BytesIO cannot grow by truncating; a real file fills with zeros.
        position = self.bytes.tell()
        content = self.bytes.getvalue()[:size].ljust(size, b"\0")
        self.bytes = io.BytesIO(content)
        self.bytes.seek(position)
        return size


class DbFileIOMatchesAFile(RuleBasedStateMachine):
    @initialize(content=payloads, mode=st.sampled_from(MODES))
    def open_both(self, content, mode):
        with DbFileIO(0, "wb") as setup:
            setup.write(content)
        self.real = DbFileIO(setup.loid, mode)
        self.model = ModelFile(content, mode)

    def teardown(self):
        if hasattr(self, "real"):
            self.real.close()

    @rule(size=st.integers(min_value=-1, max_value=40))
    def read(self, size):
        assert outcome(lambda: self.real.read(size)) == outcome(lambda: self.model.read(size))

    @rule(data=payloads)
    def write(self, data):
        assert outcome(lambda: self.real.write(data)) == outcome(lambda: self.model.write(data))

    @rule(offset=positions)
    def seek_set(self, offset):
        assert self.real.seek(offset) == self.model.bytes.seek(offset)

    @rule(offset=st.integers(min_value=-8, max_value=8))
    def seek_current(self, offset):
        if self.model.bytes.tell() + offset >= 0:
            assert self.real.seek(offset, io.SEEK_CUR) == self.model.bytes.seek(offset, io.SEEK_CUR)

    @rule(offset=st.integers(min_value=-8, max_value=8))
    def seek_end(self, offset):
        if len(self.model.bytes.getvalue()) + offset >= 0:
            assert self.real.seek(offset, io.SEEK_END) == self.model.bytes.seek(offset, io.SEEK_END)

    @rule(size=positions)
    def truncate(self, size):
        assert outcome(lambda: self.real.truncate(size)) == outcome(
            lambda: self.model.truncate(size)
        )

    @precondition(lambda self: self.model.readable())
    @rule()
    def readall(self):
        assert self.real.readall() == self.model.bytes.read()

    @invariant()
    def same_position_and_size(self):
        if hasattr(self, "real"):
            assert self.real.tell() == self.model.bytes.tell()
            assert self.real.size == len(self.model.bytes.getvalue())


def test_dbfileio_matches_a_file_for_any_sequence_of_operations():
    run_state_machine_as_test(
        DbFileIOMatchesAFile,
        settings=settings(max_examples=60, stateful_step_count=25, deadline=None),
    )


@pytest.mark.django_db(transaction=True)
def test_dbfileio_matches_a_file_in_autocommit_too():
    # Here every file manages its own transaction instead of joining the test's.
    run_state_machine_as_test(
        DbFileIOMatchesAFile,
        settings=settings(max_examples=30, stateful_step_count=25, deadline=None),
    )


@given(content=st.binary(max_size=3000), chunk=st.integers(min_value=1, max_value=700))
@settings(max_examples=30, deadline=None)
def test_reading_in_any_chunk_size_gives_the_content_back(content, chunk):
    with DbFileIO(0, "wb") as out:
        for start in range(0, len(content), chunk):
            out.write(content[start : start + chunk])
    with DbFileIO(out.loid, "rb") as back:
        assert b"".join(iter(lambda: back.read(chunk), b"")) == content
