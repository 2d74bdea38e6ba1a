"""Exact money: parse the wire format, convert between cents and Decimal, format two decimals.

Amounts are ``decimal.Decimal`` in code, integer cents in storage and strings with exactly two
decimals on the wire. Nothing here ever touches ``float``.
"""

from __future__ import annotations

import re
from decimal import Decimal

CENT = Decimal("0.01")
#: The largest balance the ledger stores: 14 integer digits and two decimals.
MAX_BALANCE_CENTS = 10**16 - 1

_AMOUNT = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
_SIGNED = re.compile(r"-?[0-9]{1,16}(\.[0-9]{1,2})?")


def is_amount_text(text: str) -> bool:
    """Tell whether ``text`` is written ``###`` or ``###.##`` (no sign, exponent or separators)."""
    return _AMOUNT.fullmatch(text) is not None


def parse_amount(text: str) -> Decimal:
    """Parse a wire amount (``###`` or ``###.##``) into an exact Decimal with two places."""
    if not isinstance(text, str) or not is_amount_text(text):
        raise ValueError(f"not an amount: {text!r}")
    return Decimal(text).quantize(CENT)


def parse_cents(text: str) -> int:
    """Parse signed decimal text (``-12.5``, ``7``, ``0.05``) into exact integer cents.

    The wire format with an optional minus sign: no exponent, separator or third decimal, and
    nothing beyond the balance range. Raise ``ValueError`` for anything else.
    """
    if not isinstance(text, str) or _SIGNED.fullmatch(text) is None:
        raise ValueError(f"not an amount: {text!r}")
    whole, _, part = text.removeprefix("-").partition(".")
    cents = int(whole) * 100 + int((part + "00")[:2])
    if cents > MAX_BALANCE_CENTS:
        raise ValueError(f"beyond the balance range: {text!r}")
    return -cents if text.startswith("-") else cents


def to_cents(amount: Decimal) -> int:
    """Convert an exact two-place Decimal into integer cents."""
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"more than two decimals: {amount}")
    return int(cents)


def from_cents(cents: int) -> Decimal:
    """Convert integer cents into a two-place Decimal."""
    return (Decimal(cents) / 100).quantize(CENT)


def format_cents(cents: int) -> str:
    """Format integer cents as the wire text, e.g. ``730`` -> ``"7.30"``."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"
