"""What an import reads (source records) and what it tells (the report)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import errors
from ..money import format_cents, parse_cents


def source_cents(text: str) -> int:
    """Exact cents from a source's decimal text (``12.30``, ``-5``), as the money module parses
    them: at most two decimals, no exponent, within the balance range; else ``ValidationError``.
    """
    try:
        return parse_cents(text.strip())
    except ValueError:
        raise errors.ValidationError(
            f"the amount {text[:40]!r} is not a number with at most two decimals"
        ) from None


#: The ids a source row may have: WHMCS's are unsigned 32-bit integers (``int(10)``).
MAX_SOURCE_ID = 2**32 - 1


def source_id(text: object, what: str, high: int = MAX_SOURCE_ID) -> int:
    """A source's id from 1 to ``high`` (WHMCS's range by default); else ``ValidationError``."""
    value = str(text if text is not None else "").strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 19) or not (
        1 <= int(value) <= high
    ):
        raise errors.ValidationError(
            f"the {what} {value[:40]!r} is not a whole number from 1 to {high}"
        )
    return int(value)


def source_day(text: str) -> str:
    """A source's date as ``YYYY-MM-DD``, or "" for a zero or unreadable one (WHMCS writes
    ``0000-00-00``)."""
    text = (text or "")[:10]
    if len(text) != 10 or text.startswith("0000") or text[5:7] == "00" or text[8:10] == "00":
        return ""
    return text


#: What the import makes of WHMCS credit (which has neither categories nor expiry).
GRANT_NOTE = (
    "WHMCS credit is imported as paid credit that never expires; a removal in its log took "
    "the oldest credit first"
)


@dataclass(frozen=True, slots=True)
class SourceAdmin:
    """An admin as the source has it (its password is never read)."""

    id: int
    username: str
    firstname: str
    lastname: str
    email: str


@dataclass(frozen=True, slots=True)
class SourceClient:
    """A client as the source has it; ``balance_cents`` is the balance the source shows."""

    id: int
    firstname: str
    lastname: str
    companyname: str
    email: str
    currency: str | None  # None: the source named a currency that does not exist
    status: str
    created: str  # YYYY-MM-DD, or "" when unknown or zero
    balance_cents: int
    details: dict[str, str]


@dataclass(frozen=True, slots=True)
class SourceCredit:
    """A credit-log row as the source has it (``date`` is "" when zero or unknown)."""

    id: int
    client_id: int
    admin_id: int
    date: str
    description: str
    amount_cents: int
    relid: int


class Source(Protocol):
    """A place to import from: ids ascending, credits by client then id."""

    #: Names the source in provenance and reports (never holds a password).
    name: str
    #: The actor recorded on imported entries, e.g. ``import:whmcs-db``.
    actor: str

    def counts(self) -> tuple[int, int]:
        """How many clients and credit rows there are (for progress)."""

    def default_currency(self) -> str:
        """The code of the source's default currency."""

    def admins(self) -> list[SourceAdmin]:
        """Every admin."""

    def groups(self) -> Iterator[tuple[SourceClient | None, list[SourceCredit]]]:
        """Every client by id with its credit rows by id; rows whose client does not exist
        come as (None, rows)."""

    def ids(self) -> tuple[list[int], Iterator[tuple[int, int]]]:
        """Client ids, and (credit id, client id) pairs: for the collision check before
        anything is written (a source that cannot list credit ids cheaply gives none; its
        rows are checked chunk by chunk instead)."""

    def close(self) -> None:
        """Release connections."""


@dataclass
class Report:
    """Everything an import did, found and decided; ``as_dict`` is the ``--json`` form."""

    source: str
    reconcile: str
    dry_run: bool
    clients_in_source: int = 0
    clients_imported: int = 0
    clients_already: int = 0
    credits_in_source: int = 0
    credits_imported: int = 0
    credits_already: int = 0
    admins_imported: int = 0
    admins_already: int = 0
    adjustments: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    verified: bool = False
    seconds: float = 0.0

    def warn(self, kind: str, table: str, row_id: int, detail: str) -> None:
        """Record a quirk that was handled (kept in the report, never silent)."""
        self.warnings.append({"kind": kind, "table": table, "id": row_id, "detail": detail})

    def skip(self, table: str, row_id: int, reason: str) -> None:
        """Record a row that was not imported, and why."""
        self.skipped.append({"table": table, "id": row_id, "reason": reason})

    def add_total(self, currency: str, key: str, cents: int) -> None:
        """Add to a per-currency total (source balance, source log, Creditbook)."""
        empty = {"source_balance": 0, "source_log": 0, "imported": 0}
        row = self.totals.setdefault(currency, empty)
        row[key] += cents

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (amounts as exact decimal text)."""
        return {
            "source": self.source,
            "reconcile": self.reconcile,
            "dry_run": self.dry_run,
            "clients": {
                "in_source": self.clients_in_source,
                "imported": self.clients_imported,
                "already_imported": self.clients_already,
            },
            "credits": {
                "in_source": self.credits_in_source,
                "imported": self.credits_imported,
                "already_imported": self.credits_already,
            },
            "admins": {"imported": self.admins_imported, "already_imported": self.admins_already},
            "adjustments": self.adjustments,
            "category": {"name": "paid", "expires": None, "note": GRANT_NOTE},
            "differences": self.differences,
            "skipped": self.skipped,
            "warnings": self.warnings,
            "totals": {
                code: {k: format_cents(v) for k, v in row.items()}
                for code, row in sorted(self.totals.items())
            },
            "verified": self.verified,
            "seconds": round(self.seconds, 2),
        }
