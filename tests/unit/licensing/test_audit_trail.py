"""Licensing's part of the audit trail: who did what to which license, written with the
change, once, and read back page by page (fixtures: conftest.py).

`actor_context` is the worker's context data: `actor_context["actor"] = USER` acts as the
gateway does for a signed-in portal user; empty, the use case's default actor acts.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from common import audit
from common.audit import encode_cursor
from services.licensing.models import AuditEvent, HandledRequest
from services.licensing.use_cases import licenses
from tests.unit.licensing.support import COMPANY, OTHER, activate, issue, raises_code
from tests.unit.licensing.test_payments import paid, receipt

USER = {"type": "user", "user_id": "U-AAAA-BBBB", "email": "ada@acme.test"}
OTHER_USER = {"type": "user", "user_id": "U-CCCC-DDDD", "email": "bob@acme.test"}


def trail(db, customer_id: str = COMPANY) -> list[dict[str, Any]]:
    """The company's stored audit rows, oldest first, as `common.audit.view` shows them."""
    with db.transaction() as session:
        rows = session.execute(
            select(AuditEvent.__table__)
            .where(AuditEvent.customer_id == customer_id)
            .order_by(AuditEvent.id)
        ).all()
        return [audit.view(row._mapping) for row in rows]


def actions(db, customer_id: str = COMPANY) -> list[str]:
    return [event["action"] for event in trail(db, customer_id)]


# --- the activation password --------------------------------------------------------------


def test_a_user_shown_the_password_is_in_the_trail_and_others_are_not(
    service, db, actor_context
) -> None:
    license_id, password = issue(service)  # staff (no actor): no trace of the read
    assert actions(db) == ["license_issued"]

    actor_context["actor"] = USER
    shown = service.get_license(license_id.lower(), COMPANY)
    assert shown["activation_password"] == password and shown["installations"] == []
    assert "sealed_password" not in shown
    [_, viewed] = trail(db)
    assert viewed["action"] == "activation_password_viewed"
    assert viewed["actor"] == USER
    assert viewed["target"] == {"type": "license", "id": license_id}
    assert password not in json.dumps(viewed)

    hidden = service.get_license(license_id, COMPANY, reveal_password=False)
    assert hidden["activation_password"] is None
    assert {k: v for k, v in hidden.items() if k != "activation_password"} == {
        k: v for k, v in shown.items() if k != "activation_password"
    }
    assert actions(db) == ["license_issued", "activation_password_viewed"]

    actor_context["actor"] = {"type": "system"}
    assert service.get_license(license_id)["activation_password"] == password
    assert len(trail(db)) == 2


def test_reveal_password_must_be_a_boolean(service, actor_context) -> None:
    license_id, _ = issue(service)
    actor_context["actor"] = USER
    raises_code("validation_error", service.get_license, license_id, COMPANY, "no")


def test_a_redelivered_view_is_recorded_once_and_the_ledger_never_holds_the_password(
    service, db, request_key, actor_context
) -> None:
    license_id, password = issue(service)
    actor_context["actor"] = USER
    request_key.key = "view-1"
    first = service.get_license(license_id, COMPANY)
    again = service.get_license(license_id, COMPANY)
    assert again == first and first["activation_password"] == password
    assert actions(db).count("activation_password_viewed") == 1
    with db.transaction() as session:
        [answer] = session.scalars(
            select(HandledRequest.answer).where(HandledRequest.operation == "licensing.get_license")
        ).all()
    assert password not in answer
    request_key.key = "view-2"  # another request: another view
    service.get_license(license_id, COMPANY)
    assert actions(db).count("activation_password_viewed") == 2


def test_another_companys_license_is_not_found_and_not_recorded(service, db, actor_context) -> None:
    license_id, _ = issue(service, customer=OTHER)
    actor_context["actor"] = USER
    raises_code("license_not_found", service.get_license, license_id, COMPANY)
    assert actions(db, COMPANY) == [] and actions(db, OTHER) == ["license_issued"]


def test_a_rotation_names_who_rotated_once(service, db, request_key, actor_context) -> None:
    license_id, old = issue(service)
    actor_context["actor"] = USER
    request_key.key = "rotate-1"
    shown = service.rotate_activation_password(license_id, COMPANY)
    assert service.rotate_activation_password(license_id, COMPANY) == shown
    [rotated] = [e for e in trail(db) if e["action"] == "activation_password_rotated"]
    assert rotated["actor"] == USER and rotated["details"] == {}
    dumped = json.dumps(trail(db))
    assert shown["activation_password"] not in dumped and old not in dumped


# --- installations and history -----------------------------------------------------------


def test_activations_are_the_products_and_deactivations_name_who_freed_the_seat(
    service, db, actor_context
) -> None:
    license_id, password = issue(service, seats=1)
    activate(service, license_id, password, "inst-1", "PC-1")
    activate(service, license_id, password, "inst-1", "PC-1")  # again: no new seat
    raises_code("no_seats_available", activate, service, license_id, password, "inst-2")
    assert actions(db) == ["license_issued", "installation_activated"]
    [activated] = trail(db)[1:]
    assert activated["actor"] == {"type": "product"}
    assert activated["details"] == {"installation_id": "inst-1", "machine_name": "PC-1"}

    actor_context["actor"] = USER
    service.deactivate_installation(COMPANY, license_id, "inst-1", "portal")
    service.deactivate_installation(COMPANY, license_id, "inst-1", "portal")  # unchanged
    assert actions(db)[-1:] == ["installation_deactivated"] and len(trail(db)) == 3
    deactivated = trail(db)[-1]
    assert deactivated["actor"] == USER
    assert deactivated["details"] == {
        "installation_id": "inst-1",
        "machine_name": "PC-1",
        "source": "portal",
    }

    history = service.history(license_id, COMPANY)["events"]
    assert [(e["type"], e["actor"]) for e in history] == [
        ("deactivated", USER),
        ("activation_refused", {"type": "product"}),
        ("reactivated", {"type": "product"}),
        ("activated", {"type": "product"}),
    ]


def test_a_seat_freed_without_a_named_actor_is_what_its_source_says(
    service, db, actor_context
) -> None:
    license_id, password = issue(service, seats=3)
    for number in (1, 2, 3):
        activate(service, license_id, password, f"inst-{number}")
    service.deactivate_installation(None, license_id, "inst-1", "staff")
    service.deactivate_installation(COMPANY, license_id, "inst-2", "portal")
    actor_context["actor"] = {"type": "staff"}  # an administrator's client saying staff
    service.deactivate_installation(COMPANY, license_id, "inst-3", "portal")
    freed = [e["actor"] for e in trail(db) if e["action"] == "installation_deactivated"]
    assert freed == [{"type": "staff"}, {"type": "user"}, {"type": "staff"}]
    history = service.history(license_id, COMPANY)["events"]
    assert [e["actor"] for e in history[:3]] == [
        {"type": "staff"},
        {"type": "user"},
        {"type": "staff"},
    ]


def test_the_gateway_cannot_act_as_staff(service, db, actor_context) -> None:
    license_id, password = issue(service)
    activate(service, license_id, password)
    actor_context["actor"] = {"type": "staff", "name": "mallory"}
    actor_context["bus_user"] = "portal-gateway"
    service.deactivate_installation(COMPANY, license_id, "inst-1", "portal")
    assert trail(db)[-1]["actor"] == {"type": "user"}


def test_the_product_deactivating_its_seat_is_recorded_once(service, db) -> None:
    license_id, password = issue(service)
    activate(service, license_id, password)
    body = {"license_id": license_id, "password": password, "installation_id": "inst-1"}
    service.deactivate(body)
    service.deactivate(body)
    [freed] = [e for e in trail(db) if e["action"] == "installation_deactivated"]
    assert freed["actor"] == {"type": "product"} and freed["details"]["source"] == "product"
    [event] = service.history(license_id, COMPANY)["events"][:1]
    assert (event["type"], event["actor"]) == ("deactivated", {"type": "product"})


# --- staff's changes and payments ----------------------------------------------------------


def test_staff_changes_are_in_the_trail_once_each(service, db, request_key, actor_context) -> None:
    actor_context["actor"] = {"type": "staff", "name": "ops@vendor.test"}
    license_id, _ = issue(service, expires_at="2027-01-31")
    request_key.key = "suspend-1"
    service.suspend_license(license_id, "Payment disputed")
    service.suspend_license(license_id, "Payment disputed")  # redelivered
    request_key.key = None  # from here on: requests without a key
    service.suspend_license(license_id, "Payment disputed")  # suspended already: no change
    service.suspend_license(license_id, "Call us")  # a new reason
    service.resume_license(license_id)
    service.resume_license(license_id)  # not suspended: nothing
    service.extend_license(license_id, "2028-01-31")
    events = trail(db)
    assert [e["action"] for e in events] == [
        "license_issued",
        "license_suspended",
        "license_suspended",
        "license_resumed",
        "license_extended",
    ]
    assert {json.dumps(e["actor"]) for e in events} == {
        json.dumps({"type": "staff", "name": "ops@vendor.test"})
    }
    assert events[0]["details"] == {
        "product": "cadpro",
        "seats": 2,
        "expires_at": "2027-01-31T23:59:59+00:00",
        "features": [],
    }
    assert events[1]["details"] == {"reason": "Payment disputed"}
    assert events[2]["details"] == {"reason": "Call us", "already_suspended": True}
    assert events[4]["details"] == {
        "previous_expires_at": "2027-01-31T23:59:59+00:00",
        "expires_at": "2028-01-31T23:59:59+00:00",
    }


def test_a_paid_purchase_and_renewal_are_the_systems_doing(service, db, clock) -> None:
    new = paid(clock.now() + timedelta(days=30))
    service.on_payment_succeeded(new)
    service.on_payment_succeeded(new)  # redelivered
    [issued] = trail(db)
    assert issued["action"] == "license_issued" and issued["actor"] == {"type": "system"}
    assert issued["details"]["receipt_number"] == receipt(new)
    license_id = issued["target"]["id"]
    renewal = paid(clock.now() + timedelta(days=60), kind="renewal", license_id=license_id)
    service.on_payment_succeeded(renewal)
    [_, extended] = trail(db)
    assert extended["action"] == "license_extended"
    assert extended["details"]["receipt_number"] == receipt(renewal)


# --- one transaction --------------------------------------------------------------------------


def test_no_change_is_committed_without_its_audit_row(service, db, events, monkeypatch) -> None:
    license_id, password = issue(service)
    published = len(events)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the audit insert failed")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(RuntimeError):
        service.rotate_activation_password(license_id, COMPANY)
    with pytest.raises(RuntimeError):
        activate(service, license_id, password)
    monkeypatch.undo()
    # nothing of either change was committed: the old password, no seat, no event
    assert service.get_license(license_id)["activation_password"] == password
    assert service.get_license(license_id)["seats_in_use"] == 0
    assert service.history(license_id)["events"] == []
    assert len(events) == published and actions(db) == ["license_issued"]


def test_no_audit_row_is_committed_without_its_change(service, db, monkeypatch) -> None:
    license_id, password = issue(service)

    def failing_after_the_fact(*args: Any, **kwargs: Any):
        outcome = real(*args, **kwargs)
        raise RuntimeError(f"failed after stating {len(outcome.audit)} fact")

    real = licenses.rotate_activation_password
    monkeypatch.setattr(licenses, "rotate_activation_password", failing_after_the_fact)
    with pytest.raises(RuntimeError):
        service.rotate_activation_password(license_id, COMPANY)
    assert actions(db) == ["license_issued"]
    assert service.get_license(license_id)["activation_password"] == password


# --- reading the trail -------------------------------------------------------------------------


@pytest.fixture
def busy_license(service, clock, actor_context) -> str:
    """Ten views by two users, a minute apart, after the license was issued."""
    license_id, _ = issue(service)
    for number in range(10):
        clock.advance(minutes=1)
        actor_context["actor"] = USER if number % 2 == 0 else OTHER_USER
        service.get_license(license_id, COMPANY)
    actor_context.clear()
    return license_id


def test_pages_follow_each_other_with_before(service, busy_license) -> None:
    seen: list[dict[str, Any]] = []
    before = None
    while True:
        page = service.list_audit_events(COMPANY, {"limit": 4, "before": before})
        seen.extend(page)
        if len(page) < 4:
            break
        before = encode_cursor(datetime.fromisoformat(page[-1]["at"]), page[-1]["event_id"])
    assert len(seen) == 11 and len({e["event_id"] for e in seen}) == 11
    times = [e["at"] for e in seen]
    assert times == sorted(times, reverse=True)
    assert seen[-1]["action"] == "license_issued"


def test_filters_by_user_action_and_time(service, busy_license, clock) -> None:
    mine = service.list_audit_events(COMPANY, {"user_id": "U-AAAA-BBBB"})
    assert len(mine) == 5 and {e["actor"]["email"] for e in mine} == {"ada@acme.test"}
    issued = service.list_audit_events(COMPANY, {"action": "license_issued"})
    assert [e["target"]["id"] for e in issued] == [busy_license]
    start = clock.now() - timedelta(minutes=3)
    recent = service.list_audit_events(COMPANY, {"since": start.isoformat()})
    assert len(recent) == 4
    window = service.list_audit_events(
        COMPANY,
        {"since": start.isoformat(), "until": (start + timedelta(minutes=2)).isoformat()},
    )
    assert len(window) == 2
    assert service.list_audit_events(OTHER, {}) == []
    assert len(service.list_audit_events(COMPANY.lower())) == 11


def test_a_bad_query_names_its_field(service) -> None:
    error = raises_code(
        "validation_error",
        service.list_audit_events,
        COMPANY,
        {"limit": 0, "action": "dance", "before": "garbage!", "since": "yesterday"},
    )
    assert set(error.details["fields"]) >= {"limit", "action", "before", "since"}
    raises_code("validation_error", service.list_audit_events, "not a customer")


def test_history_rows_without_an_actor_read_as_their_source_implies(service, db) -> None:
    license_id, _ = issue(service)
    with db.transaction() as session:
        for number, source in enumerate(["product", "portal", "staff", "expiry"]):
            session.execute(
                text(
                    "INSERT INTO history (license_pk, type, at, installation_id, source)"
                    " SELECT id, 'deactivated', :at, :inst, :source FROM licenses"
                    " WHERE license_id = :license_id"
                ),
                {
                    "at": f"2026-01-0{number + 1} 00:00:00",
                    "inst": f"i-{number}",
                    "source": source,
                    "license_id": license_id,
                },
            )
    history = service.history(license_id, COMPANY)["events"]
    assert [(e["source"], e["actor"]) for e in history] == [
        ("expiry", {"type": "system"}),
        ("staff", {"type": "staff"}),
        ("portal", {"type": "user"}),
        ("product", {"type": "product"}),
    ]
