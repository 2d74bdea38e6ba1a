"""Request parameters as PHP sees them: merged query and body, nested arrays, empty = absent."""

from __future__ import annotations

import json
import re
from typing import Union
from urllib.parse import parse_qsl

Value = Union[str, "Params"]
Params = dict[str, Value]

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_NOT_ACTION = re.compile(r"[^a-z0-9]")
_COUNT = re.compile(r"[0-9]{1,18}")
MAX_DEPTH = 8


def normalise_action(name: str) -> str:
    """Normalise an action name: lower case, only ``[a-z0-9]`` (``Add_Credit`` -> ``addcredit``)."""
    return _NOT_ACTION.sub("", name.lower())


def parse_pairs(pairs: list[tuple[str, str]], into: Params | None = None) -> Params:
    """Build nested parameters from key/value pairs the way PHP does (``a[b][]=c``)."""
    params: Params = {} if into is None else into
    for key, value in pairs:
        _put(params, key, value)
    return params


def _put(params: Params, key: str, value: str) -> None:
    head, bracket, rest = key.partition("[")
    if not bracket or not head or "]" not in rest:
        params[key] = value
        return
    parts = [head, *(m.group(1) for m in _BRACKETS.finditer("[" + rest))][: MAX_DEPTH + 1]
    node = params
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "":
            part = str(sum(1 for k in node if k.isdigit()))
        if last:
            node[part] = value
            return
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child


def parse_query(raw: bytes | str) -> Params:
    """Parse a query string or an urlencoded body (invalid UTF-8 becomes U+FFFD)."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace")
    return parse_pairs(pairs)


def clean_text(text: str) -> str:
    """Replace lone surrogates (possible in JSON escapes and Python strings) with U+FFFD.

    Form bodies already turn invalid UTF-8 into U+FFFD; this gives every other way in the same
    rule, so no text that cannot be encoded ever reaches the ledger or the database.
    """
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def parse_json_object(raw: bytes) -> Params:
    """Parse a JSON object body; numbers keep their exact text (never float)."""
    try:
        data = json.loads(raw.decode("utf-8", "replace"), parse_float=str, parse_int=str)
    except (ValueError, RecursionError):
        return {}
    return _from_json(data, 0) if isinstance(data, dict) else {}


def _from_json(data: dict[str, object], depth: int) -> Params:
    out: Params = {}
    for raw_key, value in data.items():
        key = clean_text(raw_key)
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "1" if value else ""
        elif isinstance(value, dict):
            if depth < MAX_DEPTH:
                out[key] = _from_json(value, depth + 1)
        elif isinstance(value, list):
            if depth < MAX_DEPTH:
                out[key] = _from_json({str(i): v for i, v in enumerate(value)}, depth + 1)
        else:
            out[key] = clean_text(str(value))
    return out


def merge(query: Params, body: Params) -> Params:
    """Merge query and body parameters; the body wins on a clash."""
    return {**query, **body}


def scalar(params: Params, name: str) -> str | None:
    """Return a parameter as text; empty counts as absent, and an array reads as ``Array``."""
    value = params.get(name)
    if isinstance(value, dict):
        return "Array" if value else None
    return value or None


def integer(params: Params, name: str, default: int) -> int:
    """Return a non-negative integer parameter, or the default when absent or malformed."""
    text = scalar(params, name)
    if text is None or not _COUNT.fullmatch(text):
        return default
    return int(text)
