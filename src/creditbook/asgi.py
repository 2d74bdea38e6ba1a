"""ASGI plumbing the HTTP app and the web console share: message types, and reading a body
whole before anything acts on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from . import errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def form_items(
    scope: Scope,
    body: bytes,
    *,
    max_files: int,
    max_fields: int,
    max_part_size: int = 1024 * 1024,
    filenames: dict[str, str] | None = None,
) -> list[tuple[str, str | bytes]]:
    """The fields of a multipart body already read whole, in order (files as their bytes;
    their names go into ``filenames`` by field when it is given).

    Starlette's parser (imported here, off the API's hot path) raises its
    ``MultiPartException`` for a body over the limits.
    """
    from starlette.datastructures import UploadFile
    from starlette.requests import Request

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    items: list[tuple[str, str | bytes]] = []
    async with Request(scope, replay).form(
        max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
    ) as form:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if filenames is not None:
                    filenames[name] = value.filename or ""
                items.append((name, await value.read()))
            else:
                items.append((name, value))
    return items


async def read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes | None:
    """Read the whole request body; None when it did not arrive whole.

    A client that disconnects (or half-closes, or times out) before the declared length or the
    final chunk has arrived sent no request: what arrived is never parsed or acted on. A body
    over ``limit`` bytes (declared or sent) raises ``BodyTooLarge`` as soon as it is known.
    """
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise errors.BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise errors.BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if declared.isdigit() and size != int(declared):
        return None
    return b"".join(chunks)
