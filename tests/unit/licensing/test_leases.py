"""Floating licenses through worker_factory workers over a migrated SQLite database
(fixtures: conftest.py): issuing one, check-out, heartbeat, check-in, revocation, the lapse
scan, validation, the refusals of each model, and billing's purchases of one."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from services.licensing import domain
from services.licensing.models import Lease
from services.licensing.schemas import LeaseRevokedEvent, SeatsExhaustedEvent
from services.licensing.use_cases.leases import LEASE_ID_DRAWS, LeaseIdsExhausted
from tests.support.offline_kit import claims_of, request_file
from tests.unit.licensing.support import (
    COMPANY,
    COMPANY_PASSWORD,
    OTHER,
    activate,
    issue,
    raises_code,
)
from tests.unit.licensing.test_audit_trail import USER, actions, trail
from tests.unit.licensing.test_payments import paid, receipt


def floating(service, seats: int = 2, **terms: Any) -> tuple[str, str]:
    """Issue a floating license → (its ID, its activation password)."""
    body = {"customer_id": COMPANY, "product": "cadpro", "seats": seats, "model": "floating"}
    license = service.issue_license({**body, **terms})
    password = service.get_license(license["license_id"])["activation_password"]
    return license["license_id"], password


def body(license_id: str, password: str, index: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "license_id": license_id,
        "password": password,
        "installation_id": f"inst-{index}",
        "machine_name": f"PC-{index}",
        **extra,
    }


def history_types(service, license_id: str) -> list[str]:
    return [event["type"] for event in service.history(license_id)["events"]]


# --- issuing ---------------------------------------------------------------------------------


def test_a_floating_license_is_issued_with_its_terms(service) -> None:
    license = service.issue_license(
        {"customer_id": COMPANY, "product": "cadpro", "seats": 5, "model": "floating"}
    )
    assert (license["model"], license["lease_seconds"], license["max_borrow_days"]) == (
        "floating",
        900,
        7,
    )
    node_locked, _ = issue(service)
    shown = service.get_license(node_locked)
    assert (shown["model"], shown["lease_seconds"], shown["max_borrow_days"]) == (
        "node_locked",
        None,
        None,
    )
    assert (shown["leases"], shown["usage"]) == ([], None)


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"lease_seconds": 600}, "lease_seconds"),
        ({"model": "node_locked", "max_borrow_days": 3}, "max_borrow_days"),
        ({"model": "floating", "lease_seconds": 59}, "lease_seconds"),
        ({"model": "floating", "lease_seconds": 86_401}, "lease_seconds"),
        ({"model": "floating", "max_borrow_days": 91}, "max_borrow_days"),
        ({"model": "metered"}, "model"),
    ],
)
def test_terms_that_do_not_fit_the_model_name_the_field(service, terms, field) -> None:
    error = raises_code(
        "validation_error",
        service.issue_license,
        {"customer_id": COMPANY, "product": "cadpro", "seats": 5, **terms},
    )
    assert field in error.details["fields"]


# --- check-out -------------------------------------------------------------------------------


def test_check_out_takes_a_seat_and_answers_a_lease_certificate(service, clock) -> None:
    license_id, password = floating(service, lease_seconds=600)
    answer = service.checkout(body(license_id, password))
    lease = answer["lease"]
    assert answer["created"] is True
    assert lease["status"] == "live" and lease["borrowed"] is False
    assert lease["expires_at"] == (clock.now() + timedelta(seconds=600)).isoformat()
    claims = claims_of(answer["certificate"])
    assert claims["lease_id"] == lease["lease_id"]
    assert (claims["model"], claims["borrowed"]) == ("floating", False)
    assert claims["exp"] == int((clock.now() + timedelta(seconds=600)).timestamp())
    assert service.get_license(license_id)["seats_in_use"] == 1
    assert history_types(service, license_id) == ["lease_checked_out"]


def test_only_the_hash_of_the_lease_token_is_stored(service, db) -> None:
    license_id, password = floating(service)
    answer = service.checkout(body(license_id, password))
    token = answer["lease_token"]
    service.heartbeat(answer["lease"]["lease_id"], token)
    service.checkin(answer["lease"]["lease_id"], token)
    with db.transaction() as session:
        [stored] = session.scalars(select(Lease.token_hash))
        assert stored == hashlib.sha256(token.encode()).hexdigest()
        tables = inspect(session.connection()).get_table_names()
        assert {"leases", "history", "audit_events", "event_outbox"} <= set(tables)
        holding = [
            (table, row)
            for table in tables
            for row in session.execute(text(f'SELECT * FROM "{table}"'))
            if any(token in str(value) for value in row)
        ]
    assert holding == []


class Draws:
    """A stand-in for `domain.new_lease_id`: `ids` first (the last one again and again),
    counted; a check-out that draws on and on fails the test instead of hanging it."""

    def __init__(self, *ids: str) -> None:
        self.ids, self.count = list(ids), 0

    def __call__(self) -> str:
        self.count += 1
        if self.count > 50:
            raise AssertionError("lease IDs drawn without end")
        return self.ids.pop(0) if len(self.ids) > 1 else self.ids[0]


def test_a_taken_lease_id_is_drawn_again_a_few_times_then_fails(service, monkeypatch) -> None:
    license_id, password = floating(service, seats=5)
    taken = service.checkout(body(license_id, password))["lease"]["lease_id"]
    draws = Draws(taken, taken, "LS-2222-2222")
    monkeypatch.setattr(domain, "new_lease_id", draws)
    assert service.checkout(body(license_id, password, 2))["lease"]["lease_id"] == "LS-2222-2222"
    assert draws.count == 3
    draws = Draws(taken)
    monkeypatch.setattr(domain, "new_lease_id", draws)
    with pytest.raises(LeaseIdsExhausted):
        service.checkout(body(license_id, password, 3))
    assert draws.count == LEASE_ID_DRAWS == 5
    assert len(service.list_leases(license_id, COMPANY)) == 2


def test_a_conflict_on_another_unique_key_is_an_error_not_a_new_draw(service, monkeypatch) -> None:
    """Only the lease ID is drawn again: a token hash (or a live installation) already
    taken is a bug to surface, not a conflict to wait out under the license row lock."""
    license_id, password = floating(service, seats=5)
    monkeypatch.setattr(domain, "new_lease_token", lambda: "the-same-token")
    service.checkout(body(license_id, password))
    draws = Draws("LS-3333-3333")
    monkeypatch.setattr(domain, "new_lease_id", draws)
    with pytest.raises(IntegrityError):
        service.checkout(body(license_id, password, 2))
    assert draws.count == 1
    assert len(service.list_leases(license_id, COMPANY)) == 1


def test_the_company_password_checks_out_too_and_a_wrong_one_does_not(service, auth) -> None:
    license_id, _ = floating(service)
    assert service.checkout(body(license_id, COMPANY_PASSWORD))["created"] is True
    assert auth.checks == [COMPANY]
    raises_code("invalid_credentials", service.checkout, body(license_id, "wrong", 2))
    raises_code("invalid_credentials", service.checkout, body("L-2222-2222", "wrong", 2))


def test_no_seat_names_who_holds_them_and_tells_once_a_day(service, clock, events) -> None:
    license_id, password = floating(service, seats=1)
    held = service.checkout(body(license_id, password))["lease"]
    for index in (2, 3):
        refused = raises_code(
            "no_seats_available", service.checkout, body(license_id, password, index)
        )
    assert refused.details == {
        "license_id": license_id,
        "seats": 1,
        "machines": [{"machine_name": "PC-1", "expires_at": held["expires_at"], "borrowed": False}],
    }
    [told] = events.of("seats_exhausted")
    SeatsExhaustedEvent().load({**told, "event_id": "e", "occurred_at": clock.now().isoformat()})
    assert told["machines"] == refused.details["machines"]
    assert history_types(service, license_id) == [
        "lease_refused",
        "lease_refused",
        "lease_checked_out",
    ]
    assert service.history(license_id)["events"][0]["reason"] == "no_seats_available"


def test_a_lease_never_outlives_its_license(service, clock) -> None:
    end = clock.now() + timedelta(minutes=5)
    license_id, password = floating(service, lease_seconds=900, expires_at=end.isoformat())
    lease = service.checkout(body(license_id, password))["lease"]
    assert lease["expires_at"] == end.isoformat()
    clock.advance(minutes=5)
    raises_code("license_expired", service.checkout, body(license_id, password, 2))
    assert history_types(service, license_id)[0] == "lease_refused"


def test_a_suspended_license_refuses_check_out_and_heartbeat_leaves_the_lease(service) -> None:
    license_id, password = floating(service)
    answer = service.checkout(body(license_id, password))
    service.suspend_license(license_id, "Disputed.")
    raises_code("license_suspended", service.checkout, body(license_id, password, 2))
    lease_id = answer["lease"]["lease_id"]
    raises_code("license_suspended", service.heartbeat, lease_id, answer["lease_token"])
    assert service.validate(answer["certificate"])["code"] == "SUSPENDED"
    service.resume_license(license_id)
    assert service.heartbeat(lease_id, answer["lease_token"])["lease"]["status"] == "live"


def test_each_model_refuses_the_others_calls(service) -> None:
    license_id, password = floating(service)
    raises_code("floating_license", service.activate, body(license_id, password))
    raises_code(
        "floating_license",
        service.activate_offline,
        COMPANY,
        license_id,
        request_file(license_id, "cadpro"),
    )
    node_locked, node_password = issue(service)
    raises_code("node_locked_license", service.checkout, body(node_locked, node_password))
    activate(service, node_locked, node_password)  # still activates
    assert service.get_license(license_id)["installations"] == []


def test_another_products_kit_checks_out_no_lease(service) -> None:
    license_id, password = floating(service, seats=1)
    refused = raises_code(
        "wrong_product", service.checkout, body(license_id, password, product="femsolver")
    )
    assert refused.details == {
        "license_id": license_id,
        "product": "cadpro",
        "requested": "femsolver",
    }
    assert service.list_leases(license_id) == []
    [event] = service.history(license_id)["events"]
    assert (event["type"], event["reason"]) == ("lease_refused", "wrong_product")
    # before the model too: a node-locked license of another product says wrong_product
    node_locked, node_password = issue(service)
    raises_code(
        "wrong_product", service.checkout, body(node_locked, node_password, product="femsolver")
    )
    answer = service.checkout(body(license_id, password, product="CADPRO"))
    assert answer["created"] is True


def test_borrowing(service, clock) -> None:
    license_id, password = floating(service, max_borrow_days=3)
    until = clock.now() + timedelta(days=3)
    answer = service.checkout(body(license_id, password, borrow_until=until.isoformat()))
    assert answer["lease"]["borrowed"] is True
    assert answer["lease"]["borrowed_until"] == until.isoformat()
    assert claims_of(answer["certificate"])["borrowed"] is True
    too_far = (until + timedelta(seconds=1)).isoformat()
    refused = raises_code(
        "borrow_not_allowed", service.checkout, body(license_id, password, 2, borrow_until=too_far)
    )
    assert refused.details == {"max_borrow_days": 3, "latest": until.isoformat()}
    raises_code(
        "validation_error",
        service.checkout,
        body(license_id, password, 2, borrow_until=clock.now().isoformat()),
    )
    clock.advance(days=2)  # no heartbeat needed
    assert service.validate(answer["certificate"])["code"] == "VALID"


# --- heartbeat, check-in ---------------------------------------------------------------------


def test_heartbeat_extends_one_period_and_writes_no_history(service, clock) -> None:
    license_id, password = floating(service, lease_seconds=600)
    answer = service.checkout(body(license_id, password))
    lease_id, token = answer["lease"]["lease_id"], answer["lease_token"]
    clock.advance(seconds=500)
    beat = service.heartbeat(lease_id.lower(), token)
    assert beat["lease"]["expires_at"] == (clock.now() + timedelta(seconds=600)).isoformat()
    assert beat["lease"]["last_heartbeat_at"] == clock.now().isoformat()
    assert claims_of(beat["certificate"])["exp"] == int(
        (clock.now() + timedelta(seconds=600)).timestamp()
    )
    assert history_types(service, license_id) == ["lease_checked_out"]
    raises_code("invalid_lease_token", service.heartbeat, lease_id, token + "x")
    raises_code("invalid_lease_token", service.heartbeat, "LS-2222-2222", token)
    raises_code("validation_error", service.heartbeat, lease_id, None)
    clock.advance(seconds=600)
    gone = raises_code("lease_expired", service.heartbeat, lease_id, token)
    assert gone.details == {
        "lease_id": lease_id,
        "reason": "expired",
        "ended_at": beat["lease"]["expires_at"],
    }


def test_check_in_frees_the_seat_at_once(service, clock) -> None:
    license_id, password = floating(service, seats=1)
    answer = service.checkout(body(license_id, password))
    lease_id, token = answer["lease"]["lease_id"], answer["lease_token"]
    ended = service.checkin(lease_id, token)
    assert (ended["status"], ended["ended_at"]) == ("checked_in", clock.now().isoformat())
    assert service.checkin(lease_id, token) == ended
    raises_code("invalid_lease_token", service.checkin, lease_id, "nope")
    assert service.checkout(body(license_id, password, 2))["created"] is True
    assert service.validate(answer["certificate"])["code"] == "LEASE_EXPIRED"
    gone = raises_code("lease_expired", service.heartbeat, lease_id, token)
    assert gone.details["reason"] == "checked_in"


def test_the_same_installation_gets_its_lease_back(service, clock) -> None:
    license_id, password = floating(service, seats=1, lease_seconds=600)
    first = service.checkout(body(license_id, password))
    clock.advance(seconds=300)
    again = service.checkout(body(license_id, password))
    assert again["created"] is False
    assert again["lease"]["lease_id"] == first["lease"]["lease_id"]
    assert again["lease"]["expires_at"] == (clock.now() + timedelta(seconds=600)).isoformat()
    raises_code(
        "invalid_lease_token", service.heartbeat, first["lease"]["lease_id"], first["lease_token"]
    )
    assert history_types(service, license_id) == ["lease_checked_out"]


# --- the portal and staff --------------------------------------------------------------------


def test_a_user_revokes_a_lease(service, db, events, actor_context) -> None:
    license_id, password = floating(service)
    answer = service.checkout(body(license_id, password))
    lease_id = answer["lease"]["lease_id"]
    raises_code("license_not_found", service.revoke_lease, OTHER, license_id, lease_id)
    raises_code("lease_not_found", service.revoke_lease, COMPANY, license_id, "LS-2222-2222")
    actor_context["actor"] = USER
    revoked = service.revoke_lease(COMPANY, license_id, lease_id.lower())
    assert revoked["status"] == "revoked"
    assert service.revoke_lease(COMPANY, license_id, lease_id) == revoked
    gone = raises_code("lease_expired", service.heartbeat, lease_id, answer["lease_token"])
    assert gone.details["reason"] == "revoked"
    [event] = events.of("lease_revoked")
    LeaseRevokedEvent().load({**event, "event_id": "e", "occurred_at": revoked["ended_at"]})
    assert event["revoked_by"]["user_id"] == USER["user_id"]
    assert actions(db).count("lease_revoked") == 1
    [fact] = [item for item in trail(db) if item["action"] == "lease_revoked"]
    assert fact["details"]["lease_id"] == lease_id
    [row] = [e for e in service.history(license_id)["events"] if e["type"] == "lease_revoked"]
    assert (row["source"], row["actor"]["type"]) == ("portal", "user")


def test_list_leases_live_then_ended(service, clock) -> None:
    license_id, password = floating(service, seats=3, lease_seconds=60)
    leases = [service.checkout(body(license_id, password, index)) for index in range(3)]
    clock.advance(seconds=30)
    service.checkin(leases[1]["lease"]["lease_id"], leases[1]["lease_token"])
    live = service.list_leases(license_id, COMPANY)
    assert [item["machine_name"] for item in live] == ["PC-0", "PC-2"]
    every = service.list_leases(license_id, COMPANY, include_ended=True)
    assert [item["status"] for item in every] == ["live", "live", "checked_in"]
    raises_code("license_not_found", service.list_leases, license_id, OTHER)


def test_the_scan_records_each_lapse_once_and_keeps_the_peak(service, clock, db) -> None:
    license_id, password = floating(service, seats=3, lease_seconds=60)
    for index in range(3):
        service.checkout(body(license_id, password, index))
    clock.advance(seconds=61)
    assert service.scan_leases() == {"expired": 3}
    assert service.scan_leases() == {"expired": 0}
    assert history_types(service, license_id)[:3] == ["lease_expired"] * 3
    assert actions(db).count("lease_expired") == 3
    usage = service.get_license(license_id)["usage"]
    assert usage == {"peak_30d": 3, "days": [{"date": clock.now().date().isoformat(), "peak": 3}]}


def test_the_scan_records_todays_use_of_leases_that_carried_over(service, clock) -> None:
    license_id, password = floating(service, seats=3, max_borrow_days=5)
    until = (clock.now() + timedelta(days=3)).isoformat()
    service.checkout(body(license_id, password, borrow_until=until))
    clock.advance(days=1)
    service.scan_leases()
    days = service.get_license(license_id)["usage"]["days"]
    assert [day["date"] for day in days] == [
        (clock.now() - timedelta(days=1)).date().isoformat(),
        clock.now().date().isoformat(),
    ]


# --- billing ---------------------------------------------------------------------------------


def test_a_floating_purchase_issues_a_floating_license_and_a_renewal_keeps_it(
    service, clock
) -> None:
    event = paid(clock.now() + timedelta(days=30))
    event["purchase"].update(model="floating", lease_seconds=300, max_borrow_days=2)
    service.on_payment_succeeded(event)
    license = service.license_for_payment(receipt(event), COMPANY)
    assert (license["model"], license["lease_seconds"], license["max_borrow_days"]) == (
        "floating",
        300,
        2,
    )
    renewal = paid(clock.now() + timedelta(days=60), "renewal", license["license_id"])
    service.on_payment_succeeded(renewal)
    renewed = service.license_for_payment(receipt(renewal), COMPANY)
    assert (renewed["model"], renewed["lease_seconds"]) == ("floating", 300)
    plain = paid(clock.now() + timedelta(days=30))
    plain["purchase"].update(model=None, lease_seconds=None)
    service.on_payment_succeeded(plain)
    assert service.license_for_payment(receipt(plain), COMPANY)["model"] == "node_locked"
