"""The OpenAPI document says what the gateway refuses: its patterns (in JSON Schema's regex
dialect), the rules a body's fields keep together, the headers every route reads, the
statuses a path parameter can cause. What the document allows, the server takes: each
rule here is held against the real schema that loads the request, with probe values.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from marshmallow import Schema, ValidationError

from gateway import openapi, request_keys, schemas, service  # noqa: F401 (declares the routes)
from gateway.http import ROUTES
from services.licensing import domain as licensing_domain
from services.licensing.schemas import LabelLicense

PROBES = [
    "a", "A", "Ada Lovelace", "ada@acme.test", "L-7KQX-M2PD", "cadpro-yearly", "pm_1Q2w3E4r",
    "0", "é", "日本", "🦄", " a ", " ", "\t", "a\n", "\n", "a\r\nb", "a\x00", "\x00", "\x1c",
    "\x85", "\xa0", "\u2028", "a" * 65, "x" * 201, "DE123456789", "owner", "viewer",
    "2026-12-09", "2026-12-09T18:00:00+00:00", "2026-12-09T18:00:00.5Z", "2026-13-45",
]  # fmt: skip
DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})\Z")


def document() -> dict[str, Any]:
    return openapi.build()


def component(name: str) -> dict[str, Any]:
    return document()["components"]["schemas"][name]


def admits(prop: dict[str, Any], value: str) -> bool:
    """Whether a JSON Schema string property admits `value` (ECMA's `$` ends the text, as
    Python's `\\Z` does; its patterns are searched, not matched)."""
    if "enum" in prop:
        return value in prop["enum"]
    if "anyOf" in prop and not any(admits(either, value) for either in prop["anyOf"]):
        return False
    if prop.get("format") in ("date", "date-time"):
        shape = DATE if prop["format"] == "date" else DATE_TIME
        if not shape.match(value) or not valid_date(value[:10]):
            return False
    pattern = prop.get("pattern")
    if pattern is not None and not re.search(re.sub(r"\$$", r"\\Z", pattern), value):
        return False
    return prop.get("minLength", 0) <= len(value) <= prop.get("maxLength", len(value))


def valid_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def request_schemas() -> list[type[Schema]]:
    found = {entry.body for entry in ROUTES if entry.body is not None}
    return sorted(found | set(openapi.QUERIES.values()), key=lambda cls: cls.__name__)


def string_properties(cls: type[Schema]) -> list[tuple[str, dict[str, Any]]]:
    """A body's string properties, or a query's string parameters (apispec: one a field)."""
    properties = document()["components"]["schemas"].get(cls.__name__, {}).get("properties", {})
    for (method, path), query in openapi.QUERIES.items():
        if query is cls:
            operation = document()["paths"][openapi._PARAM.sub(r"{\1}", path)][method.lower()]
            properties = {
                p["name"]: p["schema"] for p in operation["parameters"] if p["in"] == "query"
            }
    return [(name, prop) for name, prop in properties.items() if prop.get("type") == "string"]


def test_no_pattern_is_in_pythons_dialect_alone() -> None:
    text = str(document())
    assert r"\\Z" not in text  # ECMA 262 has no \Z: `$` ends the text there
    for entry in ROUTES:
        for parameter in document()["paths"][openapi._PARAM.sub(r"{\1}", entry.path)][
            entry.method.lower()
        ].get("parameters", []):
            if "pattern" in parameter.get("schema", {}):
                re.compile(parameter["schema"]["pattern"])


@pytest.mark.parametrize("cls", request_schemas(), ids=lambda cls: cls.__name__)
def test_a_string_the_document_admits_is_one_the_field_takes(cls: type[Schema]) -> None:
    fields = cls().fields
    for name, prop in string_properties(cls):
        field = fields[name]
        for value in PROBES:
            if admits(prop, value):
                try:
                    field.deserialize(value)
                except ValidationError as exc:
                    pytest.fail(f"{cls.__name__}.{name} refuses {value!r}: {exc.messages}")


@pytest.mark.parametrize("cls", request_schemas(), ids=lambda cls: cls.__name__)
def test_a_field_that_refuses_nul_says_so(cls: type[Schema]) -> None:
    fields = cls().fields
    for name, prop in string_properties(cls):
        try:
            fields[name].deserialize("a\x00")
        except ValidationError:
            assert not admits(prop, "a\x00"), f"{cls.__name__}.{name}"


def test_codes_and_ids_are_documented_in_any_case() -> None:
    purchase = component("PurchaseBody")["properties"]
    assert admits(purchase["plan"], "CADPRO-Yearly") and admits(purchase["license_id"], "l-7kqx")
    assert not admits(purchase["plan"], "-cadpro")


def test_names_and_addresses_are_never_blank() -> None:
    details = component("BillingDetailsBody")["properties"]
    for name in ("company_name", "address"):
        assert not admits(details[name], " \t\x1c\x85 ")
        with pytest.raises(ValidationError) as refused:
            schemas.BillingDetailsBody().load(
                {"company_name": "Acme", "address": "\x85", name: " "}
            )
        assert name in refused.value.messages
    assert admits(details["address"], "Hauptstraße 1\n10115 Berlin")
    assert not admits(details["company_name"], "Acme\nGmbH")
    assert admits(details["vat_id"], "")
    for body in ("InviteBody", "UpdateUserBody"):
        assert not admits(component(body)["properties"]["name"], "  ")


def test_an_email_the_document_admits_is_one_marshmallow_takes() -> None:
    email = component("InviteBody")["properties"]["email"]
    assert admits(email, "grace.hopper+cad@eng.acme-corp.test")
    assert not admits(email, "0" * 70) and not admits(email, "a@b")


def test_one_means_of_payment_and_at_least_one_change() -> None:
    for name in ("PurchaseBody", "CardChangeBody"):
        assert component(name)["oneOf"] == [
            {"required": ["card"]},
            {"required": ["payment_method"]},
        ]
    for name, cls in (("LicenseLabelBody", schemas.LicenseLabelBody),
                      ("UpdateUserBody", schemas.UpdateUserBody)):  # fmt: skip
        assert component(name)["minProperties"] == 1
        with pytest.raises(ValidationError):
            cls().load({})


def test_the_labels_are_documented_as_licensing_checks_them() -> None:
    label = component("LicenseLabelBody")["properties"]
    assert label["nickname"]["maxLength"] == licensing_domain.NICKNAME_MAX
    assert label["note"]["maxLength"] == licensing_domain.NOTE_MAX
    checked = LabelLicense()
    for name in ("nickname", "note"):
        for value in PROBES:
            if admits(label[name], value):
                checked.load({name: value})


def test_a_day_or_a_date_time_is_documented_as_either() -> None:
    either = [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]
    assert component("LeaseBody")["properties"]["borrow_until"]["anyOf"] == either
    query = document()["paths"]["/api/v1/audit-events"]["get"]["parameters"]
    for parameter in query:
        if parameter["name"] in ("since", "until"):
            assert parameter["schema"]["anyOf"] == either


def test_an_actor_without_a_user_has_null_user_fields() -> None:
    actor = component("ActorOut")["properties"]
    assert actor["user_id"]["nullable"] and actor["email"]["nullable"]


@pytest.mark.parametrize(
    "key, taken",
    [("k-1", True), ("a b", True), ("x" * 64, True), (" k", False), ("k ", False),
     ("k\xa0", False), ("k\x85", False), ("", False), ("x" * 65, False)],
)  # fmt: skip
def test_the_idempotency_key_pattern_admits_only_keys_the_gateway_takes(key, taken) -> None:
    schema = openapi.IDEMPOTENCY_KEY["schema"]
    assert admits(schema, key) is taken
    if taken:
        assert request_keys.check_key(key) == key


def test_path_parameters_headers_and_the_cookie_session() -> None:
    paths = document()["paths"]
    receipt = paths["/api/v1/payments/{receipt_number}/receipt"]["get"]
    (parameter,) = [p for p in receipt["parameters"] if p["in"] == "path"]
    assert parameter["schema"]["pattern"] == openapi.ID_PATTERN
    assert "`validation_error`" in receipt["responses"]["422"]["description"]
    assert "`not_found`" in paths["/static/{name}"]["get"]["responses"]["404"]["description"]
    for entry in ROUTES:
        operation = paths[openapi._PARAM.sub(r"{\1}", entry.path)][entry.method.lower()]
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        cookie_state_change = entry.auth == "session" and request_keys.changes_state(entry.method)
        assert ("X-CSRF-Token" in headers) is cookie_state_change, entry.path
        if cookie_state_change:
            assert "`csrf_failed`" in operation["responses"]["403"]["description"]
        if entry.auth == "session":
            assert operation["security"] == [{"session": []}, {"portal_cookie": []}]
    scheme = document()["components"]["securitySchemes"]["portal_cookie"]
    assert scheme == {**scheme, "type": "apiKey", "in": "cookie", "name": "portal_session"}
