"""A small in-process HTTP client for the console: cookies, forms and uploads over raw ASGI."""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@dataclass
class Page:
    """A response: status, headers (lower-case names; repeated ones joined by newlines), text."""

    status: int
    headers: dict[str, str]
    text: str

    @property
    def location(self) -> str:
        """Where a redirect points."""
        return self.headers.get("location", "")

    def csrf(self) -> str:
        """The page's CSRF token."""
        found = _CSRF.search(self.text)
        assert found, "no CSRF token on the page"
        return found.group(1)

    def alerts(self) -> list[str]:
        """The texts of the page's alerts."""
        return [m.strip() for m in re.findall(r'role="alert"[^>]*>([^<]*)<', self.text)]


@dataclass
class ConsoleClient:
    """Drives an ASGI app like a browser: keeps the session cookie, sends forms."""

    app: Any
    ip: str = "127.0.0.1"
    host: str = "testserver"
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        scheme: str = "http",
    ) -> Page:
        """Send one request; return the response."""
        target, _, query = path.partition("?")
        all_headers = {"host": self.host, **(headers or {})}
        if self.cookies:
            all_headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body:
            all_headers.setdefault("content-length", str(len(body)))
        scope = {
            "type": "http",
            "method": method,
            "path": target,
            "raw_path": target.encode(),
            "root_path": "",
            "scheme": scheme,
            "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in all_headers.items()],
            "client": (self.ip, 50000),
            "server": (self.host, 80),
            "http_version": "1.1",
        }
        chunks = [body]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if chunks:
                return {"type": "http.request", "body": chunks.pop(), "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.run(self.app(scope, receive, send))
        start = sent[0]
        headers_out: dict[str, str] = {}
        for k, v in start["headers"]:
            name = k.decode().lower()
            value = v.decode()
            headers_out[name] = headers_out[name] + "\n" + value if name in headers_out else value
            if name == "set-cookie":
                jar: SimpleCookie = SimpleCookie()
                jar.load(value)
                for key, morsel in jar.items():
                    if morsel["max-age"] == "0" or not morsel.value or morsel.value == '""':
                        self.cookies.pop(key, None)
                    else:
                        self.cookies[key] = morsel.value
        text = b"".join(m.get("body", b"") for m in sent[1:]).decode("utf-8", "replace")
        return Page(start["status"], headers_out, text)

    def get(self, path: str, **kw: Any) -> Page:
        """GET a path."""
        return self.request("GET", path, **kw)

    def post(
        self,
        path: str,
        data: dict[str, str],
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> Page:
        """POST a form."""
        body = urllib.parse.urlencode(data).encode()
        head = {"content-type": "application/x-www-form-urlencoded", **(headers or {})}
        return self.request("POST", path, body, head, **kw)

    def upload(self, path: str, data: dict[str, str], name: str, content: bytes) -> Page:
        """POST a multipart form with one file."""
        boundary = "----creditbooktest7d2"
        parts = []
        for key, value in data.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
                f"{value}\r\n".encode()
            )
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="credits.csv"\r\nContent-Type: text/csv\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        head = {"content-type": f"multipart/form-data; boundary={boundary}"}
        return self.request("POST", path, b"".join(parts), head)

    def login(self, username: str, password: str) -> Page:
        """Log in through the form."""
        return self.post("/admin/login", {"username": username, "password": password})
