"""The Reports page: the month-end roll-forward (every level may read it), a chart of the
closing balance per month, and the same figures as CSV."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import errors, rollforward
from .charts import Chart, step_chart
from .lists import csv_response, file_name
from .session import Staffer
from .web import Web

HEAD = list(rollforward.FIELDS)
#: Months the closing-balance chart covers (ending with the report's last month).
CHART_MONTHS = 12


def last_month(today: str) -> tuple[str, str]:
    """The first and last day of the month before ``today``'s (the default period)."""
    first_this = dt.date.fromisoformat(today).replace(day=1)
    last = first_this - dt.timedelta(days=1)
    return last.replace(day=1).isoformat(), last.isoformat()


def month_ends(last: str, count: int) -> list[str]:
    """The ends of ``count`` months, the last one ``last``'s month (its end, or ``last`` when
    the month is not over)."""
    day = dt.date.fromisoformat(last)
    ends: list[str] = []
    month = day.replace(day=1)
    for _ in range(count):
        following = (month + dt.timedelta(days=32)).replace(day=1)
        ends.append(min(following - dt.timedelta(days=1), day).isoformat())
        month = (month - dt.timedelta(days=1)).replace(day=1)
    return ends[::-1]


class ReportPages:
    """``/reports`` and ``/reports.csv``."""

    def __init__(self, web: Web) -> None:
        self.web = web

    def routes(self) -> list[Route]:
        """The page and its export (every access level)."""
        g = self.web.guard()
        return [Route("/reports", g(self.page)), Route("/reports.csv", g(self.export))]

    def _asked(self, request: Request) -> tuple[str, str, str, bool]:
        q = request.query_params
        first, last = last_month(self.web.ledger.today())
        by = q.get("by", "") == "category"
        return q.get("from") or first, q.get("to") or last, q.get("currency", "").strip(), by

    def page(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The roll-forward of a period (the previous month by default)."""
        first, last, currency, by = self._asked(request)
        values = {"from": first, "to": last, "currency": currency, "by": "category" if by else ""}
        try:
            report = rollforward.build(self.web.ledger, first, last, currency or None, by)
        except errors.CreditError as exc:
            return self.web.render(
                "reports.html", who, 400, report=None, charts=[], error=exc.message,
                values=values,
            )  # fmt: skip
        return self.web.render(
            "reports.html", who, report=report, charts=self._charts(report), error="",
            values=values, query=request.url.query,
        )  # fmt: skip

    def _charts(self, report: rollforward.Rollforward) -> list[tuple[str, Chart]]:
        """Per currency of the report: its closing balance at the end of each of the last
        ``CHART_MONTHS`` months (the opening from a roll-forward, then each month's net)."""
        ends = month_ends(report.last, CHART_MONTHS)
        start = ends[0][:8] + "01"
        ledger = self.web.ledger
        codes = sorted({r.currency for r in report.rows})
        span = rollforward.build(ledger, start, report.last, codes[0] if len(codes) == 1 else None)
        opening = {r.currency: r.opening for r in span.rows}
        net = ledger.store.reports.monthly_net(start, report.last)
        charts = []
        for code in codes:
            balance, points = opening.get(code, 0), []
            for end in ends:
                balance += net.get((code, end[:7]), 0)
                points.append((end, balance))
            title = f"Closing {code} credit, month by month"
            charts.append((code, step_chart(points, title, code, report.last)))
        return charts

    def export(self, request: Request, who: Staffer, form: dict[str, str]) -> Response:
        """The roll-forward as CSV."""
        first, last, currency, by = self._asked(request)
        try:
            report = rollforward.build(self.web.ledger, first, last, currency or None, by)
        except errors.CreditError as exc:
            return self.web.refusal(who, 400, exc.message)
        rows = [list(r.as_text().values()) for r in report.rows]
        parts = [
            ("from", first),
            ("to", last),
            ("currency", currency),
            ("by", "category" if by else ""),
        ]
        return csv_response(file_name("rollforward", parts), HEAD, rows)
