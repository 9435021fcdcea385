"""Every error code a service or the gateway raises has its HTTP status in `gateway/errors.py`.

The codes are collected, not listed: every `PortalError` subclass declared in
`common/errors.py` and `services/*/exceptions.py`, plus the codes raised ad hoc
(`PortalError(..., code="...")`, `error_response("...", ...)`) anywhere in `services/`,
`common/` and `gateway/`. A new code fails this test until the table has it.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from common.errors import PortalError
from gateway.errors import STATUS_BY_CODE

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ("services", "common", "gateway")
AD_HOC = re.compile(r"""(?:\bcode=|\berror_response\(\s*)["']([a-z][a-z0-9_]*)["']""")


def exception_modules() -> list[str]:
    services = sorted(path.parent.name for path in ROOT.glob("services/*/exceptions.py"))
    return ["common.errors", *(f"services.{name}.exceptions" for name in services)]


def subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= subclasses(sub)
    return found


def declared_codes() -> dict[str, str]:
    """code → where it is declared, for every PortalError subclass of our modules."""
    modules = exception_modules()
    for name in modules:
        importlib.import_module(name)
    return {
        cls.code: f"{cls.__module__}.{cls.__name__}"
        for cls in subclasses(PortalError)
        if cls.__module__ in modules
    }


def ad_hoc_codes() -> dict[str, str]:
    """code → the file raising it, for codes given as a literal instead of a subclass."""
    found = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for code in AD_HOC.findall(path.read_text(encoding="utf-8")):
                found.setdefault(code, str(path.relative_to(ROOT)))
    return found


def all_codes() -> dict[str, str]:
    return {**ad_hoc_codes(), **declared_codes()}


def test_the_collection_finds_what_we_know_is_there() -> None:
    # so that neither half of the collection passes vacuously
    declared = declared_codes()
    assert {"validation_error", "service_unavailable", "product_exists", "plan_exists"} <= set(
        declared
    )
    for module in exception_modules():
        assert module in {where.rsplit(".", 1)[0] for where in declared.values()}, module
    assert {"csrf_failed", "invalid_json", "unsupported_media_type", "not_found"} <= set(
        ad_hoc_codes()
    )


def test_every_code_has_an_http_status() -> None:
    missing = {code: where for code, where in all_codes().items() if code not in STATUS_BY_CODE}
    assert not missing, f"gateway/errors.py STATUS_BY_CODE has no status for {missing}"


def test_codes_of_one_kind_share_a_status() -> None:
    for code, where in all_codes().items():
        if code.endswith("_exists") or code == "email_taken":
            assert STATUS_BY_CODE[code] == 409, (code, where)
        if code.endswith("_not_found"):
            assert STATUS_BY_CODE[code] == 404, (code, where)


def test_the_codes_of_issue_10_have_their_statuses() -> None:
    # what the portal and the clients rely on, whichever service raises them
    expected = {
        "idempotency_key_reused": 422,
        "product_archived": 409,
        "license_suspended": 403,
        "recurring_payment_ended": 409,
        "expires_in_past": 422,
        "extension_shortens": 422,
        "license_is_perpetual": 422,
        "password_already_set": 409,
        "email_taken": 409,
        "company_not_found": 404,
        "product_not_found": 404,
        "card_declined": 402,
    }
    assert {code: STATUS_BY_CODE.get(code) for code in expected} == expected


def test_the_table_names_only_error_statuses() -> None:
    assert all(400 <= status < 600 for status in STATUS_BY_CODE.values())
