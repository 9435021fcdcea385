"""A company's audit trail as one: the pages of auth, licensing and billing merged, as JSON or
as a CSV download.

Each of the three services keeps its own part of the trail (common/audit.py) and answers a
page of it for the same query (`list_audit_events(customer_id, query)`, newest first);
`common.audit.merge` makes one page of the three with one cursor that each service reads.
The CSV export pages through the whole selection the same way, up to CSV_MAX_ROWS: a trail
longer than that is narrowed with `since`/`until`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

from werkzeug.wrappers import Request, Response

from common import audit, identifiers
from common.schemas import load
from gateway import schemas
from gateway.responses import security_headers

CSV_MAX_ROWS = 10_000
CSV_FILENAME = "audit-events.csv"
CSV_COLUMNS = (
    "at",
    "actor_type",
    "actor_email",
    "action",
    "target_type",
    "target_id",
    "details",
)
# a cell starting with one of these is a formula to a spreadsheet (CSV injection): a machine
# name or an email is written by whoever named it, so such a cell is quoted with a "'"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def query_of(request: Request, customer_id: str) -> tuple[audit.AuditQuery, bool]:
    """The query of `GET /api/v1/audit-events?limit=&before=&user_id=&action=&since=&until=`
    (422 naming a bad parameter) and whether the caller wants CSV (`?format=csv`, or an
    `Accept` that prefers `text/csv` to JSON)."""
    # an empty parameter (`?action=`, as a cleared filter form sends it) filters nothing
    given = {name: value for name, value in request.args.to_dict().items() if value != ""}
    args = load(schemas.AuditEventsQuery(), given)
    wanted = args.pop("format")
    if args.get("user_id"):
        args["user_id"] = identifiers.user_id(args["user_id"])
    query = audit.query_from(customer_id, args)
    if wanted is not None:
        return query, wanted == "csv"
    accept = request.accept_mimetypes
    return query, accept.quality("text/csv") > accept.quality("application/json")


def page(auth: Any, licensing: Any, billing: Any, query: audit.AuditQuery) -> dict[str, Any]:
    """`{events, next_before}`: the newest `query.limit` events of the whole trail that match
    `query`, newest first; `next_before` null on the last page. Each service answers its
    newest `query.limit` before the cursor, so their merge is the trail's."""
    customer_id, args = query.customer_id, audit.query_args(query)
    parts = [
        auth.list_audit_events(customer_id, args),
        licensing.list_audit_events(customer_id, args),
        billing.list_audit_events(customer_id, args),
    ]
    return audit.merge(parts, query.limit)


def every_event(
    auth: Any,
    licensing: Any,
    billing: Any,
    query: audit.AuditQuery,
    most: int = CSV_MAX_ROWS,
) -> Iterator[dict[str, Any]]:
    """Every event matching `query` (from its cursor on), newest first, at most `most`:
    page after page of the largest size the services answer."""
    query = dataclasses.replace(query, limit=audit.PAGE_MAX)
    given = 0
    while given < most:
        found = page(auth, licensing, billing, query)
        for event in found["events"][: most - given]:
            given += 1
            yield event
        if not found["next_before"]:
            return
        query = dataclasses.replace(query, before=audit.decode_cursor(found["next_before"]))


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_row(event: Mapping[str, Any]) -> list[str]:
    """The CSV_COLUMNS of one event (`details` as compact JSON)."""
    actor = event.get("actor") or {}
    target = event.get("target") or {}
    details = json.dumps(event.get("details") or {}, ensure_ascii=False, sort_keys=True)
    values = (
        event.get("at"),
        actor.get("type"),
        actor.get("email"),
        event.get("action"),
        target.get("type"),
        target.get("id"),
        details,
    )
    return [_cell(value) for value in values]


def csv_text(events: Iterator[dict[str, Any]]) -> str:
    """A header line, then one line per event (RFC 4180 quoting, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for event in events:
        writer.writerow(csv_row(event))
    return out.getvalue()


def csv_response(events: Iterator[dict[str, Any]]) -> Response:
    """The events as the download `audit-events.csv` (UTF-8, with the security headers)."""
    response = Response(csv_text(events), status=200, mimetype="text/csv")
    response.headers.update(security_headers())
    response.headers["Content-Disposition"] = f'attachment; filename="{CSV_FILENAME}"'
    return response
