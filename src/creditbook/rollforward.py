"""The month-end credit roll-forward: opening + added - spent + reversed - expired = closing,
per currency (and category), checked on every row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import currencies, errors, rules
from .money import format_cents
from .rules import utc_text
from .store.reports import COLUMNS, Figures

if TYPE_CHECKING:
    from .ledger import Ledger

#: Late entries listed in full (the count and totals cover them all).
LATE_LIMIT = 1000


#: A row's fields, in the order of the table, the CSV and the JSON.
FIELDS = ("currency", "category", "opening", *COLUMNS, "closing", "clients")


class RollforwardMismatch(errors.CreditError):
    """A row whose movements do not take its opening to its closing balance."""


@dataclass(frozen=True, slots=True)
class Row:
    """One roll-forward row, in cents. ``reversed`` is signed: what reversals gave back less
    what they took back."""

    currency: str
    category: str
    opening: int
    added: int
    spent: int
    reversed: int
    expired: int
    closing: int
    clients: int

    def adds_up(self) -> bool:
        """Whether the movements take the opening balance to the closing one."""
        moved = self.added - self.spent + self.reversed - self.expired
        return self.opening + moved == self.closing

    def as_text(self) -> dict[str, str | int]:
        """The row with amounts as two-decimal strings (the JSON and CSV form)."""
        amounts = (self.opening, self.added, self.spent, self.reversed, self.expired, self.closing)
        names = ("opening", *COLUMNS, "closing")
        return {
            "currency": self.currency,
            "category": self.category,
            **{n: format_cents(c) for n, c in zip(names, amounts, strict=True)},
            "clients": self.clients,
        }


@dataclass(frozen=True, slots=True)
class Rollforward:
    """A roll-forward from ``first`` to ``last`` (inclusive), checked, with the entries dated
    in the period but recorded after ``recorded_after`` (a UTC moment)."""

    first: str
    last: str
    rows: tuple[Row, ...]
    recorded_after: str
    late: tuple[dict[str, Any], ...]
    late_count: int
    late_totals: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        """``{"from", "to", "rows", "checked", "recorded_after", "late"}``, amounts as text."""
        return {
            "from": self.first,
            "to": self.last,
            "rows": [r.as_text() for r in self.rows],
            "checked": True,
            "recorded_after": self.recorded_after,
            "late": list(self.late),
            "late_count": self.late_count,
            "late_totals": {c: format_cents(v) for c, v in sorted(self.late_totals.items())},
        }


def parse_day(text: str | None, name: str) -> str:
    """A ``YYYY-MM-DD`` day given as ``--name``, or ``ValidationError`` saying so."""
    day = rules.parse_day((text or "").strip())
    if day is None:
        raise errors.ValidationError(f"--{name} must be a date, YYYY-MM-DD")
    return day


def period(first: str | None, last: str | None) -> tuple[str, str]:
    """The period's first and last days, checked."""
    start, end = parse_day(first, "from"), parse_day(last, "to")
    if end < start:
        raise errors.ValidationError(f"--to ({end}) is before --from ({start})")
    return start, end


def end_of_day_utc(ledger: Ledger, day: str) -> str:
    """The moment a day ends in the configured zone, as UTC text comparable with entries'
    recording times."""
    zone = ledger.tz or dt.datetime.now().astimezone().tzinfo
    end = dt.datetime.combine(dt.date.fromisoformat(day) + dt.timedelta(days=1), dt.time(), zone)
    return utc_text(end)


def recorded_after(ledger: Ledger, text: str | None, last: str) -> str:
    """The moment after which an entry counts as recorded late: the end of the period's last
    day, or ``--recorded-after`` (a day: its end; or a UTC time, ``...Z``)."""
    if not text:
        return end_of_day_utc(ledger, last)
    value = text.strip()
    if len(value) == 10:  # a day, not a time
        return end_of_day_utc(ledger, parse_day(value, "recorded-after"))
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise errors.ValidationError(
            "--recorded-after must be a day (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM:SSZ)"
        )
    return utc_text(moment)


def build(
    ledger: Ledger,
    first: str | None,
    last: str | None,
    currency: str | None = None,
    by_category: bool = False,
    late_after: str | None = None,
) -> Rollforward:
    """The roll-forward of a period, every row checked (``RollforwardMismatch`` otherwise)."""
    start, end = period(first, last)
    cutoff = recorded_after(ledger, late_after, end)
    figures = ledger.store.reports.figures(start, end, by_category, cutoff, LATE_LIMIT)
    held = figures.currencies | {c for c, _ in figures.closing}
    codes = sorted(held | {c for c, *_ in figures.moves})
    if currency:
        code = currency.strip().upper()
        setting = ledger.store.get_settings().get("currencies", currencies.ISO)
        if code not in codes and code not in currencies.allowed(setting):
            raise errors.ValidationError(f"Unknown currency {code[:10]}: no client holds it")
        codes = [code]
    elif not codes:
        codes = ["USD"]
    names = [c.name for c in ledger.categories()] if by_category else [""]
    rows = [row for code in codes for row in _rows(figures, code, names)]
    wrong = [r for r in rows if not r.adds_up()]
    if wrong:
        text = "; ".join(
            f"{r.currency} {r.category or 'all'}: opening {format_cents(r.opening)}, "
            f"closing {format_cents(r.closing)}" for r in wrong
        )  # fmt: skip
        raise RollforwardMismatch(f"The roll-forward does not add up ({text}): run verify")
    late = tuple(
        {
            "id": int(r[0]), "clientid": int(r[1]), "currency": r[2], "date": r[3],
            "recorded": r[4], "amount": format_cents(int(r[5])), "kind": r[6] or "",
            "category": r[7] or "", "description": r[8],
        }
        for r in figures.late
        if not currency or r[2] == codes[0]
    )  # fmt: skip
    totals = {c: v for c, v in figures.late_totals.items() if not currency or c == codes[0]}
    count = sum(n for c, n in figures.late_counts.items() if not currency or c == codes[0])
    return Rollforward(start, end, tuple(rows), cutoff, late, count, totals)


def _rows(figures: Figures, code: str, names: list[str]) -> list[Row]:
    """The rows of one currency: every named category, then any other the entries use.

    Without categories the opening is the one computed from the entries' amounts. With them a
    category's opening is its closing less its movements; their sum must be that opening.
    """
    used = {k[1] for k in figures.closing if k[0] == code} | {
        k[1] for k in figures.moves if k[0] == code
    }
    order = names + sorted(used - set(names))
    rows = []
    for name in order:
        key = (code, name)
        moves = [figures.moves.get((code, name, c), 0) for c in COLUMNS]
        closing = figures.closing.get(key, 0)
        opening = figures.opening_totals.get(code, 0) if name == "" else closing - sum(moves)
        added, spent, reversed_, expired = moves[0], -moves[1], moves[2], -moves[3]
        rows.append(
            Row(code, name or "all", opening, added, spent, reversed_, expired, closing,
                figures.clients.get(key, 0))
        )  # fmt: skip
    if names != [""] and sum(r.opening for r in rows) != figures.opening_totals.get(code, 0):
        total = format_cents(figures.opening_totals.get(code, 0))
        raise RollforwardMismatch(
            f"The roll-forward does not add up: the {code} categories open at "
            f"{format_cents(sum(r.opening for r in rows))} but the entries up to the day "
            f"before say {total}: run verify"
        )
    return rows
