"""money: exact parsing and formatting."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditbook import money


@pytest.mark.parametrize("text", ["0.01", "12.1", "12.10", "7", "99999999999999.99", "007.5"])
def test_parse_accepts_the_wire_format(text: str) -> None:
    """###, ###.# and ###.## parse exactly."""
    assert money.parse_amount(text) == Decimal(text)


@pytest.mark.parametrize(
    "text",
    ["", "-1", "+1", "1e3", "1,000", "1.234", ".5", "5.", " 1", "NaN", "Infinity", "0x1A", "１"],
)
def test_parse_refuses_everything_else(text: str) -> None:
    """Signs, exponents, separators, three decimals and non-ASCII digits are refused."""
    with pytest.raises(ValueError):
        money.parse_amount(text)


def test_parse_refuses_float() -> None:
    """A float never becomes money."""
    with pytest.raises(ValueError):
        money.parse_amount(12.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cents", "text"),
    [(0, "0.00"), (730, "7.30"), (-5, "-0.05"), (10**16 - 1, "99999999999999.99")],
)
def test_format_cents(cents: int, text: str) -> None:
    """Money always has exactly two decimals."""
    assert money.format_cents(cents) == text


@given(st.integers(min_value=-(10**16), max_value=10**16))
def test_cents_round_trip(cents: int) -> None:
    """cents -> Decimal -> cents and cents -> text -> cents are identities."""
    assert money.to_cents(money.from_cents(cents)) == cents
    assert money.to_cents(Decimal(money.format_cents(cents))) == cents
