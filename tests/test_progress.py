"""Sizes read alike in every command: bytes below a KiB, binary units above."""

from warehouse.progress import human_size


def test_a_size_below_a_kib_is_in_bytes():
    assert [human_size(size) for size in (0, 1, 6, 1023)] == [
        "0 bytes",
        "1 byte",
        "6 bytes",
        "1023 bytes",
    ]


def test_a_larger_size_is_in_binary_units_with_one_decimal():
    assert [human_size(size) for size in (1024, 3_460_300, 5 * 1024**3)] == [
        "1.0 KiB",
        "3.3 MiB",
        "5.0 GiB",
    ]


def test_a_size_that_rounds_to_1024_of_a_unit_is_one_of_the_next():
    assert human_size(1024**2 - 1) == "1.0 MiB"


def test_sizes_past_the_largest_unit_stay_in_it():
    assert human_size(2048 * 1024**4) == "2048.0 TiB"
