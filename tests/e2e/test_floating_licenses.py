"""Floating licenses end to end over HTTP (design §13), the running suite behind the gateway.

Thirty clients race for five seats: exactly five leases, and 25 refusals that name who holds
the seats. A check-in frees its seat at once; a heartbeat needs the lease's own token; a
license admin revokes a lease in the portal and its next heartbeat is 410, while a viewer
may not revoke at all. Each model refuses the other's routes; borrowing has its limit; the
license answers list the live leases and the peak use; a lease certificate validates VALID
while the lease lives and LEASE_EXPIRED once it is checked in, naming its lease and the
lease's end in the plain answer and the signed one alike.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
import requests
from eventlet.greenpool import GreenPool

from tests.support.floating import (
    checked_out,
    checkin,
    checkout,
    checkout_body,
    heartbeat,
    in_days,
    issue_floating_license,
    new_product,
)
from tests.support.offline_kit import claims_of, issue_license, request_text
from tests.support.team import PASSWORD, new_company, new_team

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def team(suite, api, smtp_sink):
    """A company with an owner, a license admin, a billing user and a viewer."""
    return new_team(suite, api, smtp_sink)


@pytest.fixture(scope="module")
def product(suite) -> str:
    return new_product(suite, "float")


@pytest.fixture
def floating(suite, team, product):
    def issue(seats: int = 5, lease_seconds: int = 60, max_borrow_days: int = 7) -> dict:
        return issue_floating_license(
            suite, team.company["customer_id"], product, seats, lease_seconds, max_borrow_days
        )

    return issue


def error_of(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


def detail(api, team, license_id: str, role: str = "owner") -> dict:
    response = api.get(f"/api/v1/licenses/{license_id}", token=team.token(role))
    assert response.status_code == 200, response.text
    return response.json()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- seats --------------------------------------------------------------------------------


def test_thirty_clients_race_for_five_seats_and_a_check_in_frees_one_at_once(
    suite, api, team, floating
):
    license = floating(seats=5)

    def race(index: int) -> tuple[int, dict]:
        body = checkout_body(license, f"race-{index}-{uuid.uuid4().hex[:8]}", f"Racer {index}")
        with requests.Session() as http:  # a client of its own: its own connection
            answer = http.post(suite.url + "/api/v1/leases", json=body, timeout=30)
        return answer.status_code, answer.json()

    results = list(GreenPool(30).imap(race, range(30)))
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 5, statuses
    assert statuses.count(409) == 25, statuses
    winners = [body for status, body in results if status == 201]
    holders = {body["lease"]["machine_name"] for body in winners}
    assert len({body["lease"]["lease_id"] for body in winners}) == 5
    for status, body in results:
        if status != 409:
            continue
        assert body["error"]["code"] == "no_seats_available", body
        details = body["error"]["details"]
        assert details["seats"] == 5 and details["license_id"] == license["license_id"]
        machines = details["machines"]
        # who holds the seats, until when: the five winners
        assert {machine["machine_name"] for machine in machines} == holders, machines
        assert all(machine["expires_at"] and machine["borrowed"] is False for machine in machines)

    shown = detail(api, team, license["license_id"])
    assert shown["seats_in_use"] == 5
    assert {lease["machine_name"] for lease in shown["leases"]} == holders

    # one machine checks in: its seat is free at once, another client gets it
    leaving = winners[0]
    lease_id = leaving["lease"]["lease_id"]
    assert checkin(api, lease_id, leaving["lease_token"]).status_code == 204
    assert detail(api, team, license["license_id"])["seats_in_use"] == 4
    late = checkout(api, license, machine_name="Late comer")
    assert late.status_code == 201, late.text
    error_of(checkout(api, license, machine_name="One too many"), 409, "no_seats_available")
    # checking in again changes nothing and is no error; the ended lease's heartbeat is 410
    assert checkin(api, lease_id, leaving["lease_token"]).status_code == 204
    gone = error_of(heartbeat(api, lease_id, leaving["lease_token"]), 410, "lease_expired")
    assert gone["details"]["reason"] == "checked_in"


def test_the_same_installation_gets_its_lease_back_with_a_new_token(api, floating):
    license = floating(seats=1)
    first = checked_out(api, license, installation_id="ws-same", machine_name="CAD-WS-07")
    again = checkout(api, license, installation_id="ws-same", machine_name="CAD-WS-07")
    assert again.status_code == 200, again.text
    body = again.json()
    assert set(body) == {"lease", "lease_token", "certificate"}
    assert body["lease"]["lease_id"] == first["lease"]["lease_id"]
    assert body["lease_token"] != first["lease_token"]
    # only the newest token holds the lease
    lease_id = body["lease"]["lease_id"]
    error_of(heartbeat(api, lease_id, first["lease_token"]), 401, "invalid_lease_token")
    assert heartbeat(api, lease_id, body["lease_token"]).status_code == 200


# --- heartbeats -----------------------------------------------------------------------------


def test_a_heartbeat_extends_the_lease_and_needs_its_own_token(api, floating):
    license = floating(seats=2, lease_seconds=60)
    mine = checked_out(api, license, machine_name="CAD-WS-01")
    other = checked_out(api, license, machine_name="CAD-WS-02")
    lease = mine["lease"]
    assert set(lease) >= {
        "lease_id", "license_id", "installation_id", "machine_name", "expires_at", "borrowed",
    }  # fmt: skip
    assert lease["borrowed"] is False and lease["license_id"] == license["license_id"]
    claims = claims_of(mine["certificate"])
    assert claims["lease_id"] == lease["lease_id"] and claims["model"] == "floating"
    assert claims["exp"] == int(when(lease["expires_at"]).timestamp())

    beat = heartbeat(api, lease["lease_id"], mine["lease_token"])
    assert beat.status_code == 200, beat.text
    renewed = beat.json()
    assert set(renewed) == {"lease", "certificate"}
    assert when(renewed["lease"]["expires_at"]) >= when(lease["expires_at"])
    assert renewed["lease"]["last_heartbeat_at"]
    assert claims_of(renewed["certificate"])["exp"] == int(
        when(renewed["lease"]["expires_at"]).timestamp()
    )

    # no token, another lease's token, a made-up one, an unknown lease: all the same 401
    for lease_id, token in (
        (lease["lease_id"], None),
        (lease["lease_id"], other["lease_token"]),
        (lease["lease_id"], "x" * 43),
        ("LS-NONE-0000", mine["lease_token"]),
    ):
        error_of(heartbeat(api, lease_id, token), 401, "invalid_lease_token")
    refused = api.delete(
        f"/api/v1/leases/{lease['lease_id']}", headers={"Authorization": "Bearer wrong"}
    )
    error_of(refused, 401, "invalid_lease_token")
    # a lease ID in any case is the lease
    lower = heartbeat(api, lease["lease_id"].lower(), mine["lease_token"])
    assert lower.status_code == 200, lower.text


# --- the portal: revocation by role ---------------------------------------------------------


def test_a_license_admin_revokes_a_lease_and_its_next_heartbeat_is_410(api, team, floating):
    license = floating(seats=2)
    license_id = license["license_id"]
    taken = checked_out(api, license, machine_name="CAD-WS-LOST")
    lease_id = taken["lease"]["lease_id"]
    path = f"/api/v1/licenses/{license_id}/leases/{lease_id}/revoke"

    for role in ("viewer", "billing"):
        refused = error_of(api.post(path, token=team.token(role)), 403, "forbidden")
        assert refused["details"]["required_roles"] == ["owner", "license_admin"]
    assert heartbeat(api, lease_id, taken["lease_token"]).status_code == 200  # still live

    listed = api.get(f"/api/v1/licenses/{license_id}/leases", token=team.token("viewer"))
    assert listed.status_code == 200, listed.text
    assert [lease["lease_id"] for lease in listed.json()["leases"]] == [lease_id]

    revoked = api.post(path, token=team.token("license_admin"))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["ended_at"]
    gone = error_of(heartbeat(api, lease_id, taken["lease_token"]), 410, "lease_expired")
    assert gone["details"]["reason"] == "revoked" and gone["details"]["lease_id"] == lease_id
    after = api.get(f"/api/v1/licenses/{license_id}/leases", token=team.token("owner"))
    assert after.json()["leases"] == []
    assert detail(api, team, license_id)["seats_in_use"] == 0
    # again: unchanged, no error; an unknown lease is 404
    assert api.post(path, token=team.token("owner")).json()["status"] == "revoked"
    unknown = api.post(
        f"/api/v1/licenses/{license_id}/leases/LS-NONE-0000/revoke", token=team.token("owner")
    )
    error_of(unknown, 404, "lease_not_found")


def test_another_company_cannot_see_or_revoke_the_leases(suite, api, floating):
    license = floating(seats=1)
    taken = checked_out(api, license)
    company = new_company(suite)
    stranger = api.login(company["contact_email"], PASSWORD)
    base = f"/api/v1/licenses/{license['license_id']}"
    error_of(api.get(base + "/leases", token=stranger), 404, "license_not_found")
    revoke = f"{base}/leases/{taken['lease']['lease_id']}/revoke"
    error_of(api.post(revoke, token=stranger), 404, "license_not_found")
    assert heartbeat(api, taken["lease"]["lease_id"], taken["lease_token"]).status_code == 200


# --- the models refuse each other's routes --------------------------------------------------


def test_activations_on_floating_and_leases_on_node_locked_licenses_are_409(
    suite, api, team, product, floating
):
    license = floating(seats=2)
    activation = {
        "license_id": license["license_id"],
        "password": license["activation_password"],
        "installation_id": "ws-activate",
        "machine_name": "CAD-WS-01",
    }
    refused = error_of(api.post("/api/v1/activations", json=activation), 409, "floating_license")
    assert "/api/v1/leases" in refused["message"]
    upload = api.post(
        f"/api/v1/licenses/{license['license_id']}/offline-activations",
        token=team.token("license_admin"),
        json={"request": request_text(license["license_id"], "ws-air", product)},
    )
    error_of(upload, 409, "floating_license")
    assert detail(api, team, license["license_id"])["seats_in_use"] == 0

    node_locked = issue_license(suite, team.company["customer_id"], product, 2, None)
    assert node_locked["model"] == "node_locked"
    refused = error_of(checkout(api, node_locked), 409, "node_locked_license")
    assert "/api/v1/activations" in refused["message"]
    shown = detail(api, team, node_locked["license_id"])
    assert shown["leases"] == [] and shown["usage"] is None
    assert shown["lease_seconds"] is None and shown["max_borrow_days"] is None


# --- borrowing --------------------------------------------------------------------------------


def test_borrowing_within_the_limit_and_beyond_it(api, floating):
    license = floating(seats=3, max_borrow_days=2)
    beyond = error_of(checkout(api, license, borrow_until=in_days(5)), 422, "borrow_not_allowed")
    assert beyond["details"]["max_borrow_days"] == 2
    assert when(beyond["details"]["latest"]) <= when(in_days(2.01))

    borrowed = checked_out(api, license, machine_name="Laptop", borrow_until=in_days(1))
    lease = borrowed["lease"]
    assert lease["borrowed"] is True and lease["borrowed_until"]
    assert when(lease["expires_at"]) >= when(in_days(0.99))
    assert claims_of(borrowed["certificate"])["borrowed"] is True

    # a plain day borrows until the end of that day, UTC (tomorrow's end is < 2 days away)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    by_day = checked_out(api, license, machine_name="Laptop-2", borrow_until=tomorrow.isoformat())
    end_of_day = datetime.combine(tomorrow, time(23, 59, 59), tzinfo=UTC)
    assert by_day["lease"]["borrowed"] is True
    assert when(by_day["lease"]["expires_at"]) == end_of_day

    never = floating(seats=1, max_borrow_days=0)
    refused = error_of(checkout(api, never, borrow_until=in_days(1)), 422, "borrow_not_allowed")
    assert refused["details"]["max_borrow_days"] == 0
    # a borrow_until of neither form (a day, a date-time with an offset) is the gateway's 422
    for wrong in ("tomorrow", "2026-12-09T18:00:00", "09.12.2026"):
        bad = error_of(checkout(api, license, borrow_until=wrong), 422, "validation_error")
        assert "borrow_until" in bad["details"]["fields"], (wrong, bad)


# --- license answers and validation ---------------------------------------------------------


def test_the_license_answers_list_the_leases_and_the_peak_use(api, team, floating):
    license = floating(seats=4, lease_seconds=120, max_borrow_days=3)
    license_id = license["license_id"]
    first = checked_out(api, license, machine_name="CAD-WS-A")
    second = checked_out(api, license, machine_name="CAD-WS-B")
    checked_out(api, license, machine_name="CAD-WS-C")
    assert checkin(api, second["lease"]["lease_id"], second["lease_token"]).status_code == 204

    listed = api.get("/api/v1/licenses", token=team.token("viewer")).json()["licenses"]
    (row,) = [item for item in listed if item["license_id"] == license_id]
    assert (row["model"], row["lease_seconds"], row["max_borrow_days"]) == ("floating", 120, 3)
    assert (row["seats"], row["seats_in_use"]) == (4, 2)

    shown = detail(api, team, license_id, "viewer")
    assert shown["model"] == "floating" and shown["seats_in_use"] == 2
    # the live ones, oldest first
    assert [lease["machine_name"] for lease in shown["leases"]] == ["CAD-WS-A", "CAD-WS-C"]
    assert shown["leases"][0]["lease_id"] == first["lease"]["lease_id"]
    assert all(lease["status"] == "live" for lease in shown["leases"])
    usage = shown["usage"]
    assert usage["peak_30d"] == 3
    assert usage["days"][-1]["peak"] == 3
    assert usage["days"][-1]["date"] == first["lease"]["started_at"][:10]
    # the seat-holders' history
    history = api.get(f"/api/v1/licenses/{license_id}/history", token=team.token("owner"))
    types = [event["type"] for event in history.json()["events"]]
    assert types.count("lease_checked_out") == 3 and types.count("lease_checked_in") == 1


def validated(api, certificate: str) -> dict:
    """The validation of `certificate`, asserting that its plain answer and its
    `signed_answer` agree (a field absent from the signed one is null in the plain one)."""
    response = api.post(
        "/api/v1/validations", json={"certificate": certificate, "nonce": uuid.uuid4().hex}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    signed = claims_of(answer["signed_answer"])
    plain = {key: value for key, value in answer.items() if key != "signed_answer"}
    assert plain == {key: signed.get(key) for key in plain}, (plain, signed)
    return answer


def test_a_lease_certificate_is_valid_while_the_lease_lives(suite, api, team, product, floating):
    license = floating(seats=1)
    taken = checked_out(api, license)
    lease = taken["lease"]
    valid = validated(api, taken["certificate"])
    assert (valid["valid"], valid["code"]) == (True, "VALID")
    # the lease's own end beside the license's
    assert valid["lease_id"] == lease["lease_id"]
    assert when(valid["lease_expires_at"]) == when(lease["expires_at"])
    assert checkin(api, lease["lease_id"], taken["lease_token"]).status_code == 204
    ended = validated(api, taken["certificate"])
    assert (ended["valid"], ended["code"]) == (False, "LEASE_EXPIRED")
    assert ended["lease_id"] == lease["lease_id"] and ended["lease_expires_at"]

    # an activation certificate has no lease: null here, absent from the signed answer
    node_locked = issue_license(suite, team.company["customer_id"], product, 1, None)
    activation = api.post(
        "/api/v1/activations",
        json={
            "license_id": node_locked["license_id"],
            "password": node_locked["activation_password"],
            "installation_id": "ws-node-locked",
            "machine_name": "CAD-WS-02",
        },
    )
    assert activation.status_code == 201, activation.text
    plain = validated(api, activation.json()["certificate"])
    assert (plain["valid"], plain["code"]) == (True, "VALID")
    assert plain["lease_id"] is None and plain["lease_expires_at"] is None
    signed = claims_of(plain["signed_answer"])
    assert signed.get("lease_id") is None and signed.get("lease_expires_at") is None


def test_demo_again_takes_the_lapsed_workstation_lease_again(suite):
    """The demo's office workstation holds a 15-minute lease; once it has lapsed (here:
    revoked), `portalctl demo` again takes it again, so the portal still shows both kinds."""
    seeded = suite.portalctl("demo")["licensing"]["licenses"]
    [demo] = [item for item in seeded if item["model"] == "floating"]
    held = suite.portalctl("license", "leases", demo["license_id"])
    [workstation] = [lease for lease in held if lease["machine_name"] == "CAD-WS-03"]
    suite.portalctl("license", "revoke-lease", demo["license_id"], workstation["lease_id"])
    assert len(suite.portalctl("license", "leases", demo["license_id"])) == len(held) - 1
    again = suite.portalctl("demo")["licensing"]["licenses"]
    [renewed] = [item for item in again if item["model"] == "floating"]
    assert renewed["seats_in_use"] == len(held)
    machines = {
        lease["machine_name"] for lease in suite.portalctl("license", "leases", demo["license_id"])
    }
    assert machines == {lease["machine_name"] for lease in held}
