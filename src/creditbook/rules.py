"""Text and id rules every use case shares (stdlib and the error tree only)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from . import errors

MAX_FIELD = 255
_DIGITS = re.compile(r"[0-9]{1,18}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Characters XML 1.0 cannot carry even escaped, and lone surrogates no encoder accepts.
_BAD_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Stored text never holds NUL (it is refused on the way in, and PostgreSQL cannot store it),
#: so a lookup by text holding one matches nothing and never reaches the database.
NUL = "\x00"
USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


#: Letters that do not decompose into a base letter and an accent, read as a reader of Latin
#: script expects in a search or an alphabetical order.
_LETTERS = str.maketrans(
    {
        "ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ß": "ss", "đ": "d",
        "Đ": "d", "ð": "d", "Ð": "d", "ł": "l", "Ł": "l", "þ": "th", "Þ": "th", "ı": "i",
    }
)  # fmt: skip


def fold(text: str) -> str:
    """Text as searches and name orders compare it: case and accents off ("ÅNGSTRÖM" and
    "angstrom" are one word, "Müller" reads "muller", "Søren" "soren")."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def client_keys(firstname: str, lastname: str, companyname: str, email: str) -> tuple[str, str]:
    """A client's folded search text (names, company, e-mail) and its sort key (the name as
    shown, first name first)."""
    name = f"{firstname} {lastname}"
    return fold(f"{name} {companyname} {email}"), fold(name)


_COMMA_DECIMAL = re.compile(r"[0-9]+,[0-9]{1,2}")


def amount_hint(text: str, message: str) -> str:
    """An amount's refusal, saying what to do when a decimal comma was used (``12,50``)."""
    if _COMMA_DECIMAL.fullmatch(text.lstrip("-")):
        return f"{message}: use a dot for decimals: {text.replace(',', '.')}"
    return message


def day_before(day: str) -> str:
    """The day before a ``YYYY-MM-DD`` day (``0000-12-31`` before the first: below every day)."""
    parsed = dt.date.fromisoformat(day)
    return "0000-12-31" if parsed == dt.date.min else (parsed - dt.timedelta(days=1)).isoformat()


def clean_text(value: str) -> tuple[str, bool]:
    """Replace characters ``check_text`` refuses with U+FFFD; say whether any were."""
    cleaned = _BAD_TEXT.sub("\ufffd", value)
    return cleaned, cleaned != value


def check_text(value: str, field: str) -> str:
    """Refuse text that cannot be stored and rendered faithfully in every response type."""
    if _BAD_TEXT.search(value):
        raise errors.InvalidText(field)
    return value


def parse_day(value: str) -> str | None:
    """Return a ``YYYY-MM-DD`` day in canonical form; None when it is not a real day."""
    if not _DAY.fullmatch(value):
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        return None


def day_after(day: str) -> str:
    """The day after a ``YYYY-MM-DD`` day, as the exclusive end of a range of dates or times.

    After 9999-12-31 comes ``9999-12-32``: no real day, but above every date and time of that
    day as text, which is how the stores compare them.
    """
    parsed = dt.date.fromisoformat(day)
    return "9999-12-32" if parsed == dt.date.max else (parsed + dt.timedelta(days=1)).isoformat()


def parse_id(value: str | None) -> int | None:
    """Parse a database id sent as text; None when it is not one."""
    if value is None or not _DIGITS.fullmatch(value):
        return None
    return int(value)


def now() -> str:
    """Return the current UTC time as ISO-8601 text."""
    return utc_text(dt.datetime.now(dt.UTC))


def utc_text(moment: dt.datetime) -> str:
    """A moment as the UTC text entries and sessions are recorded with (``...000000Z``): such
    texts compare as the moments do."""
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
