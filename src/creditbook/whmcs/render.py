"""Render result dictionaries as the WHMCS response types: json, xml and nvp."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote_plus
from xml.sax.saxutils import escape

from ..errors import NvpNotSupported, UnsupportedResponseType
from ..version import __version__

FORMATS = ("json", "xml", "nvp")
CONTENT_TYPES = {
    "json": "application/json",
    "xml": "application/xml; charset=utf-8",
    "nvp": "text/plain; charset=utf-8",
}


def response_type(value: str | None) -> str:
    """Validate ``responsetype`` (case-insensitive, json by default)."""
    if not value:
        return "json"
    fmt = value.lower()
    if fmt not in FORMATS:
        raise UnsupportedResponseType(value)
    return fmt


class Stream:
    """A list whose items are produced lazily while the response is written (huge histories)."""

    def __init__(self, items: Iterable[dict[str, Any]]) -> None:
        self.items = items

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.items)


def is_list_result(result: Mapping[str, Any]) -> bool:
    """Tell whether a result holds a list (such results refuse NVP)."""
    return any(
        isinstance(v, Mapping) and any(isinstance(x, (list, Stream)) for x in v.values())
        for v in result.values()
    )


def render(result: Mapping[str, Any], fmt: str) -> Iterator[bytes]:
    """Yield the encoded body of a result in a response type."""
    if fmt == "xml":
        return _xml(result)
    if fmt == "nvp":
        if is_list_result(result):
            raise NvpNotSupported()
        return iter([_nvp(result)])
    return _json(result)


def to_plain(value: Any) -> Any:
    """Materialise streams so a result is an ordinary dict (for ``local_api``)."""
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, Stream)):
        return [to_plain(v) for v in value]
    return value


# --- json ---------------------------------------------------------------------------------------

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json(result: Mapping[str, Any]) -> Iterator[bytes]:
    if not any(isinstance(v, Mapping) for v in result.values()):
        yield _dumps(result).encode("utf-8", "surrogatepass")
        return
    yield from (chunk.encode("utf-8", "surrogatepass") for chunk in _json_value(result))


def _json_value(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        yield "{"
        for i, (k, v) in enumerate(value.items()):
            yield ("," if i else "") + _dumps(str(k)) + ":"
            yield from _json_value(v)
        yield "}"
    elif isinstance(value, (list, Stream)):
        yield "["
        buf: list[str] = []
        for i, item in enumerate(value):
            buf.append(("," if i else "") + "".join(_json_value(item)))
            if len(buf) >= 256:
                yield "".join(buf)
                buf.clear()
        yield "".join(buf) + "]"
    else:
        yield _dumps(value)


# --- xml ----------------------------------------------------------------------------------------


def _xml(result: Mapping[str, Any]) -> Iterator[bytes]:
    yield (
        f'<?xml version="1.0" encoding="utf-8"?>\n<whmcsapi version="{escape(__version__)}">\n'
    ).encode()
    buf: list[str] = []
    for key, value in result.items():
        for chunk in _xml_element(str(key), value):
            buf.append(chunk)
            if len(buf) >= 512:
                yield "".join(buf).encode("utf-8")
                buf.clear()
    buf.append("</whmcsapi>\n")
    yield "".join(buf).encode("utf-8")


def _xml_element(tag: str, value: Any) -> Iterator[str]:
    if isinstance(value, (list, Stream)):
        for item in value:
            yield from _xml_element(tag, item)
    elif isinstance(value, Mapping):
        yield f"<{tag}>"
        for key, item in value.items():
            yield from _xml_element(str(key), item)
        yield f"</{tag}>\n"
    else:
        yield f"<{tag}>{escape(_text(value), _QUOTES)}</{tag}>\n"


# A raw CR would reach the reader as LF (XML 1.0 section 2.11 normalises line ends): escape it.
_QUOTES = {'"': "&quot;", "\r": "&#13;"}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# --- nvp ----------------------------------------------------------------------------------------


def _nvp(result: Mapping[str, Any]) -> bytes:
    # Values are form-encoded (space as +, + and the separators escaped): pairs split cleanly
    # and every value round-trips through standard form decoding.
    pairs = (
        f"{k}={quote_plus(_text(v), safe='/:@,.-_()')}"
        for k, v in result.items()
        if not isinstance(v, Mapping)
    )
    return ";".join(pairs).encode("utf-8")
