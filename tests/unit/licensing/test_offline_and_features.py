"""Offline activation and deactivation, and features, through worker_factory workers over a
migrated SQLite database (fixtures: conftest.py): the same seat rules as online, a proof
valid once, features in views, certificates, validation and events."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest

from common.errors import PortalError
from common.rpc import Caller
from services.licensing import domain
from tests.unit.licensing.support import COMPANY, OTHER, activate, issue, raises_code
from tests.unit.licensing.test_audit_trail import USER, actions, trail
from tests.unit.licensing.test_payments import paid


def request_text(license_id: str, installation_id: str = "air-1", **changes: Any) -> str:
    body = {
        "type": "activation_request",
        "version": 1,
        "license_id": license_id,
        "installation_id": installation_id,
        "machine_name": f"WS-{installation_id}",
        "product": "cadpro",
        "requested_at": "2026-11-28T08:00:00+00:00",
        "nonce": uuid.uuid4().hex,
    }
    body.update(changes)
    return json.dumps(body)


def proof_text(license_id: str, installation_id: str, secret: str) -> str:
    return json.dumps(
        {
            "type": "deactivation_proof",
            "version": 1,
            "license_id": license_id,
            "installation_id": installation_id,
            "deactivated_at": "2026-11-29T08:00:00+00:00",
            "secret": secret,
        }
    )


def claims_of(certificate: str) -> dict[str, Any]:
    return jwt.decode(certificate, options={"verify_signature": False})


def seats_in_use(service, license_id: str) -> int:
    return service.get_license(license_id)["seats_in_use"]


# --- offline activation -------------------------------------------------------------------


def test_offline_activation_takes_a_seat_once_and_answers_a_response(
    service, events, db, actor_context
) -> None:
    license_id, _ = issue(service, seats=2)
    actor_context["actor"] = USER
    text = request_text(license_id)
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
    again = service.activate_offline(COMPANY, license_id, request_text(license_id))
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
        request_text(license_id),
    )
    assert refused.details["machines"] == ["PC-1"]
    assert service.history(license_id)["events"][0]["source"] == "offline"
    assert service.history(license_id)["events"][0]["reason"] == "no_seats_available"
    service.suspend_license(license_id)
    raises_code(
        "license_suspended", service.activate_offline, None, license_id, request_text(license_id)
    )
    service.resume_license(license_id)
    expiring, _ = issue(service, seats=1, expires_at="2026-12-01")
    clock.advance(days=5)
    raises_code("license_expired", service.activate_offline, None, expiring, request_text(expiring))


def test_requests_of_another_license_product_or_company_are_refused(service) -> None:
    license_id, _ = issue(service)
    other_id, _ = issue(service)
    foreign = raises_code(
        "invalid_request", service.activate_offline, COMPANY, license_id, request_text(other_id)
    )
    assert foreign.message == f"This request is for license {other_id}, not {license_id}."
    assert foreign.details == {"problem": foreign.message, "field": "license_id"}
    product = raises_code(
        "invalid_request",
        service.activate_offline,
        COMPANY,
        license_id,
        request_text(license_id, product="viewer"),
    )
    assert product.details["field"] == "product"
    raises_code(
        "license_not_found", service.activate_offline, OTHER, license_id, request_text(license_id)
    )
    broken = raises_code(
        "invalid_request",
        service.activate_offline,
        COMPANY,
        license_id,
        request_text(license_id)[:-9],
    )
    assert "JSON" in broken.details["problem"]
    assert seats_in_use(service, license_id) == 0


def test_an_online_activation_clears_the_offline_secret(service) -> None:
    license_id, password = issue(service)
    answer = service.activate_offline(COMPANY, license_id, request_text(license_id, "both"))
    secret = json.loads(answer["response"])["deactivation_secret"]
    activate(service, license_id, password, "both", "PC")
    raises_code(
        "invalid_proof",
        service.deactivate_offline,
        COMPANY,
        license_id,
        proof_text(license_id, "both", secret),
    )
    assert seats_in_use(service, license_id) == 1


# --- offline deactivation -----------------------------------------------------------------


def test_a_proof_frees_the_seat_once(service, events, db, actor_context) -> None:
    license_id, _ = issue(service, seats=1)
    answer = service.activate_offline(COMPANY, license_id, request_text(license_id))
    secret = json.loads(answer["response"])["deactivation_secret"]
    actor_context["actor"] = USER
    proof = proof_text(license_id, "air-1", secret)
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
    service.activate_offline(COMPANY, license_id, request_text(license_id))
    again = raises_code("invalid_proof", service.deactivate_offline, COMPANY, license_id, proof)
    assert again.details["field"] == "secret"
    assert seats_in_use(service, license_id) == 1


def test_forged_foreign_and_malformed_proofs_are_invalid(service) -> None:
    license_id, _ = issue(service)
    other_id, _ = issue(service)
    answer = service.activate_offline(COMPANY, license_id, request_text(license_id))
    secret = json.loads(answer["response"])["deactivation_secret"]
    forged = proof_text(license_id, "air-1", "A" * 43)
    raises_code("invalid_proof", service.deactivate_offline, COMPANY, license_id, forged)
    foreign = raises_code(
        "invalid_proof",
        service.deactivate_offline,
        COMPANY,
        other_id,
        proof_text(license_id, "air-1", secret),
    )
    assert foreign.details["field"] == "license_id"
    raises_code(
        "license_not_found",
        service.deactivate_offline,
        OTHER,
        license_id,
        proof_text(license_id, "air-1", secret),
    )
    malformed = raises_code("invalid_proof", service.deactivate_offline, COMPANY, license_id, "{}")
    assert malformed.details["field"] == "type"
    assert seats_in_use(service, license_id) == 1
    # staff may free it with the right proof
    assert service.deactivate_offline(None, license_id, proof_text(license_id, "air-1", secret))


def test_a_redelivered_offline_activation_answers_the_same_response(service, request_key) -> None:
    license_id, _ = issue(service)
    text = request_text(license_id)
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
    text = request_text(license_id)
    raises_code("forbidden", service.activate_offline, None, license_id, text)
    raises_code("forbidden", service.deactivate_offline, None, license_id, "{}")
    assert service.activate_offline(COMPANY, license_id, text)["created"] is True
    service.caller = Caller("portal-staff", "portal-licensing")
    assert service.activate_offline(None, license_id, text)["created"] is False
