"""The users of a company (issue 13) through AuthService workers: invitations, logins per
user, roles and the last owner, disabling, removal, preferences, notice recipients and the
audit trail."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime

from sqlalchemy import select

from common.audit import decode_cursor, encode_cursor
from common.errors import Conflict, NotFound
from services.auth import domain
from services.auth.models import AuditEvent, Session, User
from services.auth.service import AuthService
from tests.unit.auth.conftest import PORTAL_URL, FakeActor
from tests.unit.auth.test_service import (
    NEW_PASSWORD,
    PASSWORD,
    company_payload,
    login,
    raises_code,
    unique_email,
)

BOB_PASSWORD = "bob's own long secret"
USER_ID = re.compile(r"U-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4}")


def new_company(service: AuthService, password: str | None = PASSWORD) -> dict:
    return service.create_company(company_payload(unique_email(), password=password))


def contact_of(service: AuthService, customer_id: str) -> dict:
    [contact] = [u for u in service.list_users(customer_id)["users"] if u["contact"]]
    return contact


def invite(service: AuthService, customer_id: str, role: str = "license_admin", **fields) -> dict:
    payload = {"email": fields.get("email") or unique_email(), "name": "Bob", "role": role}
    return service.invite_user(customer_id, payload)


def accept_token(service: AuthService, events, email: str) -> str:
    """What notify does for `user_invited`: ask for the link, take the token out of it."""
    [event] = [e for e in events.of("user_invited") if e["user"]["email"] == email][-1:]
    url = service.password_link(event["request_id"])["url"]
    assert url.startswith(PORTAL_URL + "/accept-invitation#token="), url
    return url.split("#token=", 1)[1]


def active_user(service, events, customer_id: str, role: str = "license_admin") -> dict:
    """An invited user who accepted: they log in with `BOB_PASSWORD`."""
    user = invite(service, customer_id, role)
    token = accept_token(service, events, user["email"])
    service.accept_invitation({"token": token, "password": BOB_PASSWORD})
    return user


def audit_rows(db, action: str | None = None) -> list[AuditEvent]:
    with db.transaction() as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            query = query.where(AuditEvent.action == action)
        return list(session.scalars(query))


# --- the contact user -----------------------------------------------------------------------


def test_a_new_company_has_its_contact_as_an_active_owner(service) -> None:
    company = new_company(service)
    [contact] = service.list_users(company["customer_id"])["users"]
    assert USER_ID.fullmatch(contact["user_id"])
    assert contact == {
        "user_id": contact["user_id"],
        "email": company["contact_email"],
        "name": "Ada",
        "role": "owner",
        "status": "active",
        "contact": True,
        "created_at": company["created_at"],
        "last_login_at": None,
        "invitation_expires_at": None,
    }
    session = login(service, company["customer_id"])
    assert session["user"] == {
        "user_id": contact["user_id"],
        "email": company["contact_email"],
        "name": "Ada",
        "role": "owner",
    }
    assert service.authenticate(session["token"])["user"] == session["user"]
    assert contact_of(service, company["customer_id"])["last_login_at"] is not None


def test_a_company_without_password_has_an_invited_contact_until_it_sets_one(
    service, events
) -> None:
    company = new_company(service, password=None)
    contact = contact_of(service, company["customer_id"])
    assert contact["status"] == "invited"
    assert contact["invitation_expires_at"] == events.of("company_created")[0]["expires_at"]
    url = service.password_link(events.of("company_created")[0]["request_id"])["url"]
    service.confirm_password_reset({"token": url.split("#token=")[1], "new_password": PASSWORD})
    assert contact_of(service, company["customer_id"])["status"] == "active"


def test_update_company_keeps_the_contact_users_name_and_email(service) -> None:
    company = new_company(service)
    email = unique_email()
    service.update_company(company["customer_id"], {"contact_email": email, "contact_name": "G"})
    contact = contact_of(service, company["customer_id"])
    assert (contact["email"], contact["name"]) == (email, "G")
    assert login(service, email)["user"]["user_id"] == contact["user_id"]


def test_an_email_belongs_to_one_user_in_the_whole_system(service) -> None:
    first, second = new_company(service), new_company(service)
    bob = invite(service, first["customer_id"])
    # another company's user, and another company's contact
    for email in (bob["email"].upper(), second["contact_email"]):
        payload = {"email": email, "name": "Bob", "role": "viewer"}
        error = raises_code("email_taken", service.invite_user, first["customer_id"], payload)
        assert "email" in error.details["fields"]
    raises_code(
        "email_taken",
        service.update_company,
        second["customer_id"],
        {"contact_email": bob["email"]},
    )
    raises_code("email_taken", service.create_company, company_payload(bob["email"]))
    # the contact's own email again is no change
    same = {"contact_email": second["contact_email"]}
    assert service.update_company(second["customer_id"], same)["contact_email"]


# --- invitations ----------------------------------------------------------------------------


def test_invite_accept_and_log_in_with_the_role(service, events, clock) -> None:
    company = new_company(service)
    user = invite(service, company["customer_id"], "billing")
    assert user["status"] == "invited" and user["contact"] is False
    expires = datetime.fromisoformat(user["invitation_expires_at"])
    assert expires == clock.now() + domain.SETUP_LIFETIME
    [event] = events.of("user_invited")
    assert event["company"] == {"customer_id": company["customer_id"], "name": company["name"]}
    assert event["user"] == {
        "user_id": user["user_id"],
        "email": user["email"],
        "name": "Bob",
        "role": "billing",
    }
    assert event["invited_by"] == "staff" and event["expires_at"] == user["invitation_expires_at"]
    # before accepting: no login, whatever the password
    raises_code("invalid_credentials", login, service, user["email"], BOB_PASSWORD)
    token = accept_token(service, events, user["email"])
    assert service.accept_invitation({"token": token, "password": BOB_PASSWORD}) is None
    session = login(service, user["email"].upper(), BOB_PASSWORD)
    assert session["user"]["role"] == "billing"
    assert session["company"]["customer_id"] == company["customer_id"]
    listed = {u["user_id"]: u for u in service.list_users(company["customer_id"])["users"]}
    assert listed[user["user_id"]]["status"] == "active"
    assert listed[user["user_id"]]["invitation_expires_at"] is None
    # once only
    payload = {"token": token, "password": "another long secret"}
    raises_code("invalid_token", service.accept_invitation, payload)


def test_a_users_password_never_passes_as_the_company_password(service, events) -> None:
    company = new_company(service)
    user = active_user(service, events, company["customer_id"], "owner")
    assert service.verify_company_password(company["customer_id"], BOB_PASSWORD) is False
    assert service.verify_company_password(company["customer_id"], PASSWORD) is True
    # and the company password does not log the user in
    raises_code("invalid_credentials", login, service, user["email"], PASSWORD)


def test_invitation_tokens_and_reset_tokens_do_not_mix(service, events) -> None:
    company = new_company(service)
    user = invite(service, company["customer_id"])
    token = accept_token(service, events, user["email"])
    payload = {"token": token, "new_password": NEW_PASSWORD}
    raises_code("invalid_token", service.confirm_password_reset, payload)
    service.request_password_reset({"login": company["contact_email"]})
    service.resolve_reset_requests()
    reset_url = service.password_link(events.of("password_reset_requested")[0]["request_id"])
    reset_token = reset_url["url"].split("#token=")[1]
    payload = {"token": reset_token, "password": BOB_PASSWORD}
    raises_code("invalid_token", service.accept_invitation, payload)
    # the invitation still works
    service.accept_invitation({"token": token, "password": BOB_PASSWORD})


def test_accepting_checks_the_password_rules_without_using_the_token(service, events) -> None:
    company = new_company(service)
    user = invite(service, company["customer_id"])
    token = accept_token(service, events, user["email"])
    for weak in ("short", user["email"] + "xyz"):
        error = raises_code(
            "weak_password", service.accept_invitation, {"token": token, "password": weak}
        )
        assert error.details["fields"]["password"]
    service.accept_invitation({"token": token, "password": BOB_PASSWORD})


def test_an_invitation_expires_after_seven_days(service, events, clock) -> None:
    company = new_company(service)
    user = invite(service, company["customer_id"])
    token = accept_token(service, events, user["email"])
    clock.advance(domain.SETUP_LIFETIME)
    payload = {"token": token, "password": BOB_PASSWORD}
    raises_code("invalid_token", service.accept_invitation, payload)


def test_resending_voids_the_old_links(service, events) -> None:
    company = new_company(service)
    user = invite(service, company["customer_id"])
    old = accept_token(service, events, user["email"])
    old_request = events.of("user_invited")[0]["request_id"]
    again = service.resend_invitation(company["customer_id"], user["user_id"].lower())
    assert again["user_id"] == user["user_id"]
    assert len(events.of("user_invited")) == 2
    raises_code("invalid_token", service.password_link, old_request)
    raises_code(
        "invalid_token", service.accept_invitation, {"token": old, "password": BOB_PASSWORD}
    )
    new = accept_token(service, events, user["email"])
    service.accept_invitation({"token": new, "password": BOB_PASSWORD})
    error = raises_code(
        "invitation_not_pending", service.resend_invitation, company["customer_id"], user["user_id"]
    )
    assert isinstance(error, Conflict)


def test_revoking_an_invitation_is_removing_the_user(service, events) -> None:
    company = new_company(service)
    user = invite(service, company["customer_id"])
    token = accept_token(service, events, user["email"])
    assert service.remove_user(company["customer_id"], user["user_id"]) is None
    raises_code(
        "invalid_token", service.accept_invitation, {"token": token, "password": BOB_PASSWORD}
    )
    assert len(service.list_users(company["customer_id"])["users"]) == 1
    invite(service, company["customer_id"], email=user["email"])  # the email is free again


# --- logins, passwords and throttling per user ----------------------------------------------


def test_each_user_has_their_own_throttle(service, events) -> None:
    company = new_company(service)
    user = active_user(service, events, company["customer_id"])
    attacker = "203.0.113.66"
    for _ in range(domain.ACCOUNT_FREE_FAILURES):
        raises_code("invalid_credentials", login, service, user["email"], "wrong one 1", attacker)
    raises_code("too_many_attempts", login, service, user["email"], BOB_PASSWORD, attacker)
    # the contact (and the company password at activations) is not slowed by it
    assert login(service, company["customer_id"], PASSWORD, attacker)["token"]
    assert service.verify_company_password(company["customer_id"], PASSWORD, attacker) is True


def test_change_password_is_the_users_own_and_revokes_only_their_sessions(service, events) -> None:
    company = new_company(service)
    user = active_user(service, events, company["customer_id"])
    mine, other = (
        login(service, user["email"], BOB_PASSWORD),
        login(service, user["email"], BOB_PASSWORD),
    )
    owner = login(service, company["customer_id"])
    payload = {"current_password": BOB_PASSWORD, "new_password": NEW_PASSWORD}
    service.change_password(mine["token"], payload)
    raises_code("unauthenticated", service.authenticate, other["token"])
    assert service.authenticate(mine["token"])["user"]["user_id"] == user["user_id"]
    assert service.authenticate(owner["token"])["user"]["role"] == "owner"
    assert login(service, user["email"], NEW_PASSWORD)["token"]
    assert login(service, company["customer_id"], PASSWORD)["token"]  # unchanged
    [event] = events.of("password_changed")
    assert event["user"]["email"] == user["email"]
    assert event["company"]["customer_id"] == company["customer_id"]


def test_a_reset_by_email_resets_that_user(service, events) -> None:
    company = new_company(service)
    user = active_user(service, events, company["customer_id"])
    service.request_password_reset({"login": user["email"]})
    service.resolve_reset_requests()
    [event] = events.of("password_reset_requested")
    assert event["user"]["user_id"] == user["user_id"]
    token = service.password_link(event["request_id"])["url"].split("#token=")[1]
    service.confirm_password_reset({"token": token, "new_password": NEW_PASSWORD})
    assert login(service, user["email"], NEW_PASSWORD)["token"]
    assert login(service, company["customer_id"], PASSWORD)["token"]
    assert events.of("password_changed")[-1]["user"]["user_id"] == user["user_id"]


def test_invited_and_disabled_users_get_no_reset(service, events) -> None:
    company = new_company(service)
    invited = invite(service, company["customer_id"])
    disabled = active_user(service, events, company["customer_id"])
    service.disable_user(company["customer_id"], disabled["user_id"])
    for email in (invited["email"], disabled["email"]):
        service.request_password_reset({"login": email})
    service.resolve_reset_requests()
    assert events.of("password_reset_requested") == []


# --- roles, disabling, removal and the last owner --------------------------------------------


def test_disabling_ends_the_sessions_and_the_logins(service, events, db) -> None:
    company = new_company(service)
    user = active_user(service, events, company["customer_id"])
    session = login(service, user["email"], BOB_PASSWORD)
    disabled = service.disable_user(company["customer_id"], user["user_id"])
    assert disabled["status"] == "disabled"
    raises_code("unauthenticated", service.authenticate, session["token"])
    raises_code("invalid_credentials", login, service, user["email"], BOB_PASSWORD)
    # the owner's trail tells why, the caller heard nothing more than for a wrong password
    assert json.loads(audit_rows(db, "login_failed")[-1].details) == {"reason": "user_disabled"}
    [event] = events.of("user_disabled")
    assert event["user"]["user_id"] == user["user_id"] and event["disabled_by"] == "staff"
    with db.transaction() as s:
        assert s.scalar(select(Session.revoked_at).where(Session.user_pk.is_not(None)).limit(1))
    enabled = service.enable_user(company["customer_id"], user["user_id"])
    assert enabled["status"] == "active"
    assert login(service, user["email"], BOB_PASSWORD)["token"]


def test_a_disabled_users_session_is_refused_even_if_it_was_not_revoked(
    service, events, db
) -> None:
    company = new_company(service)
    user = active_user(service, events, company["customer_id"])
    session = login(service, user["email"], BOB_PASSWORD)
    with db.transaction() as s:  # as if the revocation had been lost
        s.execute(
            User.__table__.update().values(status="disabled").where(User.email == user["email"])
        )
    raises_code("unauthenticated", service.authenticate, session["token"])


def test_a_removed_users_sessions_end(service, events) -> None:
    company = new_company(service)
    user = active_user(service, events, company["customer_id"])
    session = login(service, user["email"], BOB_PASSWORD)
    service.remove_user(company["customer_id"], user["user_id"])
    raises_code("unauthenticated", service.authenticate, session["token"])
    raises_code("invalid_credentials", login, service, user["email"], BOB_PASSWORD)
    raises_code("user_not_found", service.enable_user, company["customer_id"], user["user_id"])


def test_the_contact_is_always_an_owner(service) -> None:
    company = new_company(service)
    contact = contact_of(service, company["customer_id"])
    cid, uid = company["customer_id"], contact["user_id"]
    for call, args in (
        (service.update_user, (cid, uid, {"role": "viewer"})),
        (service.disable_user, (cid, uid)),
        (service.remove_user, (cid, uid)),
    ):
        error = raises_code("contact_is_owner", call, *args)
        assert isinstance(error, Conflict)
    # its name is the company's contact name
    service.update_user(cid, uid, {"name": "Ada L.", "role": "owner"})
    assert service.get_company(cid)["contact_name"] == "Ada L."


def test_the_last_active_owner_cannot_be_demoted_disabled_or_removed(service, events) -> None:
    # a company whose contact has not set a password has no active owner but the one invited
    company = new_company(service, password=None)
    cid = company["customer_id"]
    owner = active_user(service, events, cid, "owner")
    for call, args in (
        (service.update_user, (cid, owner["user_id"], {"role": "billing"})),
        (service.disable_user, (cid, owner["user_id"])),
        (service.remove_user, (cid, owner["user_id"])),
    ):
        error = raises_code("last_owner", call, *args)
        assert isinstance(error, Conflict)
    # with a second active owner, the first may go
    second = active_user(service, events, cid, "owner")
    assert service.update_user(cid, owner["user_id"], {"role": "viewer"})["role"] == "viewer"
    raises_code("last_owner", service.disable_user, cid, second["user_id"])
    # an invited owner is no active owner: removing them takes none away
    invited = invite(service, cid, "owner")
    assert service.remove_user(cid, invited["user_id"]) is None


def test_a_role_change_is_announced_and_turns_off_notices_the_role_may_not_have(
    service, events, actor: FakeActor
) -> None:
    company = new_company(service)
    cid = company["customer_id"]
    user = active_user(service, events, cid, "owner")
    contact = contact_of(service, cid)
    actor.act_as({"user_id": contact["user_id"], "email": contact["email"]})
    changed = service.update_user(cid, user["user_id"], {"role": "billing"})
    assert changed["role"] == "billing"
    [event] = events.of("user_role_changed")
    assert (event["old_role"], event["new_role"]) == ("owner", "billing")
    assert event["changed_by"] == contact["email"]
    prefs = service.get_notification_preferences(cid, user["user_id"])
    assert prefs["available"] == ["receipts", "payment_failed"]
    assert prefs["preferences"] == {
        "installation_activated": False,
        "license_expiring": False,
        "receipts": True,
        "payment_failed": True,
        "seats_exhausted": False,  # an owner's, which billing may not have
    }
    # a name alone is no role change
    service.update_user(cid, user["user_id"], {"name": "Robert"})
    assert len(events.of("user_role_changed")) == 1


def test_another_companys_user_is_not_found(service, events) -> None:
    first, second = new_company(service), new_company(service)
    user = invite(service, first["customer_id"])
    cid = second["customer_id"]
    for call, args in (
        (service.update_user, (cid, user["user_id"], {"name": "X"})),
        (service.disable_user, (cid, user["user_id"])),
        (service.enable_user, (cid, user["user_id"])),
        (service.remove_user, (cid, user["user_id"])),
        (service.resend_invitation, (cid, user["user_id"])),
        (service.get_notification_preferences, (cid, user["user_id"])),
        (service.update_user, (cid, "U-0000-0000", {"name": "X"})),
        (service.disable_user, (cid, None)),
    ):
        error = raises_code("user_not_found", call, *args)
        assert isinstance(error, NotFound)
    raises_code("company_not_found", service.list_users, "C0000000")


def test_invite_and_update_validate_their_payloads(service) -> None:
    cid = new_company(service)["customer_id"]
    for payload in (
        {"email": unique_email(), "name": "Bob", "role": "admin"},
        {"email": "not-an-email", "name": "Bob", "role": "viewer"},
        {"email": unique_email(), "name": " ", "role": "viewer"},
    ):
        raises_code("validation_error", service.invite_user, cid, payload)
    user = invite(service, cid)
    raises_code("validation_error", service.update_user, cid, user["user_id"], {})
    raises_code("validation_error", service.update_user, cid, user["user_id"], {"email": "x@y.z"})


def test_find_user_by_email_or_user_id(service) -> None:
    company = new_company(service)
    user = invite(service, company["customer_id"], "viewer")
    for lookup in (user["email"].upper(), user["user_id"].lower(), f" {user['user_id']} "):
        found = service.find_user(lookup)
        assert found["user_id"] == user["user_id"]
        assert found["customer_id"] == company["customer_id"]
        assert found["invitation_expires_at"] == user["invitation_expires_at"]
    raises_code("user_not_found", service.find_user, "nobody@nowhere.test")
    raises_code("user_not_found", service.find_user, "")


# --- notification preferences and recipients ------------------------------------------------


def test_each_role_starts_with_its_default_notices(service) -> None:
    cid = new_company(service)["customer_id"]
    expected = {
        "owner": {
            "installation_activated",
            "license_expiring",
            "receipts",
            "payment_failed",
            "seats_exhausted",
        },
        "license_admin": {"installation_activated", "license_expiring"},
        "billing": {"receipts", "payment_failed"},
        "viewer": set(),
    }
    for role, on in expected.items():
        user = invite(service, cid, role)
        prefs = service.get_notification_preferences(cid, user["user_id"])["preferences"]
        assert {notice for notice, value in prefs.items() if value} == on, role


def test_preferences_change_partially_and_only_within_the_role(service, db) -> None:
    cid = new_company(service)["customer_id"]
    viewer = invite(service, cid, "viewer")
    answer = service.update_notification_preferences(
        cid, viewer["user_id"], {"preferences": {"license_expiring": True}}
    )
    assert answer["preferences"]["license_expiring"] is True
    assert answer["preferences"]["installation_activated"] is False
    error = raises_code(
        "validation_error",
        service.update_notification_preferences,
        cid,
        viewer["user_id"],
        {"preferences": {"receipts": True, "license_expiring": False}},
    )
    assert list(error.details["fields"]["preferences"]) == ["receipts"]
    prefs = service.get_notification_preferences(cid, viewer["user_id"])["preferences"]
    assert prefs["license_expiring"] is True  # nothing changed
    for bad in ({"preferences": {"spam": True}}, {"preferences": {"receipts": "yes"}}, {}):
        raises_code(
            "validation_error", service.update_notification_preferences, cid, viewer["user_id"], bad
        )
    [row] = audit_rows(db, "notification_preferences_changed")
    assert json.loads(row.details) == {"license_expiring": True}


def test_notice_recipients_are_active_users_of_a_role_with_the_notice_on(service, events) -> None:
    company = new_company(service)
    cid = company["customer_id"]
    contact = contact_of(service, cid)
    admin = active_user(service, events, cid, "license_admin")
    billing = active_user(service, events, cid, "billing")
    invite(service, cid, "license_admin")  # invited: hears nothing yet
    disabled = active_user(service, events, cid, "owner")
    service.disable_user(cid, disabled["user_id"])

    def emails(notice: str) -> list[str]:
        return [r["email"] for r in service.notice_recipients(cid, notice)]

    assert emails("license_expiring") == [contact["email"], admin["email"]]
    assert emails("receipts") == [contact["email"], billing["email"]]
    service.update_notification_preferences(
        cid, contact["user_id"], {"preferences": {"receipts": False}}
    )
    assert emails("receipts") == [billing["email"]]
    # seats all in use: owners by default, a license admin who turns it on
    assert emails("seats_exhausted") == [contact["email"]]
    service.update_notification_preferences(
        cid, admin["user_id"], {"preferences": {"seats_exhausted": True}}
    )
    assert emails("seats_exhausted") == [contact["email"], admin["email"]]
    raises_code(
        "validation_error",
        service.update_notification_preferences,
        cid,
        billing["user_id"],
        {"preferences": {"seats_exhausted": True}},
    )
    assert service.notice_recipients(cid, "payment_failed")[0] == {
        "user_id": contact["user_id"],
        "email": contact["email"],
        "name": "Ada",
    }
    raises_code("validation_error", service.notice_recipients, cid, "password_changed")
    raises_code("company_not_found", service.notice_recipients, "C0000000", "receipts")


# --- the audit trail ------------------------------------------------------------------------


def test_logins_and_passwords_are_audited_with_the_user_as_actor(service, events, db) -> None:
    company = new_company(service)
    user = active_user(service, events, company["customer_id"])
    raises_code("invalid_credentials", login, service, user["email"], "wrong one 1")
    raises_code("invalid_credentials", login, service, unique_email(), "wrong one 1")  # nobody
    session = login(service, user["email"], BOB_PASSWORD)
    service.change_password(
        session["token"], {"current_password": BOB_PASSWORD, "new_password": NEW_PASSWORD}
    )
    rows = audit_rows(db)
    assert [row.action for row in rows] == [
        "user_invited",
        "invitation_accepted",
        "login_failed",
        "login_succeeded",
        "password_changed",
    ]
    for row in rows[1:]:
        assert (row.actor_type, row.actor_user_id, row.actor_email) == (
            "user",
            user["user_id"],
            user["email"],
        )
        assert (row.target_type, row.target_id) == ("user", user["user_id"])
        assert row.customer_id == company["customer_id"]
    assert json.loads(rows[2].details) == {"reason": "wrong_password"}
    assert rows[0].actor_type == "system"  # no actor in the context: the system
    for row in rows:
        assert BOB_PASSWORD not in row.details and NEW_PASSWORD not in row.details


def test_management_is_audited_with_the_acting_user(service, events, db, actor) -> None:
    company = new_company(service)
    cid = company["customer_id"]
    contact = contact_of(service, cid)
    actor.act_as({"user_id": contact["user_id"], "email": contact["email"]})
    user = invite(service, cid, "viewer")
    service.resend_invitation(cid, user["user_id"])
    service.update_user(cid, user["user_id"], {"role": "license_admin"})
    service.disable_user(cid, user["user_id"])
    service.enable_user(cid, user["user_id"])
    service.remove_user(cid, user["user_id"])
    rows = audit_rows(db)
    assert [row.action for row in rows] == [
        "user_invited",
        "invitation_resent",
        "user_role_changed",
        "user_disabled",
        "user_enabled",
        "user_removed",
    ]
    assert {(row.actor_type, row.actor_email) for row in rows} == {("user", contact["email"])}
    assert {row.target_id for row in rows} == {user["user_id"]}
    assert json.loads(rows[0].details) == {"email": user["email"], "role": "viewer"}
    assert json.loads(rows[2].details) == {"old_role": "viewer", "new_role": "license_admin"}
    assert json.loads(rows[-1].details) == {"email": user["email"], "role": "license_admin"}
    assert events.of("user_invited")[0]["invited_by"] == contact["email"]


def test_a_refused_change_writes_no_audit_event(service, events, db) -> None:
    company = new_company(service)
    contact = contact_of(service, company["customer_id"])
    before = len(audit_rows(db))
    raises_code(
        "contact_is_owner", service.disable_user, company["customer_id"], contact["user_id"]
    )
    assert len(audit_rows(db)) == before


def test_list_audit_events_pages_newest_first_with_a_cursor(service, events, clock) -> None:
    company = new_company(service)
    cid = company["customer_id"]
    for _ in range(5):
        login(service, cid)
        clock.advance(seconds=1)
    raises_code("invalid_credentials", login, service, cid, "wrong one 1")
    first = service.list_audit_events(cid, {"limit": 4})
    assert [e["action"] for e in first] == ["login_failed"] + ["login_succeeded"] * 3
    assert first[0]["actor"]["type"] == "user" and first[0]["target"]["type"] == "user"
    times = [e["at"] for e in first]
    assert times == sorted(times, reverse=True)
    last = first[-1]
    cursor = encode_cursor(datetime.fromisoformat(last["at"]), last["event_id"])
    assert decode_cursor(cursor)[1] == last["event_id"]
    second = service.list_audit_events(cid, {"limit": 4, "before": cursor})
    assert [e["action"] for e in second] == ["login_succeeded"] * 2
    assert not {e["event_id"] for e in first} & {e["event_id"] for e in second}
    only = service.list_audit_events(cid, {"action": "login_failed"})
    assert [e["action"] for e in only] == ["login_failed"]
    contact = contact_of(service, cid)
    mine = service.list_audit_events(cid, {"user_id": contact["user_id"].lower()})
    assert len(mine) == 6
    assert service.list_audit_events(new_company(service)["customer_id"], {}) == []
    raises_code("validation_error", service.list_audit_events, cid, {"limit": 0})
    raises_code("validation_error", service.list_audit_events, cid, {"before": "garbage"})


def test_a_redelivered_invitation_invites_once(service, events, request_info) -> None:
    cid = new_company(service)["customer_id"]
    request_info.key, request_info.operation = f"rpc:{uuid.uuid4().hex}", "auth.invite_user"
    payload = {"email": unique_email(), "name": "Bob", "role": "viewer"}
    first = service.invite_user(cid, payload)
    assert service.invite_user(cid, payload) == first
    assert len(events.of("user_invited")) == 1
