"""Offline activation and features over the real bus and PostgreSQL (fixtures: conftest.py).

The seat rule is the database's alone: online and offline activations of one license race
through two licensing instances, released together, and fill exactly its seats.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from eventlet.event import Event
from eventlet.greenpool import GreenPool
from nameko.standalone.events import event_dispatcher

from common.errors import PortalError
from common.rpc import standalone_client
from tests.integration.licensing.support import Rpc, issue, issued_of, payload
from tests.integration.licensing.test_staff_tools import paid
from tests.support.offline_kit import claims_of, proof_file, request_file

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def in_use(rpc: Rpc, license_id: str, company: str) -> int:
    return rpc("get_license", license_id, company)["seats_in_use"]


def test_offline_activation_and_deactivation(rpc, company, product, bus_events) -> None:
    license_id, _ = issue(rpc, company, product, seats=2)
    first = rpc("activate_offline", company, license_id, request_file(license_id, product))
    assert first["created"] is True and first["activation"]["source"] == "offline"
    response = json.loads(first["response"])
    assert response["certificate"] == first["certificate"]
    assert rpc("validate", first["certificate"])["code"] == "VALID"
    assert in_use(rpc, license_id, company) == 1
    again = rpc("activate_offline", company, license_id, request_file(license_id, product))
    assert again["created"] is False
    assert in_use(rpc, license_id, company) == 1
    [activated] = [
        e
        for e in bus_events.wait_for("installation_activated")
        if e["license"]["license_id"] == license_id
    ]
    assert activated["installation"]["installation_id"] == "air-1"

    # the second request (a new nonce) replaced the first response's secret
    old = proof_file(license_id, "air-1", response["deactivation_secret"])
    rpc.error("invalid_proof", "deactivate_offline", company, license_id, old)
    forged = proof_file(license_id, "air-1", "B" * 43)
    rpc.error("invalid_proof", "deactivate_offline", company, license_id, forged)
    secret = json.loads(again["response"])["deactivation_secret"]
    proof = proof_file(license_id, "air-1", secret)
    freed = rpc("deactivate_offline", company, license_id, proof)
    assert freed["deactivated_by"] == "offline" and freed["status"] == "deactivated"
    assert in_use(rpc, license_id, company) == 0
    assert rpc("validate", first["certificate"])["code"] == "DEACTIVATED"
    reused = rpc.error("invalid_proof", "deactivate_offline", company, license_id, proof)
    assert reused.details["problem"]
    history = rpc("history", license_id, company)["events"]
    assert [(e["type"], e["source"]) for e in history] == [
        ("deactivated", "offline"),
        ("reactivated", "offline"),
        ("activated", "offline"),
    ]


def test_malformed_and_foreign_requests(rpc, company, product) -> None:
    license_id, _ = issue(rpc, company, product)
    other_id, _ = issue(rpc, company, product)
    foreign = rpc.error(
        "invalid_request", "activate_offline", company, license_id, request_file(other_id, product)
    )
    assert foreign.details == {
        "problem": f"This request is for license {other_id}, not {license_id}.",
        "field": "license_id",
    }
    truncated = request_file(license_id, product)[:50]
    rpc.error("invalid_request", "activate_offline", company, license_id, truncated)
    rpc.error("invalid_request", "activate_offline", company, license_id, "x" * 17000)
    rpc.error("license_not_found", "activate_offline", "C0000001", license_id, "{}")
    assert in_use(rpc, license_id, company) == 0


def escaped(text: str, field: str, raw: str) -> str:
    """`text` (a file's JSON) with `field`'s value replaced by `raw` JSON escapes (such as
    `\\ud800`, which json.dumps never writes but a broken kit may)."""
    body = json.loads(text)
    body[field] = "PLACEHOLDER"
    return json.dumps(body).replace('"PLACEHOLDER"', f'"ws{raw}"')


def test_nul_and_lone_surrogates_are_invalid_files_not_internal_errors(
    rpc, company, product
) -> None:
    license_id, _ = issue(rpc, company, product)
    for field, raw in [
        ("machine_name", "\\ud800"),
        ("installation_id", "\\udc00"),
        ("installation_id", "\\u0000"),
    ]:
        text = escaped(request_file(license_id, product), field, raw)
        error = rpc.error("invalid_request", "activate_offline", company, license_id, text)
        assert error.details["field"] == field
    assert in_use(rpc, license_id, company) == 0
    answer = rpc("activate_offline", company, license_id, request_file(license_id, product))
    secret = json.loads(answer["response"])["deactivation_secret"]
    proof = escaped(proof_file(license_id, "air-1", secret), "installation_id", "\\u0000")
    error = rpc.error("invalid_proof", "deactivate_offline", company, license_id, proof)
    assert error.details["field"] == "installation_id"
    assert in_use(rpc, license_id, company) == 1


def test_a_request_uploaded_twice_keeps_the_first_response_working(rpc, company, product):
    license_id, _ = issue(rpc, company, product, seats=1)
    text = request_file(license_id, product)
    installed = json.loads(rpc("activate_offline", company, license_id, text)["response"])
    again = json.loads(rpc("activate_offline", company, license_id, text)["response"])
    secret = installed["deactivation_secret"]
    assert again["deactivation_secret"] == secret
    freed = rpc("deactivate_offline", company, license_id, proof_file(license_id, "air-1", secret))
    assert freed["status"] == "deactivated"
    assert in_use(rpc, license_id, company) == 0


def test_online_and_offline_activations_racing_on_two_instances_fill_exactly_the_seats(
    another_licensing, rpc, licensing, company, product
) -> None:
    another_licensing()  # a second instance on the same queue
    license_id, password = issue(rpc, company, product, seats=3)
    start = Event()
    ready: list[int] = []

    def attempt(index: int) -> str:
        with standalone_client(timeout=30) as client:
            ready.append(index)
            start.wait()  # every client connected: released together
            try:
                if index % 2:
                    text = request_file(license_id, product, f"air-{index}")
                    result = Rpc(client)("activate_offline", company, license_id, text)
                else:
                    body = payload(license_id, password, f"online-{index}", f"PC {index}")
                    result = Rpc(client)("activate", body)
            except PortalError as error:
                return error.code
        return ("offline " if index % 2 else "online ") + (
            "created" if result["created"] else "again"
        )

    pool = GreenPool(30)
    outcomes_of = [pool.spawn(attempt, index) for index in range(30)]
    while len(ready) < 30:
        eventlet.sleep(0.01)
    start.send()
    outcomes = [thread.wait() for thread in outcomes_of]
    created = [o for o in outcomes if o.endswith("created")]
    assert len(created) == 3, outcomes
    assert outcomes.count("no_seats_available") == 27, outcomes
    license = rpc("get_license", license_id, company)
    assert license["seats_in_use"] == 3
    assert len([i for i in license["installations"] if i["status"] == "active"]) == 3


def test_features_in_certificates_validation_and_changes(rpc, company, product, bus_events):
    rpc("add_product_feature", product, {"code": "Steel", "name": "Steel design"})
    added = rpc("add_product_feature", product, {"code": "dynamic", "name": "Dynamic analysis"})
    assert [f["code"] for f in added["features"]] == ["dynamic", "steel"]
    rpc.error("feature_exists", "add_product_feature", product, {"code": "STEEL", "name": "S"})
    license = rpc(
        "issue_license",
        {"customer_id": company, "product": product, "seats": 2, "features": ["steel", "dynamic"]},
    )
    license_id = license["license_id"]
    assert [f["code"] for f in license["features"]] == ["dynamic", "steel"]
    password = rpc("get_license", license_id, company)["activation_password"]
    online = rpc("activate", payload(license_id, password))["certificate"]
    offline = rpc("activate_offline", company, license_id, request_file(license_id, product))
    assert claims_of(online)["features"] == ["dynamic", "steel"]
    assert claims_of(offline["certificate"])["features"] == ["dynamic", "steel"]
    assert rpc("validate", online)["features"] == ["dynamic", "steel"]

    rpc.error("unknown_feature", "change_license_features", license_id, {"add": ["bim"]})
    changed = rpc("change_license_features", license_id, {"remove": ["dynamic"]})
    assert [f["code"] for f in changed["features"]] == ["steel"]
    answer = rpc("validate", offline["certificate"], "n-1")
    assert answer["features"] == ["steel"]
    assert claims_of(answer["signed_answer"])["features"] == ["steel"]
    reissued = rpc("activate", payload(license_id, password))["certificate"]
    assert claims_of(reissued)["features"] == ["steel"]
    [event] = bus_events.wait_for("license_features_changed")
    assert event["license_id"] == license_id and event["removed"] == ["dynamic"]
    assert event["features"] == [{"code": "steel", "name": "Steel design"}]
    assert rpc("list_licenses", company)[0]["features"] == event["features"]


def test_a_purchase_grants_its_plans_features(rpc, company, product, bus_events) -> None:
    rpc("add_product_feature", product, {"code": "steel", "name": "Steel design"})
    rpc("add_product_feature", product, {"code": "dynamic", "name": "Dynamic analysis"})
    dispatch = event_dispatcher()
    bought = paid(company, product)
    bought["purchase"]["features"] = ["steel"]
    dispatch("billing", "payment_succeeded", bought)
    receipt = bought["payment"]["receipt_number"]
    bus_events.wait_until(
        lambda events: [e for e in events.of("license_issued") if e["receipt_number"] == receipt]
    )
    license = rpc("license_for_payment", receipt, company)
    assert [f["code"] for f in license["features"]] == ["steel"]
    assert issued_of(bus_events, license["license_id"])

    renewal = paid(company, product, "renewal", license["license_id"])
    renewal["purchase"]["period_end"] = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    renewal["purchase"]["features"] = ["steel", "dynamic"]
    dispatch("billing", "payment_succeeded", renewal)
    [event] = bus_events.wait_for("license_features_changed")
    assert event["added"] == ["dynamic"] and event["license_id"] == license["license_id"]
    detail = rpc("get_license", license["license_id"], company)
    assert [f["code"] for f in detail["features"]] == ["dynamic", "steel"]
