"""Schemathesis against the running suite: the OpenAPI document is exactly what the server does.

Every operation of the served document is called with bodies, query parameters and headers
generated from it (positive data: what the document allows), as a company of its own that
owns a license, so nothing another test made is touched. A call fails on a 5xx, an answer
or a status or a content type the document does not declare, and a refusal of a request
the document allows for a reason it could have said (`validation_error`,
`invalid_json`, ...): then the document or the server is wrong, and is fixed.

Refusals that no schema can foresee (a wrong password, a token nobody issued, a declined
card, a date already past) are the server's to make: they are listed in BEYOND_THE_SCHEMA
and FIELDS_BEYOND_THE_SCHEMA, each with its reason. Deterministic (Hypothesis derandomized:
the same cases every run) and bounded (MAX_EXAMPLES per operation; about a minute here).
"""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.specs.openapi import checks

from gateway import openapi, service  # noqa: F401 (importing the service declares its routes)
from tests.support.suite import client_at

pytestmark = pytest.mark.e2e

PASSWORD = "Fuzzing-Orchard-42"
MAX_EXAMPLES = 10

# effects that would end the run itself
EXCLUDED = {
    # logs the fuzzer's own session out: every later call would be 401
    ("DELETE", "/api/v1/sessions/current"),
}

# error codes that refuse a request the document allows, for a reason only the server's
# state can give: the document declares them (status_code_conformance holds it to that)
BEYOND_THE_SCHEMA = {
    "invalid_token": "a reset or invitation token nobody issued (or used, or expired)",
    "weak_password": "a common password, one with the login in it or fewer than four "
    "different characters: the document says the lengths and spaces, not the list",
    "card_declined": "the sandbox declines test card numbers it does not know",
    "insufficient_funds": "the sandbox's card for insufficient funds",
    "authentication_failed": "a purchase the bank did not confirm",
    "invalid_signature": "a Stripe webhook not signed with the secret",
    "lease_expired": "a lease that lapsed, was revoked or checked in",
    "borrow_not_allowed": "a borrowing beyond the license's own max_borrow_days",
    "invalid_request": "an offline activation request file that is not one (its text is "
    "any string to the document)",
    "invalid_proof": "a deactivation proof file that is not one, or forged",
    "idempotency_key_reused": "the same key with another body, as the fuzzer sends it",
}


# fields whose refusal only the server's state or clock can give, with why
FIELDS_BEYOND_THE_SCHEMA = {
    # a page's cursor is opaque (a receipt number, an encoded position): one the server
    # never answered as `next_before` names no page
    "before": "a made-up cursor",
    # the document does not know today's date
    "card.exp_year": "a card that expired before this month",
    "borrow_until": "a borrowing that ends in the past",
    # billing sells the plans staff put on sale (422 naming `plan` for another code)
    "plan": "a plan code nobody sells",
}


@schemathesis.check
def refusals_the_schema_could_have_said(
    ctx: CheckContext, response: Response, case: Case
) -> bool | None:
    """positive_data_acceptance, but a refusal listed in BEYOND_THE_SCHEMA, or a
    validation_error naming only FIELDS_BEYOND_THE_SCHEMA, passes."""
    error = _error(response)
    if 400 <= response.status_code < 500 and error.get("code") in BEYOND_THE_SCHEMA:
        return None
    named = set(_names(error.get("details", {}).get("fields", {})))
    beyond = named and named <= set(FIELDS_BEYOND_THE_SCHEMA)
    if error.get("code") == "validation_error" and beyond:
        return None
    return checks.positive_data_acceptance(ctx, response, case)


def _names(messages: dict, prefix: str = "") -> list[str]:
    """The fields a validation error names, nested ones dotted: `card.exp_year`."""
    names = []
    for name, value in messages.items():
        if isinstance(value, dict):
            names += _names(value, f"{prefix}{name}.")
        else:
            names.append(f"{prefix}{name}")
    return names


def _error(response: Response) -> dict:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return {}
    return error if isinstance(error, dict) else {}


@pytest.fixture(scope="module")
def fuzz_company(suite) -> dict:
    email = f"fuzz.{uuid.uuid4().hex[:10]}@example.test"
    company = suite.portalctl(
        "company", "create", "--name", "Fuzz Engineering", "--contact-name", "Ada",
        "--email", email, "--password", PASSWORD,
    )  # fmt: skip
    product = f"fuzz{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", product, "--name", "Fuzz CAD")
    issued = suite.portalctl(
        "license", "issue", "--customer", company["customer_id"], "--product", product,
        "--seats", "3",
    )  # fmt: skip
    api = client_at(suite.url)  # a loopback address of its own: throttles see only the fuzzer
    return {**company, "license_id": issued["license_id"], "api": api,
            "token": api.login(company["customer_id"], PASSWORD)}  # fmt: skip


def _document() -> schemathesis.BaseSchema:
    """The document the gateway serves (a test below holds the two equal), built here so
    that pytest collects one test per operation before the suite runs."""
    loaded = schemathesis.openapi.from_dict(openapi.build())
    loaded.config.generation.update(
        modes=["positive"], max_examples=MAX_EXAMPLES, deterministic=True
    )
    for method, path in EXCLUDED:
        loaded = loaded.exclude(method=method, path=path)
    return loaded


schema = _document()


def test_the_served_document_is_the_one_fuzzed(api) -> None:
    assert api.get("/api/v1/openapi.json").json() == openapi.build()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_server_does_what_its_document_says(case, suite, fuzz_company) -> None:
    if "license_id" in (case.path_parameters or {}):
        case.path_parameters["license_id"] = fuzz_company["license_id"]
    case.call_and_validate(
        base_url=suite.url,
        session=fuzz_company["api"].http,
        headers={"Authorization": f"Bearer {fuzz_company['token']}"},
        checks=[
            not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
            refusals_the_schema_could_have_said,
        ],
    )
