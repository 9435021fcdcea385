"""`check_password_token` over the real bus and PostgreSQL: a link is judged before its form
is filled in (valid, used, expired, unknown), and judging it never uses it up.

The container's clock is a `FixedClock` at the real time, which a test moves to expire a link.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text

from services.auth import domain
from tests.integration.auth.conftest import Rpc
from tests.integration.auth.test_auth_rpc import (
    NEW_PASSWORD,
    link_token,
    login,
    new_company,
    unique_email,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def reason(rpc: Rpc, token) -> str:
    error = rpc.error("invalid_token", "check_password_token", token)
    assert set(error.details) == {"reason"}, error.to_dict()
    return error.details["reason"]


def used_at(config, token: str):
    engine = create_engine(config["AUTH_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT used_at FROM password_tokens WHERE token_hash = :h"),
                {"h": domain.hash_token(token)},
            ).scalar_one()
    finally:
        engine.dispose()


def test_a_reset_link_is_checked_without_being_used(rpc, bus_events, config) -> None:
    email = unique_email()
    company = new_company(rpc, email)
    rpc.auth("request_password_reset", {"login": email})
    [requested] = bus_events.wait_for("password_reset_requested")
    token = link_token(rpc, requested, config["PORTAL_URL"])
    for _ in range(2):
        assert rpc.auth("check_password_token", token) == {
            "valid": True,
            "purpose": "reset",
            "email": email,
            "company_name": company["name"],
        }
    assert used_at(config, token) is None
    rpc.auth("confirm_password_reset", {"token": token, "new_password": NEW_PASSWORD})
    assert login(rpc, email, NEW_PASSWORD)["token"]
    assert reason(rpc, token) == "used"


def test_a_welcome_link_is_a_setup_and_expires(rpc, bus_events, config, clock) -> None:
    email = unique_email()
    new_company(rpc, email, password=None)
    [created] = bus_events.wait_for("company_created")
    token = link_token(rpc, created, config["PORTAL_URL"])
    assert rpc.auth("check_password_token", token)["purpose"] == "setup"
    clock.advance(domain.SETUP_LIFETIME)
    assert reason(rpc, token) == "expired"


def test_an_invitation_link_is_an_invite(rpc, bus_events, config) -> None:
    company = new_company(rpc)
    email = unique_email()
    rpc.auth(
        "invite_user",
        company["customer_id"],
        {"email": email, "name": "Bob", "role": "viewer"},
    )
    [invited] = bus_events.wait_for("user_invited")
    url = rpc.auth("password_link", invited["request_id"])["url"]
    token = url.split("#token=", 1)[1]
    answer = rpc.auth("check_password_token", token)
    assert answer == {
        "valid": True,
        "purpose": "invite",
        "email": email,
        "company_name": company["name"],
    }


def test_unknown_tokens_say_nothing_more(rpc) -> None:
    for token in (uuid.uuid4().hex, "", None, 7, "x" * 1000):
        assert reason(rpc, token) == "unknown"
