"""Import through any WHMCS API endpoint (Creditbook's included)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from .. import errors
from .model import SourceAdmin, SourceClient, SourceCredit, source_cents, source_day
from .sources import DETAILS

PAGE = 250


class WhmcsApi:
    """A ``Source`` over any WHMCS API (Creditbook's included): GetClients, GetClientsDetails
    and GetCredits. The API names no admins, so none are imported and entries keep the admin
    id only when the API gives one (Creditbook's does)."""

    actor = "import:whmcs-api"

    def __init__(self, url: str, identifier: str, secret: str, timeout: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise errors.ValidationError("The source is an http(s):// URL of a WHMCS API")
        self.url = url if url.endswith("api.php") else url.rstrip("/") + "/includes/api.php"
        self.name = f"whmcs-api:{parts.hostname}{':' + str(parts.port) if parts.port else ''}"
        self._auth = {"identifier": identifier, "secret": secret, "responsetype": "json"}
        self.timeout = timeout
        self._ids: list[int] | None = None
        self.problems: list[dict[str, Any]] = []

    def _call(self, action: str, **params: Any) -> dict[str, Any]:
        body = urllib.parse.urlencode({"action": action, **self._auth, **params}).encode()
        request = urllib.request.Request(self.url, body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:  # noqa: S310
                data: dict[str, Any] = json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            try:
                data = json.loads(exc.read())
            except ValueError:
                raise errors.StoreError(f"{action} failed: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise errors.StoreError(f"{action} failed: {exc}") from None
        if data.get("result") != "success":
            raise errors.StoreError(f"{action} failed: {data.get('message', data)}")
        return data

    def _client_ids(self) -> list[int]:
        if self._ids is None:
            ids: list[int] = []
            start = 0
            while True:
                page = self._call("GetClients", limitstart=start, limitnum=PAGE)
                rows = (page.get("clients") or {}).get("client") or []
                ids += [int(r["id"]) for r in rows]
                start += len(rows)
                if not rows or start >= int(page.get("totalresults", 0)):
                    break
            self._ids = sorted(set(ids))
        return self._ids

    def counts(self) -> tuple[int, int]:
        """Clients (credit rows are only known once read: counted as zero)."""
        return len(self._client_ids()), 0

    def default_currency(self) -> str:
        """USD: every client read through the API names its own currency."""
        return "USD"

    def admins(self) -> list[SourceAdmin]:
        """None: the API does not list admins."""
        return []

    def ids(self) -> tuple[list[int], Iterator[tuple[int, int]]]:
        """Client ids; credit ids are checked as each client's rows are read."""
        return self._client_ids(), iter(())

    def groups(self) -> Iterator[tuple[SourceClient | None, list[SourceCredit]]]:
        """Each client with its whole credit log."""
        for client_id in self._client_ids():
            details = self._call("GetClientsDetails", clientid=client_id)
            c = details.get("client") or details
            client = SourceClient(
                id=client_id,
                firstname=str(c.get("firstname", "")),
                lastname=str(c.get("lastname", "")),
                companyname=str(c.get("companyname", "")),
                email=str(c.get("email", "")),
                currency=str(c.get("currency_code") or "") or None,
                status=str(c.get("status", "Active")),
                created=source_day(str(c.get("datecreated", ""))),
                balance_cents=source_cents(str(c.get("credit", "0") or "0")),
                details={k: str(c.get(k, "") or "") for k in DETAILS},
            )
            rows: list[SourceCredit] = []
            start = 0
            while True:
                page = self._call("GetCredits", clientid=client_id, limitstart=start, limitnum=1000)
                credits = (page.get("credits") or {}).get("credit") or []
                for e in credits:
                    try:
                        amount = source_cents(str(e.get("amount", "0")))
                    except errors.ValidationError as exc:
                        self.problems.append(
                            {"table": "credits", "id": int(e["id"]), "reason": exc.message}
                        )
                        continue
                    rows.append(
                        SourceCredit(
                            id=int(e["id"]),
                            client_id=client_id,
                            admin_id=int(e.get("adminid") or 0),
                            date=source_day(str(e.get("date", ""))),
                            description=str(e.get("description", "")),
                            amount_cents=amount,
                            relid=int(e.get("relid") or 0),
                        )
                    )
                start += len(credits)
                # WHMCS itself returns the whole log at once; Creditbook pages it.
                if len(credits) < 1000 or start >= int(page.get("totalresults", 0)):
                    break
            yield client, sorted(rows, key=lambda r: r.id)

    def close(self) -> None:
        """Nothing to release."""
