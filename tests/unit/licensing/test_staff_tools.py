"""Staff's tools: guardrails with and without `force`, suspension with a reason, and every
entry point reached by any spelling of an ID (fixtures: conftest.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.licensing.schemas import LicenseResumedEvent, LicenseSuspendedEvent
from tests.unit.licensing.support import (
    COMPANY,
    COMPANY_PASSWORD,
    OTHER,
    activate,
    issue,
    raises_code,
)

PAST = "2020-01-01"  # the fixed clock is 2026-11-28


def license_of(customer: str = COMPANY, **extra) -> dict:
    return {"customer_id": customer, "product": "cadpro", "seats": 1, **extra}


# --- issuing ----------------------------------------------------------------------------


def test_an_already_expired_license_is_issued_only_when_forced(service, events) -> None:
    error = raises_code("expires_in_past", service.issue_license, license_of(expires_at=PAST))
    assert error.details == {
        "expires_at": "2020-01-01T23:59:59+00:00",
        "now": "2026-11-28T09:00:00+00:00",
    }
    assert service.list_licenses(COMPANY) == [] and events == []
    forced = service.issue_license(license_of(expires_at=PAST, force=True))
    assert (forced["status"], forced["expires_at"]) == ("expired", "2020-01-01T23:59:59+00:00")
    assert len(events.of("license_issued")) == 1


def test_an_archived_product_is_issued_only_when_forced(service) -> None:
    service.archive_product("cadpro")
    raises_code("product_archived", service.issue_license, license_of())
    forced = service.issue_license(license_of(force=True))
    assert forced["product"] == {"code": "cadpro", "name": "CAD Pro"}


def test_force_never_makes_up_a_company_or_a_product(service) -> None:
    raises_code("company_not_found", service.issue_license, license_of("C9999999", force=True))
    nope = {**license_of(force=True), "product": "nope"}
    raises_code("product_not_found", service.issue_license, nope)


@pytest.mark.parametrize("force", ["yes", 1, None, "true"])
def test_force_is_a_boolean(service, force) -> None:
    error = raises_code("validation_error", service.issue_license, license_of(force=force))
    assert "force" in error.details["fields"]
    error = raises_code("validation_error", service.extend_license, "L-AAAA-AAAA", PAST, force)
    assert "force" in error.details["fields"]


# --- extending ----------------------------------------------------------------------------


def test_an_extension_that_shortens_is_made_only_when_forced(service, events) -> None:
    license_id, _ = issue(service, expires_at="2027-12-31")
    error = raises_code("extension_shortens", service.extend_license, license_id, "2027-06-30")
    assert error.details == {
        "license_id": license_id,
        "expires_at": "2027-12-31T23:59:59+00:00",
        "requested": "2027-06-30T23:59:59+00:00",
    }
    raises_code("extension_shortens", service.extend_license, license_id, PAST)
    assert events.of("license_extended") == []
    shorter = service.extend_license(license_id, "2027-06-30", force=True)
    assert shorter["expires_at"] == "2027-06-30T23:59:59+00:00"
    assert service.extend_license(license_id, "2028-06-30")["status"] == "active"
    assert len(events.of("license_extended")) == 2


def test_a_perpetual_license_gets_an_end_date_only_when_forced(service, events) -> None:
    license_id, _ = issue(service)
    raises_code("license_is_perpetual", service.extend_license, license_id, "2030-01-01")
    assert service.get_license(license_id)["expires_at"] is None
    ended = service.extend_license(license_id, "2030-01-01", True)
    assert ended["expires_at"] == "2030-01-01T23:59:59+00:00"
    [event] = events.of("license_extended")
    assert event["previous_expires_at"] is None


def test_an_extension_into_the_past_is_made_only_when_forced(service, clock) -> None:
    license_id, _ = issue(service, expires_at="2026-12-01")
    clock.advance(days=400)  # expired a year ago
    raises_code("expires_in_past", service.extend_license, license_id, "2027-06-30")
    assert service.extend_license(license_id, "2027-06-30", force=True)["status"] == "expired"
    later = (clock.now() + timedelta(days=30)).date().isoformat()
    assert service.extend_license(license_id, later)["status"] == "active"


# --- suspending -------------------------------------------------------------------------


def test_a_suspension_has_a_reason_that_every_view_shows(service, events) -> None:
    license_id, password = issue(service)
    suspended = service.suspend_license(license_id, "  Chargeback on R-2026-000123. \n")
    assert (suspended["status"], suspended["suspension_reason"]) == (
        "suspended",
        "Chargeback on R-2026-000123.",
    )
    assert service.get_license(license_id, COMPANY)["suspension_reason"] == (
        "Chargeback on R-2026-000123."
    )
    [listed] = service.list_licenses(COMPANY)
    assert listed["suspension_reason"] == "Chargeback on R-2026-000123."
    raises_code("license_suspended", activate, service, license_id, password)
    [event] = events.of("license_suspended")
    LicenseSuspendedEvent().load(event)
    assert {key: event[key] for key in ("license_id", "customer_id", "product", "reason")} == {
        "license_id": license_id,
        "customer_id": COMPANY,
        "product": {"code": "cadpro", "name": "CAD Pro"},
        "reason": "Chargeback on R-2026-000123.",
    }
    again = service.suspend_license(license_id, "Chargeback confirmed.")
    assert again["suspension_reason"] == "Chargeback confirmed."
    assert service.suspend_license(license_id)["suspension_reason"] == "Chargeback confirmed."
    assert len(events.of("license_suspended")) == 1  # the customer was told once

    resumed = service.resume_license(license_id)
    assert (resumed["status"], resumed["suspension_reason"]) == ("active", None)
    [event] = events.of("license_resumed")
    LicenseResumedEvent().load(event)
    assert (event["license_id"], event["customer_id"]) == (license_id, COMPANY)
    assert event["product"] == {"code": "cadpro", "name": "CAD Pro"}
    service.resume_license(license_id)  # not suspended: nothing to say
    assert len(events.of("license_resumed")) == 1
    activate(service, license_id, password)


def test_a_suspension_without_a_reason(service, events) -> None:
    license_id, _ = issue(service)
    assert service.suspend_license(license_id, "   ")["suspension_reason"] is None
    assert events.of("license_suspended")[0]["reason"] is None
    assert service.get_license(license_id)["suspension_reason"] is None


@pytest.mark.parametrize("reason", ["r" * 501, "a\x00b", 42, ["why"]])
def test_a_bad_reason_names_the_field(service, reason) -> None:
    license_id, _ = issue(service)
    error = raises_code("validation_error", service.suspend_license, license_id, reason)
    assert "reason" in error.details["fields"]
    assert service.suspend_license(license_id, "r" * 500)["suspension_reason"] == "r" * 500


# --- one canonical form for every identifier --------------------------------------------

VARIANTS = [
    lambda value: value,
    lambda value: value.lower(),
    lambda value: f"  {value.lower()} ",
    lambda value: f"\t{value}\n",
]
VARIANT_IDS = ["canonical", "lower", "lower+spaces", "tab+newline"]


@pytest.mark.parametrize("spell", VARIANTS, ids=VARIANT_IDS)
def test_every_entry_point_finds_the_same_license(service, events, spell) -> None:
    issued = service.issue_license(
        {"customer_id": spell(COMPANY), "product": spell("CADPRO"), "seats": 2}
    )
    license_id = issued["license_id"]
    assert issued["customer_id"] == COMPANY and issued["product"]["code"] == "cadpro"
    assert events.of("license_issued")[0]["customer_id"] == COMPANY
    lid, cid = spell(license_id), spell(COMPANY)
    assert [item["license_id"] for item in service.list_licenses(cid)] == [license_id]
    assert service.get_license(lid, cid)["license_id"] == license_id
    password = service.rotate_activation_password(lid, cid)["activation_password"]
    activate(service, lid, password, "inst-1")
    activate(service, lid, COMPANY_PASSWORD, "inst-2")
    assert {i["installation_id"] for i in service.list_installations(lid, cid)} == {
        "inst-1",
        "inst-2",
    }
    assert len(service.history(lid, cid)["events"]) == 2
    assert service.deactivate_installation(cid, lid, "inst-2")["status"] == "deactivated"
    assert service.suspend_license(lid, "why")["license_id"] == license_id
    assert service.resume_license(lid)["status"] == "active"
    assert service.extend_license(lid, "2030-01-01", force=True)["license_id"] == license_id
    assert service.get_product(spell("CADPRO"))["code"] == "cadpro"
    assert service.archive_product(spell("CADPRO"))["active"] is False
    assert service.unarchive_product(spell("CADPRO"))["active"] is True
    # another company, however spelled, still finds nothing
    raises_code("license_not_found", service.get_license, lid, spell(OTHER))
    assert len(service.list_licenses(COMPANY)) == 1


@pytest.mark.parametrize("blank", ["", "   ", None, 42])
def test_a_blank_or_missing_id_names_the_argument(service, blank) -> None:
    license_id, _ = issue(service)
    cases = [
        ("license_id", service.get_license, (blank, COMPANY)),
        ("license_id", service.suspend_license, (blank,)),
        ("license_id", service.extend_license, (blank, "2030-01-01")),
        ("license_id", service.rotate_activation_password, (blank, COMPANY)),
        ("customer_id", service.list_licenses, (blank,)),
        ("code", service.archive_product, (blank,)),
    ]
    if blank is not None:  # None is the staff path here
        cases.append(("customer_id", service.get_license, (license_id, blank)))
    for field, call, args in cases:
        error = raises_code("validation_error", call, *args)
        assert field in error.details["fields"], (call, error.details)
