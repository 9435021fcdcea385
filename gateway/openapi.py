"""The OpenAPI 3 document, generated from the route registry and its marshmallow schemas."""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from gateway import schemas
from gateway.errors import status_for
from gateway.http import ROUTES
from gateway.request_keys import HEADER, KEY_MAX, changes_state
from gateway.roles import EVERYONE

_PARAM = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_][a-zA-Z0-9_]*)>")

IDEMPOTENCY_KEY = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": KEY_MAX},
    "description": "Any unique string of 1 to 64 printable characters (a UUID, for example) "
    "that names this request: sent again with the same body (a retry after a lost answer), "
    "it gets the first answer again and nothing happens twice; with a different body it is "
    "422 `idempotency_key_reused`. Keys are per company. Without one, each HTTP request is "
    "a request of its own.",
}


# what a route's declaration cannot say: the query parameters a GET reads (the schema the
# route loads `request.args` with), the headers a route reads, what a raw body is (in the
# operation's description: no schema describes it, the route never parses it), and
# another content type an `Accept` header may choose
HEADERS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("POST", "/webhooks/stripe"): [
        {
            "in": "header",
            "name": "Stripe-Signature",
            "required": False,
            "schema": {"type": "string"},
            "description": "Stripe's signature of the body with the endpoint's webhook secret "
            "(`t=…,v1=…`); missing, older than 5 minutes, or wrong is 400 `invalid_signature`",
        }
    ],
}
RAW_BODIES: dict[tuple[str, str], str] = {
    ("POST", "/webhooks/stripe"): "The body is a Stripe event exactly as Stripe sent it "
    '(`{"id": "evt_…", "type": "payment_intent.succeeded", "data": {"object": {…}}}`), at '
    "most 256 KiB of UTF-8: the signature covers these bytes, so the gateway hands them to "
    "billing unparsed. No session and no CSRF token: the signature is the credential.",
}
QUERIES: dict[tuple[str, str], type[Schema]] = {
    ("GET", "/api/v1/payments"): schemas.PaymentsQuery,
    ("GET", "/api/v1/licenses/<license_id>/history"): schemas.HistoryQuery,
    ("GET", "/api/v1/audit-events"): schemas.AuditEventsQuery,
}
ALTERNATE_CONTENT: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/v1/audit-events"): {
        "text/csv": {
            "schema": {
                "type": "string",
                "description": "`audit-events.csv` (`Accept: text/csv` or `?format=csv`): "
                "at, actor_type, actor_email, action, target_type, target_id, details; "
                "every matching event, at most 10,000",
            }
        }
    },
}


def _schema_name(schema: type[Schema] | Schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__


@lru_cache(maxsize=1)
def build() -> dict[str, Any]:
    spec = APISpec(
        title="License Portal API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
        info={
            "description": "Customer portal and product activation API. Errors are always "
            '`{"error": {"code", "message", "details", "request_id"}}`; every answer carries '
            "`X-Request-ID` (the client's, if it sent a safe one)."
        },
    )
    spec.components.schema("Error", schema=schemas.Error)
    spec.components.security_scheme("session", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme(
        "lease",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "the `lease_token` of the check-out (POST /api/v1/leases)",
        },
    )
    paths: dict[str, dict[str, Any]] = {}
    for entry in ROUTES:
        path = _PARAM.sub(r"{\1}", entry.path)
        parameters = [
            {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(entry.path)
        ]
        query = QUERIES.get((entry.method, entry.path))
        if query is not None:
            parameters.append({"in": "query", "schema": query})  # apispec: one per field
        parameters += copy.deepcopy(HEADERS.get((entry.method, entry.path), []))
        success: dict[str, Any] = {"description": "OK"}
        if entry.response is not None:
            success["content"] = {entry.content_type: {"schema": entry.response}}
        elif entry.content_type != "application/json":
            success["content"] = {entry.content_type: {"schema": {"type": "string"}}}
        alternate = ALTERNATE_CONTENT.get((entry.method, entry.path))
        if alternate is not None:
            success.setdefault("content", {}).update(copy.deepcopy(alternate))
        responses: dict[str, Any] = {str(entry.status): success}
        for status, schema in entry.responses.items():
            responses[str(status)] = {
                "description": "Accepted" if status == 202 else "OK",
                "content": {"application/json": {"schema": schema}},
            }
        error_codes = list(entry.errors)
        if entry.body is not None:
            error_codes += [
                "invalid_json",
                "validation_error",
                "payload_too_large",
                "unsupported_media_type",
            ]
        if entry.raw_body:
            error_codes += ["bad_request", "payload_too_large"]
        if changes_state(entry.method):
            parameters.append(copy.deepcopy(IDEMPOTENCY_KEY))  # apispec edits in place
            error_codes += ["idempotency_key_reused", "validation_error"]
        if entry.auth == "session":
            error_codes.append("unauthenticated")
            if set(entry.roles) != set(EVERYONE):
                error_codes.append("forbidden")
        if entry.auth == "lease":
            error_codes.append("invalid_lease_token")
        error_codes.append("service_unavailable")
        for code in dict.fromkeys(error_codes):  # each once, in order
            status = str(status_for(code))
            described = responses.setdefault(
                status,
                {"description": "", "content": {"application/json": {"schema": "Error"}}},
            )
            described["description"] = ", ".join(
                filter(None, [described["description"], f"`{code}`"])
            )
        operation: dict[str, Any] = {
            "summary": entry.summary,
            "tags": entry.tags,
            "responses": responses,
        }
        if parameters:
            operation["parameters"] = parameters
        if entry.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": entry.body}},
            }
        elif entry.raw_body:
            operation["description"] = RAW_BODIES[(entry.method, entry.path)]
        if entry.auth == "session":
            operation["security"] = [{"session": []}]
            operation["x-roles"] = list(entry.roles)
        elif entry.auth == "lease":
            operation["security"] = [{"lease": []}]
        paths.setdefault(path, {})[entry.method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
