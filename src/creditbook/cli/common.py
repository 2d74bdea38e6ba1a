"""Helpers every command shares: settings, the store, the actor, and output."""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Sequence
from typing import Any

from ..config import Settings
from ..model import Actor
from ..store import Store, store_from_settings


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


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
