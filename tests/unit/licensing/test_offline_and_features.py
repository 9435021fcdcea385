"""Offline activation and deactivation, and features, through worker_factory workers over a
migrated SQLite database (fixtures: conftest.py): the same seat rules as online, a proof
valid once, features in views, certificates, validation and events."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from common.errors import PortalError
from common.rpc import Caller
from services.licensing import domain
from services.licensing.models import HandledRequest, Installation
from tests.support.offline_kit import claims_of, proof_file, request_file
from tests.unit.licensing.support import COMPANY, OTHER, activate, issue, raises_code
from tests.unit.licensing.test_audit_trail import USER, actions, trail
from tests.unit.licensing.test_payments import paid

PRODUCT = "cadpro"


def seats_in_use(service, license_id: str) -> int:
    return service.get_license(license_id)["seats_in_use"]


# --- offline activation -------------------------------------------------------------------


def test_offline_activation_takes_a_seat_once_and_answers_a_response(
    service, events, db, actor_context
) -> None:
    license_id, _ = issue(service, seats=2)
    actor_context["actor"] = USER
    text = request_file(license_id, PRODUCT)
    first = service.activate_offline(COMPANY, license_id, text)
    assert first["created"] is True
    assert first["activation"]["source"] == "offline"
    assert first["activation"]["installation_id"] == "air-1"
    response = json.loads(first["response"])
    sent = json.loads(text)
    assert response["type"] == "activation_response" and response["version"] == 1
    assert response["nonce"] == sent["nonce"]
    assert response["certificate"] == first["certificate"]
    assert (response["license_id"], response["product"]) == (license_id, "cadpro")
    assert len(response["deactivation_secret"]) == 43
    claims = claims_of(first["certificate"])
    assert claims["installation_id"] == "air-1" and claims["features"] == []
    assert service.validate(first["certificate"])["code"] == "VALID"
    assert seats_in_use(service, license_id) == 1

    # the same installation again: no second seat, a fresh response (a new secret)
    again = service.activate_offline(COMPANY, license_id, request_file(license_id, PRODUCT))
    assert again["created"] is False
    secret = json.loads(again["response"])["deactivation_secret"]
    assert secret != response["deactivation_secret"]
    assert seats_in_use(service, license_id) == 1

    assert len(events.of("installation_activated")) == 1
    history = service.history(license_id)["events"]
    assert [(e["type"], e["source"]) for e in history] == [
        ("reactivated", "offline"),
        ("activated", "offline"),
    ]
    assert history[0]["actor"] == USER
    offline_facts = [e for e in trail(db) if e["action"] == "offline_activation"]
    assert len(offline_facts) == 2
    assert offline_facts[0]["details"] == {"installation_id": "air-1", "machine_name": "WS-air-1"}
    assert offline_facts[0]["actor"] == USER
    # the secret is nowhere but in the answer
    stored = json.dumps(trail(db)) + json.dumps(events)
    assert secret not in stored and response["deactivation_secret"] not in stored


def test_offline_activation_keeps_the_seat_rules(service, clock) -> None:
    license_id, password = issue(service, seats=1)
    activate(service, license_id, password, "online-1", "PC-1")
    refused = raises_code(
        "no_seats_available",
        service.activate_offline,
        COMPANY,
        license_id,
        request_file(license_id, PRODUCT),
    )
    assert refused.details["machines"] == ["PC-1"]
    assert service.history(license_id)["events"][0]["source"] == "offline"
    assert service.history(license_id)["events"][0]["reason"] == "no_seats_available"
    service.suspend_license(license_id)
    raises_code(
        "license_suspended",
        service.activate_offline,
        None,
        license_id,
        request_file(license_id, PRODUCT),
    )
    service.resume_license(license_id)
    expiring, _ = issue(service, seats=1, expires_at="2026-12-01")
    clock.advance(days=5)
    raises_code(
        "license_expired", service.activate_offline, None, expiring, request_file(expiring, PRODUCT)
    )


def test_requests_of_another_license_product_or_company_are_refused(service) -> None:
    license_id, _ = issue(service)
    other_id, _ = issue(service)
    foreign = raises_code(
        "invalid_request",
        service.activate_offline,
        COMPANY,
        license_id,
        request_file(other_id, PRODUCT),
    )
    assert foreign.message == f"This request is for license {other_id}, not {license_id}."
    assert foreign.details == {"problem": foreign.message, "field": "license_id"}
    product = raises_code(
        "invalid_request",
        service.activate_offline,
        COMPANY,
        license_id,
        request_file(license_id, "viewer"),
    )
    assert product.details["field"] == "product"
    raises_code(
        "license_not_found",
        service.activate_offline,
        OTHER,
        license_id,
        request_file(license_id, PRODUCT),
    )
    broken = raises_code(
        "invalid_request",
        service.activate_offline,
        COMPANY,
        license_id,
        request_file(license_id, PRODUCT)[:-9],
    )
    assert "JSON" in broken.details["problem"]
    assert seats_in_use(service, license_id) == 0


def test_an_online_activation_clears_the_offline_secret(service) -> None:
    license_id, password = issue(service)
    answer = service.activate_offline(
        COMPANY, license_id, request_file(license_id, PRODUCT, "both")
    )
    secret = json.loads(answer["response"])["deactivation_secret"]
    activate(service, license_id, password, "both", "PC")
    raises_code(
        "invalid_proof",
        service.deactivate_offline,
        COMPANY,
        license_id,
        proof_file(license_id, "both", secret),
    )
    assert seats_in_use(service, license_id) == 1


# --- offline deactivation -----------------------------------------------------------------


def test_a_proof_frees_the_seat_once(service, events, db, actor_context) -> None:
    license_id, _ = issue(service, seats=1)
    answer = service.activate_offline(COMPANY, license_id, request_file(license_id, PRODUCT))
    secret = json.loads(answer["response"])["deactivation_secret"]
    actor_context["actor"] = USER
    proof = proof_file(license_id, "air-1", secret)
    freed = service.deactivate_offline(COMPANY, license_id, proof)
    assert freed["status"] == "deactivated" and freed["deactivated_by"] == "offline"
    assert seats_in_use(service, license_id) == 0
    assert service.validate(answer["certificate"])["code"] == "DEACTIVATED"
    [fact] = [e for e in trail(db) if e["action"] == "installation_deactivated"]
    assert fact["details"]["source"] == "offline" and fact["actor"] == USER
    assert secret not in json.dumps(trail(db))
    assert service.history(license_id)["events"][0]["source"] == "offline"
    assert events.of("installation_deactivated")[-1]["installation"]["deactivated_by"] == "offline"

    reused = raises_code("invalid_proof", service.deactivate_offline, COMPANY, license_id, proof)
    assert reused.details["field"] == "installation_id"
    # activated again offline: the old proof is no key to the new activation
    service.activate_offline(COMPANY, license_id, request_file(license_id, PRODUCT))
    again = raises_code("invalid_proof", service.deactivate_offline, COMPANY, license_id, proof)
    assert again.details["field"] == "secret"
    assert seats_in_use(service, license_id) == 1


def test_a_request_uploaded_twice_answers_the_same_secret(service, db, request_key) -> None:
    license_id, _ = issue(service, seats=1)
    text = request_file(license_id, PRODUCT)
    request_key.key = "upload-1"
    installed = json.loads(service.activate_offline(COMPANY, license_id, text)["response"])
    request_key.key = "upload-2"  # a second upload, not a redelivery
    second = service.activate_offline(COMPANY, license_id, text)
    assert second["created"] is False
    secret = installed["deactivation_secret"]
    assert json.loads(second["response"])["deactivation_secret"] == secret
    # nowhere in the database, not even sealed in the request ledger
    with db.transaction() as session:
        ledger = [row._mapping for row in session.execute(select(HandledRequest.__table__))]
        stored = json.dumps([dict(row) for row in ledger], default=str)
        hashes = session.scalars(select(Installation.offline_secret_hash)).all()
    assert len(ledger) >= 2 and secret not in stored and secret not in json.dumps(hashes)
    # the machine installed the first response: its proof frees the seat
    freed = service.deactivate_offline(COMPANY, license_id, proof_file(license_id, "air-1", secret))
    assert freed["status"] == "deactivated"
    assert seats_in_use(service, license_id) == 0


def test_an_offline_certificate_signs_its_source_and_nonce(service) -> None:
    license_id, password = issue(service, seats=2)
    text = request_file(license_id, PRODUCT)
    answer = service.activate_offline(COMPANY, license_id, text)
    verified = service.keys.keyring.verify(answer["certificate"])
    assert verified["source"] == "offline"
    assert verified["nonce"] == json.loads(text)["nonce"]
    online = activate(service, license_id, password, "online-1", "PC-1")
    claims = service.keys.keyring.verify(online["certificate"])
    assert "source" not in claims and "nonce" not in claims


def test_forged_foreign_and_malformed_proofs_are_invalid(service) -> None:
    license_id, _ = issue(service)
    other_id, _ = issue(service)
    answer = service.activate_offline(COMPANY, license_id, request_file(license_id, PRODUCT))
    secret = json.loads(answer["response"])["deactivation_secret"]
    forged = proof_file(license_id, "air-1", "A" * 43)
    raises_code("invalid_proof", service.deactivate_offline, COMPANY, license_id, forged)
    foreign = raises_code(
        "invalid_proof",
        service.deactivate_offline,
        COMPANY,
        other_id,
        proof_file(license_id, "air-1", secret),
    )
    assert foreign.details["field"] == "license_id"
    raises_code(
        "license_not_found",
        service.deactivate_offline,
        OTHER,
        license_id,
        proof_file(license_id, "air-1", secret),
    )
    malformed = raises_code("invalid_proof", service.deactivate_offline, COMPANY, license_id, "{}")
    assert malformed.details["field"] == "type"
    assert seats_in_use(service, license_id) == 1
    # staff may free it with the right proof
    assert service.deactivate_offline(None, license_id, proof_file(license_id, "air-1", secret))


def test_a_redelivered_offline_activation_answers_the_same_response(service, request_key) -> None:
    # (the same response: the ledger keeps no secret, the secret is derived again)
    license_id, _ = issue(service)
    text = request_file(license_id, PRODUCT)
    request_key.key = "req-1"
    first = service.activate_offline(COMPANY, license_id, text)
    second = service.activate_offline(COMPANY, license_id, text)
    assert second["response"] == first["response"]
    assert second["created"] is True
    assert service.history(license_id)["events"][0]["type"] == "activated"
    assert len(service.history(license_id)["events"]) == 1


# --- features -----------------------------------------------------------------------------


def test_feature_rules_are_pure() -> None:
    assert domain.feature_codes([" Steel", "steel", "BIM"]) == ["bim", "steel"]
    assert domain.unknown_features(["steel", "Cloud"], ["steel"]) == ["cloud"]
    change = domain.change_features(["steel"], add=["Dynamic", "steel"], remove=["bim"])
    assert change == domain.FeatureChange(["dynamic", "steel"], ["dynamic"], [])
    assert change.changed
    assert not domain.change_features(["steel"], add=["steel"]).changed
    both = domain.change_features([], add=["steel"], remove=["steel"])
    assert both.features == [] and not both.changed


def add_features(service) -> None:
    service.add_product_feature("cadpro", {"code": "Steel", "name": "Steel design"})
    service.add_product_feature("CADPRO", {"code": "dynamic", "name": "Dynamic analysis"})


def test_products_have_features(service) -> None:
    add_features(service)
    expected = [
        {"code": "dynamic", "name": "Dynamic analysis"},
        {"code": "steel", "name": "Steel design"},
    ]
    assert service.get_product("cadpro")["features"] == expected
    assert service.list_products()[0]["features"] == expected
    raises_code(
        "feature_exists", service.add_product_feature, "cadpro", {"code": "STEEL", "name": "x"}
    )
    raises_code(
        "product_not_found", service.add_product_feature, "nope", {"code": "a", "name": "A"}
    )
    raises_code("validation_error", service.add_product_feature, "cadpro", {"code": "a b"})


def test_a_license_holds_features_in_views_certificates_and_validation(service, events) -> None:
    add_features(service)
    issued = service.issue_license(
        {"customer_id": COMPANY, "product": "cadpro", "seats": 2, "features": ["STEEL"]}
    )
    license_id = issued["license_id"]
    assert issued["features"] == [{"code": "steel", "name": "Steel design"}]
    assert service.list_licenses(COMPANY)[0]["features"] == issued["features"]
    password = service.get_license(license_id)["activation_password"]
    assert service.get_license(license_id)["features"] == issued["features"]
    certificate = activate(service, license_id, password)["certificate"]
    assert claims_of(certificate)["features"] == ["steel"]
    assert service.validate(certificate)["features"] == ["steel"]
    assert events.of("license_features_changed") == []  # not on issue

    changed = service.change_license_features(license_id, {"add": ["dynamic"], "remove": ["steel"]})
    assert [f["code"] for f in changed["features"]] == ["dynamic"]
    assert service.validate(certificate)["features"] == ["dynamic"]
    fresh = activate(service, license_id, password)["certificate"]
    assert claims_of(fresh)["features"] == ["dynamic"]
    [event] = events.of("license_features_changed")
    assert event["license_id"] == license_id and event["customer_id"] == COMPANY
    assert event["product"] == {"code": "cadpro", "name": "CAD Pro"}
    assert event["added"] == ["dynamic"] and event["removed"] == ["steel"]
    assert event["features"] == [{"code": "dynamic", "name": "Dynamic analysis"}]
    assert event["changed_by"] == {"type": "staff"}

    # no difference: no event
    service.change_license_features(license_id, {"add": ["dynamic"]})
    assert len(events.of("license_features_changed")) == 1
    service.suspend_license(license_id)
    assert service.validate(certificate)["features"] == []


def test_unknown_features_are_named(service, db) -> None:
    add_features(service)
    unknown = raises_code(
        "unknown_feature",
        service.issue_license,
        {"customer_id": COMPANY, "product": "cadpro", "seats": 1, "features": ["steel", "bim"]},
    )
    assert unknown.details["feature"] == "bim" and "bim" in unknown.message
    license_id, _ = issue(service)
    refused = raises_code(
        "unknown_feature", service.change_license_features, license_id, {"remove": ["cloud"]}
    )
    assert refused.details["feature"] == "cloud"
    raises_code("license_not_found", service.change_license_features, "L-2222-2222", {})
    assert "license_features_changed" not in actions(db)
    service.change_license_features(license_id, {"add": ["steel"]})
    [fact] = [e for e in trail(db) if e["action"] == "license_features_changed"]
    assert fact["details"] == {"added": ["steel"], "removed": []}
    assert fact["target"] == {"type": "license", "id": license_id}


def test_a_purchase_grants_its_plans_features_and_a_renewal_adds_them(
    service, events, clock
) -> None:
    add_features(service)
    purchase = paid(clock.now() + timedelta(days=30))
    purchase["purchase"]["features"] = ["Steel"]
    service.on_payment_succeeded(purchase)
    [license] = service.list_licenses(COMPANY)
    assert [f["code"] for f in license["features"]] == ["steel"]
    assert events.of("license_features_changed") == []

    renewal = paid(clock.now() + timedelta(days=60), "renewal", license["license_id"])
    renewal["purchase"]["features"] = ["steel", "dynamic", "retired-module"]
    service.on_payment_succeeded(renewal)
    [renewed] = service.list_licenses(COMPANY)
    assert [f["code"] for f in renewed["features"]] == ["dynamic", "steel"]
    [event] = events.of("license_features_changed")
    assert event["added"] == ["dynamic"] and event["changed_by"] == {"type": "system"}
    assert event["receipt_number"] == renewal["payment"]["receipt_number"]

    # a renewal that extends nothing still grants what it paid for
    again = paid(clock.now() + timedelta(days=10), "renewal", license["license_id"])
    again["purchase"]["features"] = ["steel"]
    service.on_payment_succeeded(again)
    assert len(events.of("license_features_changed")) == 1


@pytest.mark.parametrize(
    "payload",
    [{"add": "steel"}, {"add": [1]}, {"remove": ["a b"]}, {"other": []}, {"add": ["x"] * 101}],
)
def test_bad_feature_changes_name_the_field(service, payload) -> None:
    license_id, _ = issue(service)
    with pytest.raises(PortalError) as caught:
        service.change_license_features(license_id, payload)
    assert caught.value.code == "validation_error"


def test_the_staff_path_is_refused_to_the_gateway(service) -> None:
    license_id, _ = issue(service)
    service.caller = Caller("portal-gateway", "portal-licensing")
    text = request_file(license_id, PRODUCT)
    raises_code("forbidden", service.activate_offline, None, license_id, text)
    raises_code("forbidden", service.deactivate_offline, None, license_id, "{}")
    assert service.activate_offline(COMPANY, license_id, text)["created"] is True
    service.caller = Caller("portal-staff", "portal-licensing")
    assert service.activate_offline(None, license_id, text)["created"] is False
