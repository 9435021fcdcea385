"""Issue 10 in auth: canonical customer IDs, `get_company` by ID or email, the staff's
`update_company` and `resend_invite`, and the request ledger (a redelivered request changes
nothing twice)."""

from __future__ import annotations

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import func, select

from common.db import Db
from common.rpc import Caller
from services.auth import domain, schemas
from services.auth.models import Company, HandledRequest, LoginFailure
from services.auth.service import AuthService
from tests.unit.auth.conftest import FakeRequest
from tests.unit.auth.test_service import (
    NEW_PASSWORD,
    PASSWORD,
    company_payload,
    link_token,
    login,
    raises_code,
    unique_email,
)


def new_company(service: AuthService, password: str | None = None, email: str | None = None):
    return service.create_company(company_payload(email or unique_email(), password=password))


def count(db: Db, model: type) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


# --- canonical customer IDs and get_company ------------------------------------------------


@pytest.mark.parametrize("variant", [str.lower, str.upper, lambda cid: f"  {cid.lower()} "])
def test_every_method_takes_a_customer_id_in_any_case_with_spaces(service, variant) -> None:
    company = new_company(service, PASSWORD)
    customer_id = company["customer_id"]
    assert service.get_company(variant(customer_id))["customer_id"] == customer_id
    assert login(service, variant(customer_id))["company"]["customer_id"] == customer_id
    assert service.verify_company_password(variant(customer_id), PASSWORD) is True
    renamed = service.update_company(variant(customer_id), {"name": "Renamed"})
    assert (renamed["customer_id"], renamed["name"]) == (customer_id, "Renamed")


def test_get_company_takes_a_contact_email_in_any_case(service) -> None:
    email = unique_email()
    customer_id = new_company(service, email=email)["customer_id"]
    for lookup in (email, email.upper(), f" {email.title()} "):
        assert service.get_company(lookup)["customer_id"] == customer_id


def test_get_company_names_what_it_did_not_find(service) -> None:
    error = raises_code("company_not_found", service.get_company, "c0000000")
    assert error.details == {"customer_id": "C0000000"}
    error = raises_code("company_not_found", service.get_company, "Nobody@Nowhere.test")
    assert error.message == "No company with this contact email."
    assert error.details == {"contact_email": "Nobody@Nowhere.test"}
    # whatever its shape, a lookup that names nothing is not found, never a validation error
    for lookup in ("", "x" * 300, None, 42):
        raises_code("company_not_found", service.get_company, lookup)


# --- update_company --------------------------------------------------------------------------


def test_update_company_changes_the_fields_given(service) -> None:
    company = new_company(service)
    email = unique_email()
    updated = service.update_company(
        company["customer_id"],
        {"name": " Acme Rockets ", "contact_name": "Grace", "contact_email": email.upper()},
    )
    assert updated == {
        **company,
        "name": "Acme Rockets",
        "contact_name": "Grace",
        "contact_email": email,
    }
    assert service.get_company(email)["customer_id"] == company["customer_id"]
    only_name = service.update_company(company["customer_id"], {"contact_name": "Ada"})
    assert (only_name["name"], only_name["contact_name"]) == ("Acme Rockets", "Ada")


def test_update_company_refuses_another_companys_email_in_any_case(service) -> None:
    taken = new_company(service)["contact_email"]
    company = new_company(service)
    error = raises_code(
        "email_taken",
        service.update_company,
        company["customer_id"],
        {"contact_email": taken.upper(), "name": "Not applied"},
    )
    assert "contact_email" in error.details["fields"]
    assert service.get_company(company["customer_id"]) == company
    # its own email, in another case, is no change
    same = service.update_company(
        company["customer_id"], {"contact_email": company["contact_email"].upper()}
    )
    assert same["contact_email"] == company["contact_email"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "_schema"),
        ({"name": "   "}, "name"),
        ({"contact_email": "not-an-email"}, "contact_email"),
        ({"contact_name": "x" * 201}, "contact_name"),
        ({"password": "new one please"}, "password"),
        ({"customer_id": "C1"}, "customer_id"),
    ],
)
def test_update_company_validates_its_payload(service, payload, field) -> None:
    company = new_company(service)
    error = raises_code("validation_error", service.update_company, company["customer_id"], payload)
    assert field in error.details["fields"]


def test_update_company_of_an_unknown_company(service) -> None:
    raises_code("company_not_found", service.update_company, "C0000000", {"name": "X"})
    raises_code("validation_error", service.update_company, "  ", {"name": "X"})


def test_a_new_contact_email_voids_the_links_sent_to_the_old_one(service, events) -> None:
    company = new_company(service)
    [created] = events.of("company_created")
    token = link_token(service, created["request_id"])
    service.update_company(company["customer_id"], {"contact_email": unique_email()})
    raises_code(
        "invalid_token", service.confirm_password_reset, {"token": token, "new_password": PASSWORD}
    )
    # and no new link is made for that request either
    raises_code("invalid_token", service.password_link, created["request_id"])


def test_a_name_change_leaves_the_links_alone(service, events) -> None:
    company = new_company(service)
    [created] = events.of("company_created")
    token = link_token(service, created["request_id"])
    service.update_company(company["customer_id"], {"name": "Acme Two"})
    service.confirm_password_reset({"token": token, "new_password": PASSWORD})
    assert service.get_company(company["customer_id"])["has_password"] is True


# --- resend_invite ---------------------------------------------------------------------------


def test_resend_invite_makes_a_fresh_link_and_voids_the_old_one(service, events, clock) -> None:
    company = new_company(service)
    [created] = events.of("company_created")
    old_token = link_token(service, created["request_id"])
    clock.advance(days=6)
    answer = service.resend_invite(company["customer_id"].lower())
    assert answer == {
        "customer_id": company["customer_id"],
        "contact_email": company["contact_email"],
        "sent": True,
    }
    [invited] = events.of("company_invited")
    assert invited["customer_id"] == company["customer_id"]
    assert invited["contact_email"] == company["contact_email"]
    assert invited["company"]["customer_id"] == company["customer_id"]
    assert invited["request_id"] != created["request_id"]
    assert invited["expires_at"] == (clock.now() + domain.SETUP_LIFETIME).isoformat()
    assert "set_password_url" not in invited  # never a link in an event
    # the old link and its request are dead; the new one works, once
    raises_code("invalid_token", service.password_link, created["request_id"])
    confirm = {"token": old_token, "new_password": PASSWORD}
    raises_code("invalid_token", service.confirm_password_reset, confirm)
    token = link_token(service, invited["request_id"])
    service.confirm_password_reset({"token": token, "new_password": PASSWORD})
    assert login(service, company["contact_email"])["token"]


def test_resend_invite_refuses_a_company_with_a_password(service, events) -> None:
    company = new_company(service, PASSWORD)
    error = raises_code("password_already_set", service.resend_invite, company["customer_id"])
    assert "Forgot password" in error.message
    assert events.of("company_invited") == []
    raises_code("company_not_found", service.resend_invite, "C0000000")
    raises_code("validation_error", service.resend_invite, None)


def test_staff_methods_refuse_other_callers(db, events, clock) -> None:
    gateway = Caller("portal-gateway", "portal-auth")
    service = worker_factory(
        AuthService, db=db, events=events, clock=clock, caller=gateway, request=FakeRequest()
    )
    raises_code("forbidden", service.update_company, "C1234567", {"name": "X"})
    raises_code("forbidden", service.resend_invite, "C1234567")
    staff = Caller("portal-staff", "portal-auth")
    service = worker_factory(
        AuthService, db=db, events=events, clock=clock, caller=staff, request=FakeRequest()
    )
    raises_code("company_not_found", service.resend_invite, "C1234567")


# --- the request ledger ----------------------------------------------------------------------


def redeliver(request_info: FakeRequest, operation: str, key: str = "rpc:7f3a") -> None:
    """From now on every call carries the same request key: a redelivered message."""
    request_info.key, request_info.operation = key, operation


def test_a_redelivered_create_creates_one_company(service, events, db, request_info) -> None:
    redeliver(request_info, "auth.create_company")
    payload = company_payload(unique_email(), password=PASSWORD)
    first = service.create_company(payload)
    assert service.create_company(payload) == first
    assert count(db, Company) == 1 and len(events.of("company_created")) == 1
    error = raises_code(
        "idempotency_key_reused", service.create_company, {**payload, "name": "Other"}
    )
    assert error.details == {"operation": "auth.create_company"}


def test_the_ledger_holds_no_password(service, db, request_info) -> None:
    redeliver(request_info, "auth.create_company")
    service.create_company(company_payload(unique_email(), password=PASSWORD))
    with db.transaction() as session:
        [row] = session.scalars(select(HandledRequest)).all()
        assert PASSWORD not in row.answer and row.scope == "staff"


def test_a_redelivered_resend_sends_one_invitation(service, events, request_info) -> None:
    company, other = new_company(service), new_company(service)
    redeliver(request_info, "auth.resend_invite")
    first = service.resend_invite(company["customer_id"])
    assert service.resend_invite(company["customer_id"]) == first
    [invited] = events.of("company_invited")
    # the link of the one invitation still works: the redelivery voided nothing
    token = link_token(service, invited["request_id"])
    service.confirm_password_reset({"token": token, "new_password": PASSWORD})
    # the same key for another company is the caller's mistake
    raises_code("idempotency_key_reused", service.resend_invite, other["customer_id"])


def test_a_redelivered_update_answers_the_first_answer(service, request_info) -> None:
    company = new_company(service)
    redeliver(request_info, "auth.update_company")
    first = service.update_company(company["customer_id"], {"name": "Acme One"})
    redeliver(request_info, "auth.update_company", key="rpc:other")
    service.update_company(company["customer_id"], {"name": "Acme Two"})
    redeliver(request_info, "auth.update_company")
    assert service.update_company(company["customer_id"], {"name": "Acme One"}) == first
    assert service.get_company(company["customer_id"])["name"] == "Acme Two"
    raises_code(
        "idempotency_key_reused", service.update_company, company["customer_id"], {"name": "X"}
    )


def test_a_redelivered_password_change_changes_it_once(service, events, request_info) -> None:
    email = new_company(service, PASSWORD)["contact_email"]
    token = login(service, email)["token"]
    redeliver(request_info, "auth.change_password")
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert service.change_password(token, change) is None
    # run again, it would be refused: the current password is no longer PASSWORD
    assert service.change_password(token, change) is None
    assert len(events.of("password_changed")) == 1
    assert login(service, email, NEW_PASSWORD)["token"]
    raises_code(
        "idempotency_key_reused",
        service.change_password,
        token,
        {**change, "new_password": "another good passphrase"},
    )


def test_a_redelivered_wrong_password_counts_one_failure(service, db, request_info) -> None:
    email = new_company(service, PASSWORD)["contact_email"]
    token = login(service, email)["token"]
    redeliver(request_info, "auth.change_password")
    change = {"current_password": "wrong password 1", "new_password": NEW_PASSWORD}
    for _ in range(3):
        raises_code("invalid_credentials", service.change_password, token, change)
    assert count(db, LoginFailure) == 1


def test_an_unauthenticated_password_change_records_nothing(service, db, request_info) -> None:
    redeliver(request_info, "auth.change_password")
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    raises_code("unauthenticated", service.change_password, "no-such-token", change)
    assert count(db, HandledRequest) == 0


def test_keys_are_per_company(service, request_info) -> None:
    """Two companies' sessions with one key (a client library's counter, say) do not meet."""
    first, second = (new_company(service, PASSWORD)["contact_email"] for _ in range(2))
    redeliver(request_info, "auth.change_password", key="idem-1")
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    for email in (first, second):
        service.change_password(login(service, email)["token"], change)
        assert login(service, email, NEW_PASSWORD)["token"]


# --- schemas ---------------------------------------------------------------------------------


def test_the_update_schema_keeps_only_what_was_given() -> None:
    assert schemas.UpdateCompany().load({"name": "Acme"}) == {"name": "Acme"}
    assert schemas.UpdateCompany().validate({}) == {
        "_schema": ["Give at least one of: name, contact_name, contact_email."]
    }


def test_a_redelivered_reset_confirmation_answers_as_the_first(service, events, request_info):
    company = new_company(service)
    [created] = events.of("company_created")
    token = link_token(service, created["request_id"])
    redeliver(request_info, "auth.confirm_password_reset")
    confirm = {"token": token, "new_password": PASSWORD}
    assert service.confirm_password_reset(confirm) is None
    # run again, the used token would be invalid_token: the customer would think it failed
    assert service.confirm_password_reset(confirm) is None
    assert len(events.of("password_changed")) == 1
    assert login(service, company["contact_email"])["token"]
    raises_code(
        "idempotency_key_reused",
        service.confirm_password_reset,
        {**confirm, "new_password": NEW_PASSWORD},
    )
    # an unknown token records nothing, whatever the key
    raises_code("invalid_token", service.confirm_password_reset, {**confirm, "token": "nope"})
