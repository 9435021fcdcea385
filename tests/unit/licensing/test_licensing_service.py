"""LicensingService entrypoints over a real (SQLite) database (fixtures: conftest.py)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from common.errors import PortalError
from services.licensing import domain
from services.licensing.crypto import VALIDATION_TYP, b64url_decode
from tests.unit.licensing.support import (
    COMPANY,
    COMPANY_PASSWORD,
    OTHER,
    activate,
    issue,
    raises_code,
)


def test_issue_license_publishes_and_hides_the_password_at_rest(service, events, db) -> None:
    license = service.issue_license(
        {"customer_id": COMPANY, "product": "cadpro", "seats": 3, "expires_at": "2027-12-31"}
    )
    assert license["expires_at"] == "2027-12-31T23:59:59+00:00"
    assert license["status"] == "active" and license["seats_in_use"] == 0
    [event] = events.of("license_issued")
    assert event["customer_id"] == COMPANY
    assert event["license"]["product"] == {"code": "cadpro", "name": "CAD Pro"}
    password = service.get_license(license["license_id"])["activation_password"]
    with db.transaction() as session:
        stored = session.execute(text("SELECT activation_password FROM licenses")).scalar()
    assert password not in stored


def test_issue_license_checks_product_and_company(service) -> None:
    raises_code(
        "product_not_found",
        service.issue_license,
        {"customer_id": COMPANY, "product": "nope", "seats": 1},
    )
    raises_code(
        "company_not_found",
        service.issue_license,
        {"customer_id": "C9999999", "product": "cadpro", "seats": 1},
    )
    raises_code(
        "validation_error",
        service.issue_license,
        {"customer_id": COMPANY, "product": "cadpro", "seats": 0},
    )
    raises_code("product_exists", service.create_product, {"code": "cadpro", "name": "again"})


def test_activation_with_the_license_password_then_again(service, events, auth) -> None:
    license_id, password = issue(service)
    first = activate(service, license_id, password.lower())
    assert first["created"] is True
    assert first["activation"]["machine_name"] == "PC-1"
    assert service.keys.keyring.verify(first["certificate"])["installation_id"] == "inst-1"
    again = activate(service, license_id, password)
    assert again["created"] is False
    assert service.get_license(license_id)["seats_in_use"] == 1
    assert len(events.of("installation_activated")) == 1
    assert auth.checks == []  # no argon2 round trip on the license password path
    types = [e["type"] for e in service.history(license_id)["events"]]
    assert types == ["reactivated", "activated"]


def test_company_password_activates_any_license_of_the_company(service, auth) -> None:
    license_id, _ = issue(service)
    assert activate(service, license_id, COMPANY_PASSWORD)["created"]
    other_id, _ = issue(service, customer=OTHER)
    raises_code("invalid_credentials", activate, service, other_id, COMPANY_PASSWORD)


def test_a_license_password_activates_only_its_license(service) -> None:
    first_id, first_password = issue(service)
    second_id, _ = issue(service)
    raises_code("invalid_credentials", activate, service, second_id, first_password)
    activate(service, first_id, first_password)


def test_unknown_license_and_wrong_password_look_the_same(service, auth) -> None:
    license_id, _ = issue(service)
    wrong = raises_code("invalid_credentials", activate, service, license_id, "nope")
    unknown = raises_code("invalid_credentials", activate, service, "L-NOPE-NOPE", "nope")
    assert wrong.to_dict() == unknown.to_dict()
    assert auth.checks == [COMPANY, ""]  # both cost auth one password check


ATTACKER, CUSTOMER = "203.0.113.66", "198.51.100.7"


def test_failures_slow_down_one_address_on_one_license(service, clock) -> None:
    license_id, password = issue(service)
    other_id, other_password = issue(service)
    for _ in range(domain.FREE_FAILURES_PER_LICENSE):
        raises_code("invalid_credentials", activate, service, license_id, "guess", address=ATTACKER)
    error = raises_code(
        "too_many_attempts", activate, service, license_id, password, address=ATTACKER
    )
    assert error.details["retry_after"] == domain.FAILURE_DELAY.seconds
    activate(service, other_id, other_password, address=ATTACKER)  # another license: free
    clock.advance(domain.FAILURE_DELAY)
    raises_code("invalid_credentials", activate, service, license_id, "guess", address=ATTACKER)
    error = raises_code(
        "too_many_attempts", activate, service, license_id, password, address=ATTACKER
    )
    assert error.details["retry_after"] == 2 * domain.FAILURE_DELAY.seconds  # it doubles
    clock.advance(domain.FAILURE_WINDOW, seconds=1)
    activate(service, license_id, password, address=ATTACKER)


def test_guesses_from_one_address_never_lock_out_another(service, auth) -> None:
    license_id, password = issue(service)
    for _ in range(domain.FREE_FAILURES_PER_LICENSE + 5):
        try:
            activate(service, license_id, "guess", address=ATTACKER)
        except PortalError as error:
            assert error.code in {"invalid_credentials", "too_many_attempts"}
    raises_code("too_many_attempts", activate, service, license_id, password, address=ATTACKER)
    assert activate(service, license_id, password, address=CUSTOMER)["created"]
    assert activate(service, license_id, COMPANY_PASSWORD, "inst-2", address=CUSTOMER)["created"]
    assert auth.addresses[-1] == CUSTOMER  # auth counts the company password per address


def test_an_address_guessing_across_licenses_is_slowed_down(service) -> None:
    license_ids = [f"L-{n:04d}-NOPE" for n in range(domain.FREE_FAILURES_PER_ADDRESS)]
    for license_id in license_ids:
        raises_code("invalid_credentials", activate, service, license_id, "guess", address=ATTACKER)
    license_id, password = issue(service)
    raises_code("too_many_attempts", activate, service, license_id, password, address=ATTACKER)
    activate(service, license_id, password, address=CUSTOMER)


def test_the_company_password_goes_to_auth_with_the_client_address(service, auth) -> None:
    license_id, _ = issue(service)
    activate(service, license_id, COMPANY_PASSWORD, address="2001:db8::7")
    deactivate = {"license_id": license_id, "password": COMPANY_PASSWORD}
    service.deactivate({**deactivate, "installation_id": "inst-1", "client_address": CUSTOMER})
    raises_code("invalid_credentials", activate, service, license_id, "guess")
    assert auth.addresses == ["2001:db8::7", CUSTOMER, None]


def test_auths_refusal_is_raised_and_the_failure_still_counts(service, auth, db) -> None:
    license_id, _ = issue(service)

    def throttled(customer_id: str, password: str, client_address: str | None = None) -> bool:
        raise PortalError(code="too_many_attempts", details={"retry_after": 60})

    auth.verify_company_password = throttled
    error = raises_code("too_many_attempts", activate, service, license_id, "guess")
    assert error.details == {"retry_after": 60}
    with db.transaction() as session:
        counted = session.execute(text("SELECT count(*) FROM activation_failures")).scalar()
    assert counted == 1  # the activation password was judged wrong all the same


@pytest.mark.parametrize("address", ["", "localhost", "1.2.3.4.5", "::1" + " " * 50])
def test_a_bad_client_address_names_the_field(service, address: str) -> None:
    license_id, password = issue(service)
    error = raises_code(
        "validation_error", activate, service, license_id, password, address=address
    )
    assert "client_address" in error.details["fields"]


def test_expired_and_suspended_licenses_refuse_and_history_says_so(service, clock) -> None:
    license_id, password = issue(service, expires_at="2026-12-01")
    clock.advance(days=4)
    raises_code("license_expired", activate, service, license_id, password)
    service.extend_license(license_id, "2027-12-31")
    service.suspend_license(license_id)
    raises_code("license_suspended", activate, service, license_id, password)
    assert service.resume_license(license_id)["status"] == "active"
    activate(service, license_id, password)
    events = service.history(license_id)["events"]
    assert [(e["type"], e["reason"]) for e in events] == [
        ("activated", None),
        ("activation_refused", "license_suspended"),
        ("activation_refused", "license_expired"),
    ]


def test_another_products_kit_is_refused_before_a_seat_is_taken(service, events, clock) -> None:
    license_id, password = issue(service, seats=1)
    payload = {"license_id": license_id, "password": password, "installation_id": "inst-1"}
    payload["machine_name"] = "PC-1"
    refused = raises_code("wrong_product", service.activate, {**payload, "product": "femsolver"})
    assert refused.message == f"License {license_id} is for CAD Pro (cadpro), not femsolver."
    assert refused.details == {
        "license_id": license_id,
        "product": "cadpro",
        "requested": "femsolver",
    }
    assert service.get_license(license_id)["seats_in_use"] == 0
    assert events.of("installation_activated") == []
    [event] = service.history(license_id)["events"]
    assert (event["type"], event["reason"], event["machine_name"]) == (
        "activation_refused",
        "wrong_product",
        "PC-1",
    )
    # the product's own code, in any case, activates; none at all (an older kit) too
    assert service.activate({**payload, "product": "CADPro"})["created"] is True
    assert service.activate({**payload, "product": None})["created"] is False


def test_a_wrong_password_never_learns_the_product(service) -> None:
    license_id, _ = issue(service)
    payload = {"license_id": license_id, "password": "guess", "installation_id": "inst-1"}
    payload.update(machine_name="PC-1", product="femsolver")
    raises_code("invalid_credentials", service.activate, payload)
    assert service.history(license_id)["events"] == []


def test_the_company_password_is_refused_another_product_too(service, auth) -> None:
    license_id, _ = issue(service)
    payload = {"license_id": license_id, "password": COMPANY_PASSWORD, "installation_id": "i"}
    payload.update(machine_name="PC-1", product="femsolver")
    raises_code("wrong_product", service.activate, payload)
    assert service.get_license(license_id)["seats_in_use"] == 0
    assert [e["reason"] for e in service.history(license_id)["events"]] == ["wrong_product"]


def test_refusals_for_another_product_are_not_failed_attempts(service) -> None:
    license_id, password = issue(service)
    payload = {"license_id": license_id, "password": password, "installation_id": "inst-1"}
    payload.update(machine_name="PC-1", client_address=ATTACKER)
    for _ in range(domain.FREE_FAILURES_PER_LICENSE + 2):
        raises_code("wrong_product", service.activate, {**payload, "product": "femsolver"})
    assert service.activate({**payload, "product": "cadpro"})["created"] is True


@pytest.mark.parametrize("product", ["", "x" * 65, 7])
def test_a_malformed_product_names_the_field(service, product) -> None:
    license_id, password = issue(service)
    payload = {"license_id": license_id, "password": password, "installation_id": "inst-1"}
    payload.update(machine_name="PC-1", product=product)
    error = raises_code("validation_error", service.activate, payload)
    assert "product" in error.details["fields"]


def test_no_seats_names_the_machines_and_deactivation_frees_a_seat(service, events) -> None:
    license_id, password = issue(service, seats=2)
    activate(service, license_id, password, "a", "Alpha")
    activate(service, license_id, password, "b", "Beta")
    error = raises_code("no_seats_available", activate, service, license_id, password, "c", "C")
    assert error.details["machines"] == ["Alpha", "Beta"]
    gone = service.deactivate_installation(COMPANY, license_id, "a", "portal")
    assert gone["deactivated_by"] == "portal" and gone["status"] == "deactivated"
    assert events.of("installation_deactivated")[0]["installation"]["installation_id"] == "a"
    activate(service, license_id, password, "c", "Gamma")
    raises_code("license_not_found", service.deactivate_installation, OTHER, license_id, "b")
    raises_code("installation_not_found", service.deactivate_installation, COMPANY, license_id, "z")


def test_product_deactivation(service) -> None:
    license_id, password = issue(service, seats=1)
    activate(service, license_id, password)
    payload = {"license_id": license_id, "password": password, "installation_id": "inst-1"}
    assert service.deactivate(payload)["deactivated_by"] == "product"
    assert service.deactivate(payload)["status"] == "deactivated"  # again: the same
    raises_code("invalid_credentials", service.deactivate, {**payload, "password": "x"})
    activate(service, license_id, password, "inst-2")


def test_rotation_kills_the_old_password(service) -> None:
    license_id, password = issue(service)
    new = service.rotate_activation_password(license_id, COMPANY)["activation_password"]
    assert new != password
    raises_code("invalid_credentials", activate, service, license_id, password)
    activate(service, license_id, new)
    raises_code("license_not_found", service.rotate_activation_password, license_id, OTHER)


def test_another_companys_license_is_not_found(service) -> None:
    license_id, _ = issue(service)
    for call in (service.get_license, service.list_installations, service.history):
        raises_code("license_not_found", call, license_id, OTHER)
    assert service.list_licenses(OTHER) == []
    assert [item["license_id"] for item in service.list_licenses(COMPANY)] == [license_id]


def test_history_pages_newest_first(service) -> None:
    license_id, password = issue(service, seats=10)
    for index in range(7):
        activate(service, license_id, password, f"i{index}", f"M{index}")
    first = service.history(license_id, COMPANY, limit=3)
    assert [e["installation_id"] for e in first["events"]] == ["i6", "i5", "i4"]
    second = service.history(license_id, COMPANY, limit=3, before=first["next_before"])
    assert [e["installation_id"] for e in second["events"]] == ["i3", "i2", "i1"]
    last = service.history(license_id, COMPANY, limit=3, before=second["next_before"])
    assert [e["installation_id"] for e in last["events"]] == ["i0"]
    assert last["next_before"] is None
    raises_code("validation_error", service.history, license_id, COMPANY, limit=0)


def test_validation_codes(service, clock) -> None:
    license_id, password = issue(service, seats=1, expires_at="2026-12-10")
    certificate = activate(service, license_id, password)["certificate"]
    assert service.validate(certificate)["code"] == "VALID"
    assert service.validate(certificate)["valid"] is True
    assert service.validate(certificate)["deactivated_at"] is None
    service.suspend_license(license_id, "Payment overdue.")
    suspended = service.validate(certificate)
    assert suspended["code"] == "SUSPENDED"
    # since when and why, for the product to say so (the customer's words)
    assert (suspended["suspended_at"], suspended["suspension_reason"]) == (
        clock.now().isoformat(),
        "Payment overdue.",
    )
    assert suspended["deactivated_at"] is None
    service.resume_license(license_id)
    clock.advance(days=30)
    expired = service.validate(certificate)
    assert expired["code"] == "EXPIRED"
    assert (expired["suspended_at"], expired["suspension_reason"]) == (None, None)
    service.deactivate_installation(None, license_id, "inst-1", "staff")
    deactivated = service.validate(certificate)
    assert deactivated["code"] == "DEACTIVATED"
    assert (deactivated["deactivated_at"], deactivated["deactivated_by"]) == (
        clock.now().isoformat(),
        "staff",
    )
    assert service.validate(certificate[:-4] + "AAAA")["code"] == "BAD_SIGNATURE"
    bad = service.validate("garbage")
    assert bad.pop("signed_answer")
    assert bad == {
        "valid": False,
        "code": "BAD_SIGNATURE",
        "license_id": None,
        "installation_id": None,
        "expires_at": None,
        "features": [],
        "deactivated_at": None,
        "deactivated_by": None,
        "suspended_at": None,
        "suspension_reason": None,
    }


def test_deactivated_names_the_latest_deactivation_of_this_machine(service, clock) -> None:
    license_id, password = issue(service, seats=2)
    first = activate(service, license_id, password)["certificate"]
    service.deactivate_installation(COMPANY, license_id, "inst-1", "portal")
    clock.advance(days=1)
    activate(service, license_id, password)
    clock.advance(days=1)
    service.deactivate(
        {"license_id": license_id, "password": password, "installation_id": "inst-1"}
    )
    answer = service.validate(first)
    assert (answer["code"], answer["deactivated_by"]) == ("DEACTIVATED", "product")
    assert answer["deactivated_at"] == clock.now().isoformat()


def test_the_answer_is_signed_with_the_certificate_key_and_the_nonce(service, clock) -> None:
    license_id, password = issue(service)
    certificate = activate(service, license_id, password)["certificate"]
    answer = service.validate(certificate, "n-0nce Q")
    signed = answer.pop("signed_answer")
    header = json.loads(b64url_decode(signed.split(".")[0]))
    assert header == {
        "alg": "EdDSA",
        "typ": "license-validation+jwt",
        "kid": service.keys.keyring.signing_kid,
    }
    claims = service.keys.keyring.verify(signed, typ=VALIDATION_TYP)
    issued = int(clock.now().timestamp())
    assert claims == {**answer, "iat": issued, "exp": issued + 3600, "nonce": "n-0nce Q"}
    assert "nonce" not in service.keys.keyring.verify(
        service.validate(certificate)["signed_answer"], typ=VALIDATION_TYP
    )
    bad = service.validate("garbage", "n1")["signed_answer"]
    assert service.keys.keyring.verify(bad, typ=VALIDATION_TYP)["code"] == "BAD_SIGNATURE"


def test_a_signed_answer_is_no_certificate(service) -> None:
    license_id, password = issue(service)
    certificate = activate(service, license_id, password)["certificate"]
    signed = service.validate(certificate)["signed_answer"]
    assert service.validate(signed)["code"] == "BAD_SIGNATURE"


@pytest.mark.parametrize("nonce", ["", "n" * 65, "line\nbreak", "ünï", 7])
def test_a_bad_nonce_names_the_field(service, nonce) -> None:
    error = raises_code("validation_error", service.validate, "garbage", nonce)
    assert "nonce" in error.details["fields"]


def test_expiry_notices_once_per_threshold(service, events, clock) -> None:
    license_id, _ = issue(service, expires_at="2027-01-20")  # 53 days ahead
    issue(service)  # perpetual: never
    assert service.scan_expiring() == {"sent": 0}
    clock.advance(days=24)
    assert service.scan_expiring() == {"sent": 1}
    assert service.scan_expiring() == {"sent": 0}
    clock.advance(days=23)
    service.scan_expiring()
    clock.advance(days=6)
    service.scan_expiring()
    service.scan_expiring()
    notices = events.of("license_expiring")
    assert [(n["license"]["license_id"], n["days_left"]) for n in notices] == [
        (license_id, 30),
        (license_id, 7),
        (license_id, 1),
    ]
    service.extend_license(license_id, "2027-02-28")  # a new expiry starts over
    clock.advance(days=10)
    service.scan_expiring()
    assert len(events.of("license_expiring")) == 4


def test_unicode_ids_are_stored_exactly(service) -> None:
    license_id, password = issue(service)
    installation_id = "🖥️ Ω/ä?#%20 " + "x" * 100
    machine = "Zeichenbüro – 設計室 "
    activate(service, license_id, password, installation_id, machine)
    [item] = service.list_installations(license_id, COMPANY)
    assert item["installation_id"] == installation_id and item["machine_name"] == machine


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("installation_id", ""),
        ("installation_id", "x" * (domain.INSTALLATION_ID_MAX + 1)),
        ("installation_id", "a\x00b"),
        ("machine_name", ""),
        ("machine_name", "m" * (domain.MACHINE_NAME_MAX + 1)),
        ("machine_name", "\x00"),
        ("machine_name", "PC-1\r\nBcc: all@example.test"),
        ("machine_name", "PC\t1"),
        ("machine_name", "PC\x851"),  # C1 NEXT LINE
        ("machine_name", "PC\x7f"),
        ("installation_id", "inst\n1"),
        ("installation_id", "inst\x9b1"),
    ],
)
def test_bad_ids_name_the_field(service, field: str, value: str) -> None:
    license_id, password = issue(service)
    payload = {
        "license_id": license_id,
        "password": password,
        "installation_id": "i",
        "machine_name": "m",
        field: value,
    }
    error = raises_code("validation_error", service.activate, payload)
    assert field in error.details["fields"]


def test_signing_keys(service) -> None:
    [key] = service.signing_keys()["keys"]
    assert key["kid"] == service.keys.keyring.signing_kid
