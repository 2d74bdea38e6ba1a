"""Importing WHMCS data (a live database, any WHMCS API, a Credits Reviewer CSV)."""

from __future__ import annotations

from .engine import Importer
from .model import Report, Source, SourceAdmin, SourceClient, SourceCredit

__all__ = ["Importer", "Report", "Source", "SourceAdmin", "SourceClient", "SourceCredit"]
