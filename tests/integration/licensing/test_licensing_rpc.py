"""The licensing service over the real bus and PostgreSQL, with the real auth service.

Each test runs `AuthService` and `LicensingService` containers in this process (against the
run's vhost and databases) and calls them through `common.rpc.standalone_client()`, as the
gateway and portalctl do (fixtures: conftest.py). The licensing container's clock is a
`FixedClock` at the real time, so throttling's waits never pass by themselves while a test
runs. Concurrency tests run two licensing containers, each with its own engine and workers:
the database alone keeps the seat rule.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import eventlet
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventlet.greenpool import GreenPool
from nameko.amqp.publish import Publisher
from nameko.rpc import get_rpc_exchange
from nameko.testing.services import entrypoint_hook

from common.errors import PortalError
from common.rpc import standalone_client
from services.licensing import domain
from tests.integration.licensing.support import (
    COMPANY_PASSWORD,
    Rpc,
    expiring_of,
    issue,
    issued_of,
    new_address,
    new_company,
    payload,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


# --- activation ---------------------------------------------------------------------------


def test_activation_journey_and_events(rpc, company, product, bus_events) -> None:
    license_id, password = issue(rpc, company, product)
    first = rpc("activate", payload(license_id, password))
    assert first["created"] is True
    again = rpc("activate", payload(license_id, password, machine="PC-1 renamed"))
    assert again["created"] is False
    by_company = rpc("activate", payload(license_id, COMPANY_PASSWORD, "inst-2", "PC-2"))
    assert by_company["created"] is True
    license = rpc("get_license", license_id, company)
    assert license["seats_in_use"] == 2
    gone = rpc(
        "deactivate", {"license_id": license_id, "password": password, "installation_id": "inst-2"}
    )
    assert gone["deactivated_by"] == "product"
    # published (with confirms) before each reply: the last one's arrival means all are here,
    # but for `installation_activated`, published after the answer (common/outbox.py, Later)
    bus_events.wait_for("installation_deactivated")
    issued = issued_of(bus_events, license_id)
    assert len(issued) == 1 and issued[0]["customer_id"] == company

    def activated_here(events: Any) -> list[dict]:
        return [
            e
            for e in events.of("installation_activated")
            if e["license"]["license_id"] == license_id
        ]

    bus_events.wait_until(lambda events: len(activated_here(events)) >= 2)
    activated = activated_here(bus_events)
    assert [e["installation"]["machine_name"] for e in activated] == ["PC-1", "PC-2"]
    assert all(e["event_id"] and e["occurred_at"] for e in activated)
    deactivated = bus_events.of("installation_deactivated")
    assert deactivated[-1]["installation"]["deactivated_by"] == "product"


def test_credentials(rpc, company, product) -> None:
    license_id, password = issue(rpc, company, product)
    other_id, other_password = issue(rpc, company, product)
    foreign_id, _ = issue(rpc, new_company(rpc, "another company's pass"), product)
    wrong = rpc.error("invalid_credentials", "activate", payload(license_id, "wrong password"))
    unknown = rpc.error("invalid_credentials", "activate", payload("L-2222-2222", password))
    assert wrong.to_dict() == unknown.to_dict()
    rpc.error("invalid_credentials", "activate", payload(license_id, other_password))
    rpc.error("invalid_credentials", "activate", payload(foreign_id, COMPANY_PASSWORD))
    rpc("activate", payload(other_id, COMPANY_PASSWORD))


def test_expired_suspended_and_full(rpc, company, product) -> None:
    expired_id, expired_password = issue(rpc, company, product, expires_at="2020-01-01", force=True)
    rpc.error("license_expired", "activate", payload(expired_id, expired_password))
    license_id, password = issue(rpc, company, product, seats=2)
    rpc("suspend_license", license_id)
    rpc.error("license_suspended", "activate", payload(license_id, password))
    rpc("resume_license", license_id)
    rpc("activate", payload(license_id, password, "a", "Ålpha"))
    rpc("activate", payload(license_id, password, "b", "Beta"))
    full = rpc.error("no_seats_available", "activate", payload(license_id, password, "c", "C"))
    assert sorted(full.details["machines"]) == ["Beta", "Ålpha"]
    freed = rpc("deactivate_installation", company, license_id, "a", "portal")
    assert freed["deactivated_by"] == "portal"
    assert rpc("activate", payload(license_id, password, "c", "C"))["created"] is True


def test_failed_attempts_are_slowed_down_per_address(rpc, company, product) -> None:
    license_id, password = issue(rpc, company, product)
    attacker, customer = new_address(), new_address()
    for _ in range(domain.FREE_FAILURES_PER_LICENSE):
        error = _catch(rpc, "activate", payload(license_id, "guess", address=attacker))
        assert error.code in {"invalid_credentials", "too_many_attempts"}  # auth's throttle
    error = rpc.error(
        "too_many_attempts", "activate", payload(license_id, password, address=attacker)
    )
    assert 0 < int(error.details["retry_after"]) <= 15 * 60
    rpc("activate", payload(license_id, password, address=customer))  # never locked out
    for _ in range(domain.FREE_FAILURES_PER_LICENSE + 1):  # unknown licenses are throttled alike
        error = _catch(rpc, "activate", payload("L-9999-9999", "guess", address=customer))
    assert error.code == "too_many_attempts"


def _catch(rpc: Rpc, method: str, *args: Any) -> PortalError:
    with pytest.raises(PortalError) as caught:
        rpc(method, *args)
    return caught.value


def test_concurrent_wrong_guesses_never_outrun_the_throttle(rpc, company, product) -> None:
    license_id, _ = issue(rpc, company, product)
    attacker = new_address()

    def guess(_: int) -> str:
        with standalone_client(timeout=30) as client:
            try:
                Rpc(client)("activate", payload(license_id, "wrong guess", address=attacker))
            except PortalError as error:
                return error.code
        return "ok"

    codes = list(GreenPool(15).imap(guess, range(15)))
    # auth may refuse the company password sooner (its own counter): never more get through
    assert codes.count("invalid_credentials") <= domain.FREE_FAILURES_PER_LICENSE, codes
    assert codes.count("too_many_attempts") >= 15 - domain.FREE_FAILURES_PER_LICENSE, codes
    assert set(codes) <= {"invalid_credentials", "too_many_attempts"}, codes


def test_rotation_and_other_companies(rpc, company, product) -> None:
    license_id, password = issue(rpc, company, product)
    stranger = new_company(rpc)
    rotated = rpc("rotate_activation_password", license_id, company)["activation_password"]
    rpc.error("invalid_credentials", "activate", payload(license_id, password))
    rpc("activate", payload(license_id, rotated))
    for method in ("get_license", "list_installations", "history", "rotate_activation_password"):
        rpc.error("license_not_found", method, license_id, stranger)
    rpc.error("license_not_found", "deactivate_installation", stranger, license_id, "inst-1")
    assert rpc("list_licenses", stranger) == []


def test_history_is_newest_first_and_paginated(rpc, company, product) -> None:
    license_id, password = issue(rpc, company, product, seats=1)
    rpc("activate", payload(license_id, password, "one", "One"))
    rpc("activate", payload(license_id, password, "one", "One"))
    rpc.error("no_seats_available", "activate", payload(license_id, password, "two", "Two"))
    rpc("deactivate_installation", company, license_id, "one", "portal")
    rpc("activate", payload(license_id, password, "two", "Two"))
    page = rpc("history", license_id, company, limit=3)
    assert [(e["type"], e["installation_id"], e["source"]) for e in page["events"]] == [
        ("activated", "two", "product"),
        ("deactivated", "one", "portal"),
        ("activation_refused", "two", "product"),
    ]
    rest = rpc("history", license_id, company, limit=3, before=page["next_before"])
    assert [e["type"] for e in rest["events"]] == ["reactivated", "activated"]
    assert rest["next_before"] is None


def test_unicode_ids_round_trip_and_bad_ones_name_the_field(rpc, company, product) -> None:
    license_id, password = issue(rpc, company, product)
    installation_id = "Ωmega/🖥️?#%2F " + "é" * 100
    machine = "設計室 — Zeichenbüro №7"
    rpc("activate", payload(license_id, password, installation_id, machine))
    [item] = rpc("list_installations", license_id, company)
    assert (item["installation_id"], item["machine_name"]) == (installation_id, machine)
    for field, value in [
        ("installation_id", ""),
        ("installation_id", "x" * 129),
        ("machine_name", "a\x00b"),
        ("machine_name", "m" * 201),
        ("machine_name", "PC-1\r\nBcc: all@example.test"),
        ("installation_id", "inst\t1"),
    ]:
        error = rpc.error(
            "validation_error", "activate", {**payload(license_id, password), field: value}
        )
        assert field in error.details["fields"]


# --- certificates -------------------------------------------------------------------------


def test_pyjwt_verifies_our_certificate_with_the_jwks(rpc, company, product) -> None:
    license_id, password = issue(rpc, company, product, expires_at="2099-06-30")
    certificate = rpc("activate", payload(license_id, password, "jwt-1", "Ada's PC"))["certificate"]
    jwks = jwt.PyJWKSet.from_dict(rpc("signing_keys"))
    kid = jwt.get_unverified_header(certificate)["kid"]
    claims = jwt.decode(certificate, jwks[kid].key, algorithms=["EdDSA"])
    assert claims["license_id"] == license_id
    assert claims["installation_id"] == "jwt-1"
    assert claims["machine_name"] == "Ada's PC"
    assert claims["customer_id"] == company
    assert claims["product"] == product
    assert claims["exp"] == int(datetime(2099, 6, 30, 23, 59, 59, tzinfo=UTC).timestamp())


def test_validation_codes(rpc, company, product) -> None:
    license_id, password = issue(rpc, company, product, seats=1)
    certificate = rpc("activate", payload(license_id, password))["certificate"]
    answer = rpc("validate", certificate, "nonce-1")
    signed = answer.pop("signed_answer")
    assert answer == {
        "valid": True,
        "code": "VALID",
        "license_id": license_id,
        "installation_id": "inst-1",
        "expires_at": None,
        "features": [],
        "deactivated_at": None,
        "deactivated_by": None,
        "suspended_at": None,
        "suspension_reason": None,
    }
    jwks = jwt.PyJWKSet.from_dict(rpc("signing_keys"))
    assert jwt.get_unverified_header(signed)["typ"] == "license-validation+jwt"
    kid = jwt.get_unverified_header(signed)["kid"]
    claims = jwt.decode(signed, jwks[kid].key, algorithms=["EdDSA"])
    assert claims == {
        **answer,
        "iat": claims["iat"],
        "exp": claims["iat"] + 3600,
        "nonce": "nonce-1",
    }
    rpc("suspend_license", license_id, "Payment overdue.")
    suspended = rpc("validate", certificate)
    assert suspended["code"] == "SUSPENDED" and suspended["suspended_at"] is not None
    assert suspended["suspension_reason"] == "Payment overdue."
    rpc("resume_license", license_id)
    rpc("extend_license", license_id, "2020-01-01", True)  # perpetual, and a past day
    assert rpc("validate", certificate)["code"] == "EXPIRED"
    rpc("extend_license", license_id, "2099-01-01")
    assert rpc("validate", certificate)["code"] == "VALID"
    header, claims, signature = certificate.split(".")
    forged = json.loads(base64.urlsafe_b64decode(claims + "=="))
    forged["license_id"] = "L-FAKE-FAKE"
    tampered = ".".join(
        [
            header,
            base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("="),
            signature,
        ]
    )
    for bad in (tampered, "garbage", "", "a.b.c", 12345, None):
        answer = rpc("validate", bad)
        assert (answer["valid"], answer["code"]) == (False, "BAD_SIGNATURE"), bad
    rpc("deactivate_installation", None, license_id, "inst-1", "staff")
    assert rpc("validate", certificate)["code"] == "DEACTIVATED"


def test_a_rotated_signing_key_still_verifies_old_certificates(
    config, another_licensing, rpc, licensing, company, product
) -> None:
    old_key = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    new_key = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    licensing.stop()
    old = another_licensing({**config, "LICENSE_SIGNING_KEY": old_key})
    license_id, password = issue(rpc, company, product)
    certificate = rpc("activate", payload(license_id, password))["certificate"]
    old.stop()
    rotated = {**config, "LICENSE_SIGNING_KEY": new_key, "LICENSE_SIGNING_KEYS_RETIRED": old_key}
    another_licensing(rotated)
    assert len(rpc("signing_keys")["keys"]) == 2
    assert rpc("validate", certificate)["code"] == "VALID"
    fresh = rpc("activate", payload(license_id, password, "inst-2"))["certificate"]
    assert jwt.get_unverified_header(fresh)["kid"] != jwt.get_unverified_header(certificate)["kid"]


def test_an_activation_whose_reply_was_lost_is_retried_into_the_same_seat(
    config, rpc, company, product
) -> None:
    """A reply may be lost (its caller timed out and went, the broker dropped it): the
    caller's retry must find the installation active, answer 200 with it, take no seat."""
    license_id, password = issue(rpc, company, product, seats=1)
    body = payload(license_id, password, "inst-lost", "PC-lost")
    # the first attempt's reply goes to a queue that does not exist: dropped by the broker
    Publisher(config["AMQP_URI"]).publish(
        {"args": [body], "kwargs": {}},
        exchange=get_rpc_exchange(),
        routing_key="licensing.activate",
        reply_to=f"nowhere-{uuid.uuid4().hex}",
        correlation_id=uuid.uuid4().hex,
    )
    deadline = time.monotonic() + 30
    while rpc("get_license", license_id, company)["seats_in_use"] == 0:
        assert time.monotonic() < deadline, "the first attempt never ran"
        eventlet.sleep(0.1)
    retry = rpc("activate", body)
    assert retry["created"] is False  # the gateway answers it 200
    assert retry["activation"]["installation_id"] == "inst-lost"
    assert rpc("get_license", license_id, company)["seats_in_use"] == 1


# --- several instances --------------------------------------------------------------------


def test_forty_concurrent_activations_on_two_instances_fill_exactly_three_seats(
    another_licensing, rpc, licensing, company, product
) -> None:
    another_licensing()  # a second instance on the same queue
    license_id, password = issue(rpc, company, product, seats=3)

    def activate(index: int) -> str:
        with standalone_client(timeout=30) as client:
            try:
                result = Rpc(client)(
                    "activate", payload(license_id, password, f"m{index}", f"Machine {index}")
                )
            except PortalError as error:
                return error.code
        return "created" if result["created"] else "again"

    outcomes = list(GreenPool(40).imap(activate, range(40)))
    assert outcomes.count("created") == 3, outcomes
    assert outcomes.count("no_seats_available") == 37, outcomes
    license = rpc("get_license", license_id, company)
    assert license["seats_in_use"] == 3
    assert len([i for i in license["installations"] if i["status"] == "active"]) == 3


def test_expiry_notice_goes_out_once_with_two_instances(
    another_licensing, clock, rpc, licensing, company, product, bus_events
) -> None:
    second = another_licensing()
    soon = (clock.now() + timedelta(days=5)).isoformat()
    license_id, _ = issue(rpc, company, product, expires_at=soon)

    def scan(container) -> None:
        with entrypoint_hook(container, "scan_expiring") as hook:
            hook()

    pool = GreenPool(6)
    for container in (licensing, second, licensing, second, licensing, second):
        pool.spawn(scan, container)
    pool.waitall()
    # a sentinel published after every scan: once it is here, every notice of theirs is too
    sentinel, _ = issue(rpc, company, product)
    bus_events.wait_until(lambda events: issued_of(events, sentinel))
    notices = expiring_of(bus_events, license_id)
    assert len(notices) == 1, notices
    assert notices[0]["days_left"] == 5
    assert notices[0]["customer_id"] == company


def test_the_timer_scans_at_the_configured_interval(
    config, another_licensing, clock, rpc, licensing, company, product, bus_events
) -> None:
    fast = {**config, "LICENSING_EXPIRY_SCAN_SECONDS": 0.2}
    another_licensing(fast)
    soon = (clock.now() + timedelta(hours=20)).isoformat()
    license_id, _ = issue(rpc, company, product, expires_at=soon)
    bus_events.wait_until(lambda events: expiring_of(events, license_id), timeout=6)
    # a later scan notices a second license: by then it has passed the first one again
    # (expiring an hour later, it comes after the first in that scan's events)
    an_hour_later = (clock.now() + timedelta(hours=21)).isoformat()
    later, _ = issue(rpc, company, product, expires_at=an_hour_later)
    bus_events.wait_until(lambda events: expiring_of(events, later), timeout=6)
    assert [n["days_left"] for n in expiring_of(bus_events, license_id)] == [1]
