"""A redelivered request changes nothing twice (common/idempotency.py through the service).

`request_key.key` plays the request key nameko's context carries: the same key again is the
same request delivered again (fixtures: conftest.py).
"""

from __future__ import annotations

from sqlalchemy import select

from services.licensing.models import HandledRequest
from tests.unit.licensing.support import COMPANY, OTHER, activate, issue, raises_code


def handled(db) -> list[HandledRequest]:
    with db.transaction() as session:
        return list(session.scalars(select(HandledRequest).order_by(HandledRequest.id)))


def test_a_redelivered_rotation_answers_the_password_the_user_was_shown(
    service, request_key, db
) -> None:
    license_id, old = issue(service)
    request_key.key = "rotate-1"
    shown = service.rotate_activation_password(license_id, COMPANY)
    again = service.rotate_activation_password(license_id.lower(), f" {COMPANY.lower()}")
    assert again == shown and shown["activation_password"] != old
    assert service.get_license(license_id)["activation_password"] == shown["activation_password"]
    activate(service, license_id, shown["activation_password"])
    raises_code("invalid_credentials", activate, service, license_id, old, "inst-2")
    # the ledger keeps the password as the license does (encrypted), never in plain text
    [row] = handled(db)
    assert (row.scope, row.operation) == (COMPANY, "licensing.rotate_activation_password")
    assert shown["activation_password"] not in row.answer
    request_key.key = "rotate-2"  # another request: another password
    newer = service.rotate_activation_password(license_id, COMPANY)["activation_password"]
    assert newer != shown["activation_password"]


def test_a_redelivered_issue_issues_one_license(service, request_key, events) -> None:
    request_key.key = "issue-1"
    payload = {"customer_id": COMPANY, "product": "cadpro", "seats": 3}
    first = service.issue_license(payload)
    again = service.issue_license({**payload, "customer_id": COMPANY.lower(), "product": "CADPRO"})
    assert again == first
    assert len(service.list_licenses(COMPANY)) == 1
    assert len(events.of("license_issued")) == 1


def test_the_same_key_with_another_body_is_refused(service, request_key) -> None:
    request_key.key = "issue-2"
    service.issue_license({"customer_id": COMPANY, "product": "cadpro", "seats": 3})
    error = raises_code(
        "idempotency_key_reused",
        service.issue_license,
        {"customer_id": COMPANY, "product": "cadpro", "seats": 4},
    )
    assert error.details["operation"] == "licensing.issue_license"
    assert len(service.list_licenses(COMPANY)) == 1


def test_keys_are_per_company_and_per_operation(service, request_key, events) -> None:
    mine, _ = issue(service)
    theirs, _ = issue(service, customer=OTHER)
    request_key.key = "same-key"
    mine_rotated = service.rotate_activation_password(mine, COMPANY)
    theirs_rotated = service.rotate_activation_password(theirs, OTHER)
    assert theirs_rotated["license_id"] == theirs != mine_rotated["license_id"]
    suspended = service.suspend_license(mine, "why")  # the same key, another operation
    assert suspended["status"] == "suspended"
    assert service.suspend_license(mine, "why") == suspended
    assert len(events.of("license_suspended")) == 1


def test_every_staff_change_is_made_once(service, request_key, events, clock) -> None:
    license_id, password = issue(service, expires_at="2027-01-31")
    activate(service, license_id, password)
    calls = [
        (service.create_product, ({"code": "viewer", "name": "Viewer"},)),
        (service.archive_product, ("viewer",)),
        (service.unarchive_product, ("viewer",)),
        (service.extend_license, (license_id, "2027-12-31")),
        (service.suspend_license, (license_id, "why")),
        (service.resume_license, (license_id,)),
        (service.deactivate_installation, (None, license_id, "inst-1", "staff")),
    ]
    for index, (call, args) in enumerate(calls):
        request_key.key = f"staff-{index}"
        first = call(*args)
        clock.advance(seconds=1)
        assert call(*args) == first, call.__name__
    assert len(events.of("license_extended")) == 1
    assert len(events.of("license_suspended")) == len(events.of("license_resumed")) == 1
    assert len(events.of("installation_deactivated")) == 1
    # a redelivered create answers the product instead of `product_exists`
    request_key.key = "staff-0"
    assert service.create_product({"code": "viewer", "name": "Viewer"})["code"] == "viewer"


def test_a_refusal_changes_nothing_and_is_judged_again(service, request_key) -> None:
    license_id, _ = issue(service)  # perpetual
    request_key.key = "extend-1"
    raises_code("license_is_perpetual", service.extend_license, license_id, "2030-01-01")
    raises_code("license_is_perpetual", service.extend_license, license_id, "2030-01-01")
    request_key.key = "extend-2"
    assert service.extend_license(license_id, "2030-01-01", True)["expires_at"].startswith("2030")


def test_without_a_key_nothing_is_kept(service, request_key, db) -> None:
    license_id, _ = issue(service)
    first = service.rotate_activation_password(license_id, COMPANY)
    assert service.rotate_activation_password(license_id, COMPANY) != first
    assert handled(db) == []
