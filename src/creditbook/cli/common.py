"""Helpers every command shares: settings, the store, the actor, and output."""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ..config import Settings
from ..model import Actor
from ..store import Store, store_from_settings

#: The largest id a command accepts (a signed 64-bit integer, as the stores hold).
MAX_ID = 2**63 - 1


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (and exit status 2), no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message}\n")


def bounded(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        digits = text.strip().removeprefix("-")
        if not (digits.isascii() and digits.isdigit() and len(digits) < 20) or not (
            low <= int(text) <= high
        ):
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}")
        return int(text)

    parse.__name__ = "number"
    return parse


def cli_actor(args: argparse.Namespace) -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return Actor(f"cli:{user}")


def settings_for(args: argparse.Namespace) -> Settings:
    return Settings.from_env(database=getattr(args, "database", None))


def store_for(args: argparse.Namespace) -> Store:
    settings = settings_for(args)
    return store_from_settings(settings)


def plural(count: int, word: str, many: str = "") -> str:
    """``1 entry``, ``2 entries``, ``1 row``, ``3 rows``."""
    if count == 1:
        return f"{count:,} {word}"
    return f"{count:,} {many or word + 's'}"


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def cell(value: object) -> str:
    """Text for one table cell: control characters (a newline in a name) shown escaped."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers], *[[cell(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
