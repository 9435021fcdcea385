"""The OpenAPI 3 document, generated from the route registry and its marshmallow schemas."""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, ValidationError, fields, validate

from common.schemas import CODE_PATTERN
from common.schemas import ID_PATTERN as ID_PATTERN_OF_IDS
from gateway import schemas
from gateway.errors import status_for
from gateway.http import ROUTES
from gateway.request_keys import HEADER, KEY_MAX, changes_state
from gateway.roles import EVERYONE
from gateway.sessions import CSRF_HEADER, SESSION_COOKIE

_PARAM = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_][a-zA-Z0-9_]*)>")
# marshmallow's `validate.Email`, narrowed to what the document can say in one pattern
EMAIL_PATTERN = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,6}$"
)

IDEMPOTENCY_KEY = {
    "in": "header",
    "name": HEADER,
    "required": False,
    # printable ASCII: a header travels as Latin-1, whose C1 and no-break space are not
    # printable; servers drop spaces around a header's value, so a key neither starts nor
    # ends with one
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": KEY_MAX,
        "pattern": f"^[!-~]([ -~]{{0,{KEY_MAX - 2}}}[!-~])?$",
    },
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


# path parameters that name one of our IDs (`L-EDPQ-YVV2`, any case): another is a 422
ID_PARAMETERS = {"license_id", "receipt_number", "lease_id"}
ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CSRF_TOKEN = {
    "in": "header",
    "name": CSRF_HEADER,
    "required": False,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "description": f"Only with the portal's cookie session (`{SESSION_COOKIE}`, "
    f"`__Host-{SESSION_COOKIE}` over HTTPS): the value of its CSRF cookie; missing or wrong "
    "is 403 `csrf_failed`. Not needed with `Authorization: Bearer`.",
}


def _schema_name(schema: type[Schema] | Schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__


def _refuses_nul(field: fields.Field) -> bool:
    """Whether one of the field's own rules refuses a NUL character (`common.schemas.Text`
    and the identifier fields do; a pattern or a list of choices says it in other words)."""
    for rule in field.validators:
        if isinstance(rule, (validate.Regexp, validate.Length, validate.OneOf)):
            continue
        try:
            rule("a\x00")
        except ValidationError:
            return True
    return False


def string_rules(converter: Any, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
    """What a string field's validators refuse, in JSON Schema's words (an apispec
    attribute function). JSON Schema's patterns are ECMA 262 regular expressions: our
    patterns end with `\\Z` (in Python a `$` also matches before a final newline), ECMA's
    `$` ends the text. A field that refuses NUL says so in its pattern (`^[^\\x00\\r\\n]*$`);
    an email field gets a pattern, since marshmallow's check is stricter than
    `format: email`."""
    if not isinstance(field, fields.String):
        return {}
    rules: dict[str, Any] = {}
    patterns = [
        rule.regex.pattern for rule in field.validators if isinstance(rule, validate.Regexp)
    ]
    if any(isinstance(rule, validate.Email) for rule in field.validators):
        rules["pattern"] = EMAIL_PATTERN
    elif patterns:
        pattern = patterns[0]
        if pattern in (CODE_PATTERN.pattern, ID_PATTERN_OF_IDS.pattern):
            pattern = ID_PATTERN  # checked once canonical: sent in any case
        elif _refuses_nul(field):  # our patterns take characters with [^…] or [\\s\\S] only
            pattern = re.sub(r"\[\^(?!\\x00)", r"[^\\x00", pattern).replace("[\\s\\S]", "[^\\x00]")
        rules["pattern"] = pattern.removesuffix("\\Z").removesuffix("$") + "$"
    elif _refuses_nul(field):
        rules["pattern"] = "^[^\\x00]*$"
    return rules


def _whole_body_rules(document: dict[str, Any]) -> None:
    """Rules of a body schema on its fields together, which apispec does not render:
    `exactly_one_of` (one of those fields, not both) and `at_least_one_of`."""
    for name, component in document.get("components", {}).get("schemas", {}).items():
        cls = getattr(schemas, name, None)
        one = getattr(cls, "exactly_one_of", None)
        if one:
            component["oneOf"] = [{"required": [field]} for field in one]
        if getattr(cls, "at_least_one_of", None):
            component["minProperties"] = 1  # a strict body has no other fields


@lru_cache(maxsize=1)
def build() -> dict[str, Any]:
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(
        title="License Portal API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[plugin],
        info={
            "description": "Customer portal and product activation API. Errors are always "
            '`{"error": {"code", "message", "details", "request_id"}}`; every answer carries '
            "`X-Request-ID` (the client's, if it sent a safe one)."
        },
    )
    plugin.converter.add_attribute_function(string_rules)
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
    spec.components.security_scheme(
        "portal_cookie",
        {
            "type": "apiKey",
            "in": "cookie",
            "name": SESSION_COOKIE,
            "description": "the portal's browser session (`POST /web/session` sets it; "
            f"`__Host-{SESSION_COOKIE}` over HTTPS); a state change also sends `{CSRF_HEADER}`",
        },
    )
    paths: dict[str, dict[str, Any]] = {}
    for entry in ROUTES:
        path = _PARAM.sub(r"{\1}", entry.path)
        names = _PARAM.findall(entry.path)
        parameters = [
            {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
            for name in names
        ]
        for parameter in parameters:
            if parameter["name"] in ID_PARAMETERS:
                parameter["schema"]["pattern"] = ID_PATTERN
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
        if names:
            # a parameter holding a slash (`%2F`) makes a path no route takes
            error_codes.append("not_found")
        if ID_PARAMETERS.intersection(names):
            error_codes.append("validation_error")
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
            if changes_state(entry.method):
                parameters.append(copy.deepcopy(CSRF_TOKEN))
                error_codes.append("csrf_failed")
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
            operation["security"] = [{"session": []}, {"portal_cookie": []}]
            operation["x-roles"] = list(entry.roles)
        elif entry.auth == "lease":
            operation["security"] = [{"lease": []}]
        paths.setdefault(path, {})[entry.method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    _whole_body_rules(document)
    return document
