"""Request parameters as PHP sees them: merged query and body, nested arrays, empty = absent.

Parsing is linear in the size of the input and bounded as PHP bounds it (``max_input_vars`` and
``max_input_nesting_level``): the cheap count comes first, and over a limit nothing is parsed.
"""

from __future__ import annotations

import json
import re
from typing import Union
from urllib.parse import unquote

from .. import errors

Value = Union[str, "Params"]
Params = dict[str, Value]

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_NOT_ACTION = re.compile(r"[^a-z0-9]")
_COUNT = re.compile(r"[0-9]{1,18}")
#: PHP's defaults: at most 1,000 variables per source, nested at most 64 deep.
MAX_PARAMS = 1000
MAX_DEPTH = 64
#: What a JSON boolean, object or array becomes where a scalar is expected. Every field's own
#: check refuses it (NUL is refused in all text and matches no lookup), so such a value gets the
#: field's usual message instead of being read as ``1`` or ``Array``.
NOT_SCALAR = "\x00(not a scalar)"


def normalise_action(name: str) -> str:
    """Normalise an action name: lower case, only ``[a-z0-9]`` (``Add_Credit`` -> ``addcredit``)."""
    return _NOT_ACTION.sub("", name.lower())


def parse_pairs(pairs: list[tuple[str, str]]) -> Params:
    """Build nested parameters from key/value pairs the way PHP does (``a[b][]=c``)."""
    if len(pairs) > MAX_PARAMS:
        raise errors.TooManyParameters()
    params: Params = {}
    # The next free index of each list appended to with ``[]`` (PHP's nNextFreeElement), so
    # that appending is O(1); the node is kept alongside so its id cannot be reused.
    next_free: dict[int, tuple[Params, int]] = {}
    for key, value in pairs:
        _put(params, key, value, next_free)
    return params


def _put(params: Params, key: str, value: str, next_free: dict[int, tuple[Params, int]]) -> None:
    head, bracket, rest = key.partition("[")
    if not bracket or not head or "]" not in rest:
        params[key] = value
        return
    parts = [head, *(m.group(1) for m in _BRACKETS.finditer("[" + rest))]
    if len(parts) > MAX_DEPTH:
        raise errors.NestingTooDeep()
    node = params
    for i, part in enumerate(parts):
        if part == "":
            part = str(next_free.get(id(node), (node, 0))[1])
        if part.isdigit() and len(part) < 19 and (part == "0" or part[0] != "0"):
            index = int(part) + 1
            if index > next_free.get(id(node), (node, 0))[1]:
                next_free[id(node)] = (node, index)
        if i == len(parts) - 1:
            node[part] = value
            return
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child


def parse_query(raw: bytes | str) -> Params:
    """Parse a query string or an urlencoded body as UTF-8 (invalid sequences become U+FFFD)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if not text:
        return {}
    # Counted before parsing: an oversized parameter list costs one scan, not a parse.
    if text.count("&") >= MAX_PARAMS:
        raise errors.TooManyParameters()
    return parse_pairs(split_pairs(text))


def split_pairs(text: str) -> list[tuple[str, str]]:
    """Split ``a=1&b=x+y`` into decoded pairs, as ``parse_qsl(keep_blank_values=True)`` does.

    Written out because the library function unquotes every name and value and costs about
    5 us for an AddCredit's seven pairs, a few percent of the request (bench/ANALYSIS.md).
    """
    pairs: list[tuple[str, str]] = []
    for piece in text.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        if "+" in piece:
            name, value = name.replace("+", " "), value.replace("+", " ")
        if "%" in piece:
            name, value = unquote(name, errors="replace"), unquote(value, errors="replace")
        pairs.append((name, value))
    return pairs


def clean_text(text: str) -> str:
    """Replace lone surrogates (possible in JSON escapes and Python strings) with U+FFFD.

    Form bodies already turn invalid UTF-8 into U+FFFD; this gives every other way in the same
    rule, so no text that cannot be encoded ever reaches the ledger or the database.
    """
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def parse_json_object(raw: bytes) -> Params:
    """Parse a JSON object body; numbers keep their exact text (never float).

    Booleans, objects and arrays read as ``NOT_SCALAR`` (no action takes a list or a map).
    """
    try:
        data = json.loads(raw.decode("utf-8", "replace"), parse_float=str, parse_int=str)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    if len(data) > MAX_PARAMS:
        raise errors.TooManyParameters()
    out: Params = {}
    for raw_key, value in data.items():
        if value is None:
            continue
        if isinstance(value, (bool, dict, list)):
            out[clean_text(raw_key)] = NOT_SCALAR
        else:
            out[clean_text(raw_key)] = clean_text(str(value))
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
