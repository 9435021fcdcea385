"""`check_password_token` through AuthService workers: a reset, set-up or invitation link is
judged before its form is filled in, and never used up by being judged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from services.auth import domain
from services.auth.models import PasswordToken
from tests.unit.auth.test_service import (
    NEW_PASSWORD,
    PASSWORD,
    _request_token,
    company_payload,
    link_token,
    login,
    raises_code,
    unique_email,
)
from tests.unit.auth.test_users import BOB_PASSWORD, accept_token, invite, new_company


def reason(service, token) -> str:
    error = raises_code("invalid_token", service.check_password_token, token)
    assert set(error.details) == {"reason"}, error.details
    return error.details["reason"]


def used_at(db, token: str):
    with db.transaction() as session:
        return session.scalar(
            select(PasswordToken.used_at).where(
                PasswordToken.token_hash == domain.hash_token(token)
            )
        )


def test_a_reset_link_is_valid_and_checking_it_uses_nothing(service, events, db) -> None:
    email = unique_email()
    service.create_company(company_payload(email, password=PASSWORD))
    token = _request_token(service, events, email)
    for _ in range(3):
        assert service.check_password_token(token) == {
            "valid": True,
            "purpose": "reset",
            "email": email,
            "company_name": "Acme Engineering",
        }
    assert used_at(db, token) is None
    # the link still sets the password afterwards, once
    service.confirm_password_reset({"token": token, "new_password": NEW_PASSWORD})
    assert login(service, email, NEW_PASSWORD)["token"]
    assert reason(service, token) == "used"


def test_a_new_companys_welcome_link_is_a_setup(service, events) -> None:
    email = unique_email()
    service.create_company(company_payload(email, password=None))
    [event] = events.of("company_created")
    token = link_token(service, event["request_id"])
    answer = service.check_password_token(token)
    assert answer["purpose"] == "setup" and answer["email"] == email


def test_an_invitation_link_is_an_invite_of_the_invited_user(service, events) -> None:
    company = new_company(service)
    user = invite(service, company["customer_id"])
    token = accept_token(service, events, user["email"])
    assert service.check_password_token(token) == {
        "valid": True,
        "purpose": "invite",
        "email": user["email"],
        "company_name": "Acme Engineering",
    }
    service.accept_invitation({"token": token, "password": BOB_PASSWORD})
    assert reason(service, token) == "used"


def test_an_expired_link_says_expired(service, events, clock) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    token = _request_token(service, events, email)
    clock.advance(domain.RESET_LIFETIME)
    assert reason(service, token) == "expired"


def test_a_link_replaced_by_a_password_set_since_says_used(service, events) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    first = _request_token(service, events, email)
    second = _request_token(service, events, email)
    service.confirm_password_reset({"token": second, "new_password": NEW_PASSWORD})
    assert reason(service, first) == "used"


def test_unknown_tokens_say_unknown_whatever_their_shape(service) -> None:
    for token in ("0" * 43, "", None, 42, ["x"], "x" * 500, "a\x00b"):
        assert reason(service, token) == "unknown"


def test_a_disabled_users_link_says_unknown(service, events) -> None:
    company = new_company(service)
    user = invite(service, company["customer_id"])
    token = accept_token(service, events, user["email"])
    service.disable_user(company["customer_id"], user["user_id"])
    assert reason(service, token) == "unknown"


def test_token_problem() -> None:
    at = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    assert domain.token_problem(None, at, at - timedelta(seconds=1)) is None
    assert domain.token_problem(None, at, at) == domain.TOKEN_EXPIRED
    assert domain.token_problem(at, at, at + timedelta(days=1)) == domain.TOKEN_USED
