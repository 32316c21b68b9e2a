"""The amounts reading.py takes from what customers type (it replaced catalog.parse_soles)."""

from __future__ import annotations

import pytest

from conversations.catalog import is_custom_amount_allowed
from conversations.reading import Amount, read


@pytest.mark.parametrize(
    "typed", ["25", "S/ 25", "s/25", "S/. 25", "25 soles", "25.00", "25,00", "  25  "]
)
def test_whole_soles_are_read_from_common_spellings(typed: str) -> None:
    assert read(typed).amount == Amount(25)


@pytest.mark.parametrize("typed", ["10.50", "25.5"])
def test_an_amount_with_centimos_is_read_as_not_whole(typed: str) -> None:
    amount = read(typed).amount

    assert amount is not None and not amount.whole


@pytest.mark.parametrize("typed", ["", "-5", "S/", "1" * 5000])
def test_no_amount_is_read_from_nothing_a_negative_or_a_wall_of_digits(typed: str) -> None:
    assert read(typed).amount is None


@pytest.mark.parametrize(
    ("typed", "allowed"), [("2", False), ("3", True), ("200", True), ("201", False)]
)
def test_custom_amount_range_is_decided_after_reading(typed: str, allowed: bool) -> None:
    amount = read(typed).amount

    assert amount is not None
    assert is_custom_amount_allowed(amount.soles) is allowed
