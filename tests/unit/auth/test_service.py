"""AuthService workers over a real (SQLite) database, with the event bus faked.

`worker_factory` hands the service a real `common.db.Db` over a migrated SQLite file (the
embedded default), a list that records what would be published, and a `FixedClock` that the
test moves.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from common.db import Db
from common.errors import PortalError
from common.schemas import TOKEN_MAX
from services.auth import domain, use_cases
from services.auth import service as auth_service
from services.auth.models import (
    LoginFailure,
    PasswordRequest,
    PasswordToken,
    ResetRequestAddress,
)
from services.auth.service import AuthService
from tests.unit.auth.conftest import PORTAL_URL

PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple gun 4 ever!"


def unique_email() -> str:
    return f"ada-{uuid.uuid4().hex[:12]}@acme.test"


def company_payload(email: str | None = None, password: str | None = PASSWORD) -> dict:
    payload = {"name": "Acme Engineering", "contact_name": "Ada", "contact_email": email}
    payload["contact_email"] = email or unique_email()
    if password is not None:
        payload["password"] = password
    return payload


def raises_code(code: str, call, *args) -> PortalError:
    with pytest.raises(PortalError) as caught:
        call(*args)
    assert caught.value.code == code, caught.value.to_dict()
    return caught.value


def token_of(url: str) -> str:
    assert url.startswith(PORTAL_URL + "/reset-password#token="), url
    return url.split("#token=", 1)[1]


def login(
    service: AuthService, login_name: str, password: str = PASSWORD, address: str | None = None
) -> dict:
    payload = {"login": login_name, "password": password}
    if address is not None:
        payload["client_address"] = address
    return service.login(payload)


ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"
FREE = domain.ACCOUNT_FREE_FAILURES


def link_token(service: AuthService, request_id: str) -> str:
    """What notify does at send time: ask auth for the link, and take the token out of it."""
    return token_of(service.password_link(request_id)["url"])


# --- creating companies -------------------------------------------------------------------


def test_create_company_with_a_password(service, events) -> None:
    email = unique_email()
    company = service.create_company(company_payload(email.upper()))
    assert re.fullmatch(r"C\d{7}", company["customer_id"])
    assert company["contact_email"] == email
    assert company["has_password"] is True
    [event] = events.of("company_created")
    assert event["company"]["customer_id"] == company["customer_id"]
    assert event["request_id"] is None and "expires_at" not in event
    assert login(service, email)["company"]["customer_id"] == company["customer_id"]


def test_create_company_without_password_sends_a_set_password_link(service, events, clock) -> None:
    email = unique_email()
    company = service.create_company(company_payload(email, password=None))
    assert company["has_password"] is False
    [event] = events.of("company_created")
    assert "set_password_url" not in event  # no link, no token: notify asks at send time
    assert datetime.fromisoformat(event["expires_at"]) == clock.now() + domain.SETUP_LIFETIME
    token = link_token(service, event["request_id"])
    # nobody can log in before the password is set, not even with an empty guess
    raises_code("invalid_credentials", login, service, email, "not-a-real-password-0")
    assert service.confirm_password_reset({"token": token, "new_password": PASSWORD}) is None
    assert service.get_company(company["customer_id"])["has_password"] is True
    assert login(service, email)["token"]


def test_duplicate_email_is_refused_whatever_its_case(service, events) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    error = raises_code("email_taken", service.create_company, company_payload(email.upper()))
    assert "contact_email" in error.details["fields"]
    assert len(events.of("company_created")) == 1
    assert len(service.find_companies(email)) == 1


def test_create_company_with_a_weak_password_names_the_password_field(service, events) -> None:
    error = raises_code("weak_password", service.create_company, company_payload(password="short"))
    assert "password" in error.details["fields"]
    assert events == []


def test_create_company_validates_its_payload(service) -> None:
    error = raises_code(
        "validation_error", service.create_company, {**company_payload(), "role": "admin"}
    )
    assert "role" in error.details["fields"]
    error = raises_code("validation_error", service.create_company, company_payload("not-an-email"))
    assert "contact_email" in error.details["fields"]
    raises_code("validation_error", service.create_company, ["not", "a", "dict"])


def test_find_and_get_companies(service) -> None:
    email = unique_email()
    company = service.create_company(company_payload(email))
    customer_id = company["customer_id"]
    assert [c["customer_id"] for c in service.find_companies(customer_id.lower())] == [customer_id]
    assert [c["customer_id"] for c in service.find_companies(email.upper())] == [customer_id]
    assert service.find_companies("engineer")  # part of the name
    assert service.find_companies("%") == []  # LIKE wildcards are escaped, not honoured
    assert service.find_companies("_") == []
    assert service.get_company(customer_id)["contact_email"] == email
    raises_code("company_not_found", service.get_company, "C0000000")


# --- logging in ---------------------------------------------------------------------------


def test_login_with_customer_id_or_email_in_any_case(service) -> None:
    email = unique_email()
    customer_id = service.create_company(company_payload(email))["customer_id"]
    for login_name in (customer_id, customer_id.lower(), email, email.upper(), f"  {email} "):
        session = login(service, login_name)
        assert session["company"]["customer_id"] == customer_id
        assert service.authenticate(session["token"])["customer_id"] == customer_id


def test_session_token_is_random_and_expires(service, clock) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    first, second = login(service, email), login(service, email)
    assert first["token"] != second["token"]
    assert len(first["token"]) >= 22
    expires = datetime.fromisoformat(first["expires_at"])
    assert expires == clock.now() + domain.SESSION_LIFETIME
    clock.at = expires
    raises_code("unauthenticated", service.authenticate, first["token"])


def test_unknown_login_gets_the_same_answer_as_a_wrong_password(service) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    wrong = raises_code("invalid_credentials", login, service, email, "wrong password 1")
    unknown = raises_code("invalid_credentials", login, service, unique_email(), PASSWORD)
    unknown_id = raises_code("invalid_credentials", login, service, "C0000000", PASSWORD)
    assert wrong.to_dict() == unknown.to_dict() == unknown_id.to_dict()


def test_login_is_slowed_after_five_failures_from_one_address_across_both_login_forms(
    service, clock
) -> None:
    email = unique_email()
    customer_id = service.create_company(company_payload(email))["customer_id"]
    for attempt in range(FREE):
        login_name = email.upper() if attempt % 2 else customer_id.lower()
        raises_code("invalid_credentials", login, service, login_name, f"wrong {attempt}", ATTACKER)
        clock.advance(seconds=1)
    # the right password waits too from that address, by either login form
    error = raises_code("too_many_attempts", login, service, email, PASSWORD, ATTACKER)
    assert error.details["retry_after"] == domain.ACCOUNT_BASE_DELAY.total_seconds() - 1
    raises_code("too_many_attempts", login, service, customer_id, PASSWORD, ATTACKER)
    clock.advance(seconds=error.details["retry_after"])
    assert login(service, email, PASSWORD, ATTACKER)["token"]


def test_each_further_failure_doubles_the_delay_up_to_the_cap(service, clock) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    for _ in range(FREE):
        raises_code("invalid_credentials", login, service, email, "wrong password 1", ATTACKER)
    waits = []
    for _ in range(12):
        error = raises_code("too_many_attempts", login, service, email, PASSWORD, ATTACKER)
        waits.append(error.details["retry_after"])
        clock.advance(seconds=error.details["retry_after"])
        raises_code("invalid_credentials", login, service, email, "wrong password 1", ATTACKER)
    base = domain.ACCOUNT_BASE_DELAY.total_seconds()
    assert waits[:4] == [base, 2 * base, 4 * base, 8 * base]
    assert waits[-1] == domain.MAX_DELAY.total_seconds()


def test_the_owner_logs_in_from_a_clean_address_while_another_hammers_the_account(
    service, clock
) -> None:
    email = unique_email()
    customer_id = service.create_company(company_payload(email))["customer_id"]
    for attempt in range(FREE + 10):
        try:
            login(service, customer_id, f"guess {attempt}", ATTACKER)
        except PortalError as error:
            assert error.code in ("invalid_credentials", "too_many_attempts")
        clock.advance(seconds=1)
    raises_code("too_many_attempts", login, service, customer_id, PASSWORD, ATTACKER)
    assert login(service, email, PASSWORD, OWNER)["token"]
    assert login(service, customer_id, PASSWORD)["token"]  # an unknown address is clean too
    # the owner's login does not lift the attacker's delay
    raises_code("too_many_attempts", login, service, customer_id, PASSWORD, ATTACKER)


def test_an_address_failing_on_many_accounts_is_slowed_on_every_account(
    service, monkeypatch
) -> None:
    monkeypatch.setattr(domain, "ADDRESS_FREE_FAILURES", 12)  # 100 argon2 checks take a while
    email = unique_email()
    service.create_company(company_payload(email))
    for _ in range(domain.ADDRESS_FREE_FAILURES):
        raises_code("invalid_credentials", login, service, unique_email(), PASSWORD, ATTACKER)
    raises_code("too_many_attempts", login, service, email, PASSWORD, ATTACKER)
    assert login(service, email, PASSWORD, OWNER)["token"]


def test_the_addresses_of_one_ipv6_48_count_as_one(service) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    for subnet in range(FREE):  # a new /64 for each guess does not start afresh
        address = f"2001:db8:7:{subnet * 0x3000:x}::{subnet + 1:x}"
        raises_code("invalid_credentials", login, service, email, "wrong password 1", address)
    raises_code("too_many_attempts", login, service, email, PASSWORD, "2001:db8:7:ffff::1")
    assert login(service, email, PASSWORD, "2001:db8:8::1")["token"]


def test_unknown_logins_are_throttled_too(service) -> None:
    email = unique_email()
    for _ in range(FREE):
        raises_code("invalid_credentials", login, service, email, PASSWORD, ATTACKER)
    error = raises_code("too_many_attempts", login, service, email.upper(), PASSWORD, ATTACKER)
    assert error.details["retry_after"] > 0


def test_a_successful_login_clears_the_failures_of_its_address(service) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    for _ in range(FREE - 1):
        raises_code("invalid_credentials", login, service, email, "wrong password 1", OWNER)
    login(service, email, PASSWORD, OWNER)
    for _ in range(FREE - 1):
        raises_code("invalid_credentials", login, service, email, "wrong password 1", OWNER)
    assert login(service, email, PASSWORD, OWNER)["token"]


def test_throttling_one_company_does_not_affect_another(service) -> None:
    victim, other = unique_email(), unique_email()
    service.create_company(company_payload(victim))
    service.create_company(company_payload(other))
    for _ in range(FREE):
        raises_code("invalid_credentials", login, service, victim, "wrong password 1", ATTACKER)
    raises_code("too_many_attempts", login, service, victim, PASSWORD, ATTACKER)
    assert login(service, other, PASSWORD, ATTACKER)["token"]


@pytest.mark.parametrize("address", ["not-an-ip", "1.2.3.4.5", 42, "a" * 46])
def test_a_client_address_that_is_no_ip_address_is_a_validation_error(service, address) -> None:
    payload = {"login": "C1234567", "password": PASSWORD, "client_address": address}
    error = raises_code("validation_error", service.login, payload)
    assert "client_address" in error.details["fields"]
    payload = {"login": "C1234567", "client_address": address}
    raises_code("validation_error", service.request_password_reset, payload)


def test_logout_revokes_only_that_session(service) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    first, second = login(service, email), login(service, email)
    service.logout(first["token"])
    service.logout(first["token"])  # twice is fine
    raises_code("unauthenticated", service.authenticate, first["token"])
    assert service.authenticate(second["token"])["contact_email"] == email
    raises_code("unauthenticated", service.authenticate, "")


def test_verify_company_password(service) -> None:
    customer_id = service.create_company(company_payload())["customer_id"]
    assert service.verify_company_password(customer_id, PASSWORD) is True
    assert service.verify_company_password(customer_id.lower(), PASSWORD) is True
    assert service.verify_company_password(customer_id, "wrong password 1") is False
    assert service.verify_company_password("C0000000", PASSWORD) is False
    assert service.verify_company_password(customer_id, PASSWORD, OWNER) is True


def test_company_password_guesses_at_activations_count_for_logins_too(service, clock) -> None:
    email = unique_email()
    customer_id = service.create_company(company_payload(email))["customer_id"]
    for attempt in range(FREE):
        assert service.verify_company_password(customer_id, f"guess {attempt}", ATTACKER) is False
    # one budget: the attacker's logins wait as well, by either login form
    raises_code("too_many_attempts", login, service, customer_id, PASSWORD, ATTACKER)
    raises_code("too_many_attempts", login, service, email, PASSWORD, ATTACKER)
    error = raises_code(
        "too_many_attempts", service.verify_company_password, customer_id, PASSWORD, ATTACKER
    )
    assert error.details["retry_after"] == domain.ACCOUNT_BASE_DELAY.total_seconds()
    # while the company activates and logs in from its own address
    assert service.verify_company_password(customer_id, PASSWORD, OWNER) is True
    assert login(service, email, PASSWORD, OWNER)["token"]


def test_login_guesses_count_for_the_company_password_at_activations(service) -> None:
    email = unique_email()
    customer_id = service.create_company(company_payload(email))["customer_id"]
    for attempt in range(FREE):
        raises_code("invalid_credentials", login, service, email, f"guess {attempt}", ATTACKER)
    raises_code(
        "too_many_attempts", service.verify_company_password, customer_id, PASSWORD, ATTACKER
    )
    assert service.verify_company_password(customer_id, PASSWORD, OWNER) is True


def test_a_malformed_client_address_argument_counts_as_the_unknown_one(service) -> None:
    customer_id = service.create_company(company_payload())["customer_id"]
    for _ in range(FREE):
        service.verify_company_password(customer_id, "wrong password 1", "not an address")
    raises_code("too_many_attempts", service.verify_company_password, customer_id, PASSWORD)
    assert service.verify_company_password(customer_id, PASSWORD, OWNER) is True


@pytest.mark.parametrize("token", [None, 42, "", "x" * (TOKEN_MAX + 1), "a\x00b"])
def test_a_token_of_any_shape_that_names_no_session_is_unauthenticated(service, token) -> None:
    raises_code("unauthenticated", service.authenticate, token)
    assert service.logout(token) is None
    payload = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    raises_code("unauthenticated", service.change_password, token, payload)


@pytest.mark.parametrize("customer_id", [None, 42, "", "C" * 300, "C1\x00"])
def test_a_customer_id_of_any_shape_that_names_no_company_is_not_found(
    service, customer_id
) -> None:
    raises_code("company_not_found", service.get_company, customer_id)
    assert service.verify_company_password(customer_id, PASSWORD) is False


def test_prune_forgets_only_the_failures_that_left_the_window(service, db, clock) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    raises_code("invalid_credentials", login, service, email, "wrong password 1")
    clock.advance(domain.FAILURE_KEEP, seconds=1)
    raises_code("invalid_credentials", login, service, unique_email(), PASSWORD, ATTACKER)
    service.prune()
    with db.transaction() as session:
        rows = session.execute(select(LoginFailure.at, LoginFailure.address)).all()
    assert rows == [(clock.now(), ATTACKER)]


def test_prune_forgets_requests_and_tokens_a_day_after_they_expired(
    service, events, db, clock
) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    token = _request_token(service, events, email)
    clock.advance(domain.RESET_QUEUE_WINDOW, seconds=1)
    service.request_password_reset({"login": email, "client_address": ATTACKER})
    service.prune()  # the first request's address has left its window, the second's not
    with db.transaction() as session:
        assert session.scalars(select(ResetRequestAddress.address)).all() == [ATTACKER]
    clock.advance(domain.RESET_LIFETIME + domain.REQUEST_KEEP, seconds=1)
    service.prune()
    with db.transaction() as session:
        assert session.scalars(select(PasswordRequest.purpose)).all() == []
        assert session.scalars(select(PasswordToken.id)).all() == []
        assert session.scalars(select(ResetRequestAddress.id)).all() == []
    payload = {"token": token, "new_password": NEW_PASSWORD}
    raises_code("invalid_token", service.confirm_password_reset, payload)


# --- changing the password ----------------------------------------------------------------


def test_change_password_keeps_this_session_and_revokes_the_others(service, events) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    current, other = login(service, email), login(service, email)
    payload = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert service.change_password(current["token"], payload) is None
    assert service.authenticate(current["token"])["contact_email"] == email
    raises_code("unauthenticated", service.authenticate, other["token"])
    raises_code("invalid_credentials", login, service, email, PASSWORD)
    assert login(service, email, NEW_PASSWORD)["token"]
    [event] = events.of("password_changed")
    assert event["how"] == "change"
    assert event["company"]["contact_email"] == email


def test_change_password_needs_the_current_password(service, events) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    session = login(service, email)
    payload = {"current_password": "wrong password 1", "new_password": NEW_PASSWORD}
    raises_code("invalid_credentials", service.change_password, session["token"], payload)
    assert events.of("password_changed") == []
    assert login(service, email)["token"]


def test_wrong_current_passwords_count_toward_the_login_throttle(service) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    session = login(service, email)
    payload = {"current_password": "wrong password 1", "new_password": NEW_PASSWORD}
    for _ in range(FREE):
        raises_code(
            "invalid_credentials",
            service.change_password,
            session["token"],
            {**payload, "client_address": ATTACKER},
        )
    # counted for (company, the caller's address): that address waits, others do not
    raises_code("too_many_attempts", login, service, email, PASSWORD, ATTACKER)
    retry = {**payload, "current_password": PASSWORD, "client_address": ATTACKER}
    raises_code("too_many_attempts", service.change_password, session["token"], retry)
    assert login(service, email, PASSWORD, OWNER)["token"]
    assert login(service, email, PASSWORD)["token"]


def test_wrong_current_passwords_without_an_address_do_not_slow_other_companies(
    service, monkeypatch
) -> None:
    monkeypatch.setattr(domain, "ADDRESS_FREE_FAILURES", 3)  # argon2 checks take a while
    payload = {"current_password": "wrong password 1", "new_password": NEW_PASSWORD}
    for _ in range(domain.ADDRESS_FREE_FAILURES + 1):  # one try each, from many companies
        email = unique_email()
        service.create_company(company_payload(email))
        session = login(service, email)
        raises_code("invalid_credentials", service.change_password, session["token"], payload)
    # no counter is shared by every caller that names no address
    email = unique_email()
    service.create_company(company_payload(email))
    session = login(service, email)
    right = {**payload, "current_password": PASSWORD}
    assert service.change_password(session["token"], right) is None
    assert login(service, email, NEW_PASSWORD)["token"]
    # each company's own (company, unknown) counter still applies
    for _ in range(FREE):
        raises_code("invalid_credentials", service.change_password, session["token"], payload)
    raises_code("too_many_attempts", login, service, email, NEW_PASSWORD)


def test_change_password_validates_the_client_address(service) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    session = login(service, email)
    payload = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    for address in ("not an address", "", "1" * 46):
        body = {**payload, "client_address": address}
        raises_code("validation_error", service.change_password, session["token"], body)
    assert service.change_password(session["token"], {**payload, "client_address": None}) is None


def test_change_password_needs_a_live_session(service) -> None:
    payload = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    raises_code("unauthenticated", service.change_password, "no-such-token", payload)


@pytest.mark.parametrize(
    "weak", ["short", " " + NEW_PASSWORD, "aaaaaaaaaaaaaa", "{customer_id}xyz"]
)
def test_change_password_refuses_weak_passwords_naming_new_password(service, events, weak) -> None:
    email = unique_email()
    customer_id = service.create_company(company_payload(email))["customer_id"]
    session = login(service, email)
    payload = {"current_password": PASSWORD, "new_password": weak.format(customer_id=customer_id)}
    error = raises_code("weak_password", service.change_password, session["token"], payload)
    assert error.details["fields"]["new_password"]
    assert events.of("password_changed") == []
    assert login(service, email)["token"]  # unchanged


# --- resetting the password ---------------------------------------------------------------


def test_reset_request_for_an_unknown_login_emits_nothing_and_answers_the_same(
    service, events, db
) -> None:
    email = unique_email()
    customer_id = service.create_company(company_payload(email))["customer_id"]
    events.clear()
    assert service.request_password_reset({"login": unique_email()}) is None
    assert service.request_password_reset({"login": "C0000000", "client_address": OWNER}) is None
    service.resolve_reset_requests()
    assert events == []
    with db.transaction() as session:  # forgotten, with the logins they named
        assert session.scalars(select(PasswordRequest.id)).all() == []
    assert service.request_password_reset({"login": email.upper()}) is None
    assert service.request_password_reset({"login": customer_id}) is None
    service.resolve_reset_requests()
    requested = events.of("password_reset_requested")
    assert len(requested) == 2
    assert all(event["company"]["contact_email"] == email for event in requested)


def test_a_reset_request_is_queued_and_announced_once_resolved(service, events, db) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    events.clear()
    service.request_password_reset({"login": f"  {email} "})
    assert events == []  # the login is looked up after the answer, not before
    with db.transaction() as session:
        [queued] = session.scalars(select(PasswordRequest)).all()
        assert (queued.status, queued.login, queued.company_id) == ("queued", email, None)
    service.resolve_reset_requests()
    [event] = events.of("password_reset_requested")
    with db.transaction() as session:
        [opened] = session.scalars(select(PasswordRequest)).all()
    assert (opened.status, opened.login) == ("open", None)
    assert event["request_id"] == opened.request_id
    service.resolve_reset_requests()
    assert len(events.of("password_reset_requested")) == 1


def test_reset_link_is_built_from_the_portal_url_and_expires_in_30_minutes(
    service, events, clock
) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    service.request_password_reset({"login": email})
    service.resolve_reset_requests()
    [event] = events.of("password_reset_requested")
    assert set(event) == {
        "company",
        "user",
        "request_id",
        "expires_at",
        "event_id",
        "occurred_at",
    }
    assert event["user"]["email"] == email and event["user"]["role"] == "owner"
    assert datetime.fromisoformat(event["expires_at"]) == clock.now() + timedelta(minutes=30)
    clock.advance(minutes=5)  # notify sends a little later: the link still ends on time
    link = service.password_link(event["request_id"])
    token_of(link["url"])
    assert link["expires_at"] == event["expires_at"]


def test_reset_emails_are_limited_but_the_answer_is_not(service, events) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    for _ in range(domain.RESET_EMAIL_LIMIT + 2):
        assert service.request_password_reset({"login": email}) is None
    service.resolve_reset_requests()
    assert len(events.of("password_reset_requested")) == domain.RESET_EMAIL_LIMIT
    assert service.request_password_reset({"login": email}) is None
    service.resolve_reset_requests()
    assert len(events.of("password_reset_requested")) == domain.RESET_EMAIL_LIMIT
    assert login(service, email)["token"]  # reset requests never lock the account


def test_a_request_queued_longer_than_a_link_lives_is_dropped(service, events, clock) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    service.request_password_reset({"login": email})
    clock.advance(domain.RESET_LIFETIME)
    service.resolve_reset_requests()
    assert events.of("password_reset_requested") == []


def queued(db: Db) -> int:
    with db.transaction() as session:
        return len(
            session.scalars(
                select(PasswordRequest.id).where(PasswordRequest.status == "queued")
            ).all()
        )


def test_one_address_queues_only_its_share_and_another_still_gets_its_email(
    service, events, db
) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    events.clear()
    for _ in range(domain.RESET_QUEUE_LIMIT + 15):
        payload = {"login": unique_email(), "client_address": ATTACKER}
        assert service.request_password_reset(payload) is None
    assert queued(db) == domain.RESET_QUEUE_LIMIT
    # the same from the other /64s of one IPv6 /48: one address
    for subnet in range(domain.RESET_QUEUE_LIMIT + 5):
        payload = {"login": unique_email(), "client_address": f"2001:db8:9:{subnet:x}::1"}
        assert service.request_password_reset(payload) is None
    assert queued(db) == 2 * domain.RESET_QUEUE_LIMIT
    service.request_password_reset({"login": email, "client_address": OWNER})
    service.resolve_reset_requests()
    assert queued(db) == 0
    [requested] = events.of("password_reset_requested")
    assert requested["company"]["contact_email"] == email


def test_the_share_is_counted_per_address_whatever_the_logins(service, events) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    for _ in range(domain.RESET_QUEUE_LIMIT):
        service.request_password_reset({"login": unique_email(), "client_address": ATTACKER})
    # a known login from that address is not queued either: the login is never looked at
    service.request_password_reset({"login": email, "client_address": ATTACKER})
    service.resolve_reset_requests()
    assert events.of("password_reset_requested") == []


def test_an_address_may_queue_again_once_the_window_has_passed(service, db, clock) -> None:
    for _ in range(domain.RESET_QUEUE_LIMIT + 1):
        service.request_password_reset({"login": unique_email(), "client_address": ATTACKER})
    service.resolve_reset_requests()
    clock.advance(domain.RESET_QUEUE_WINDOW - timedelta(seconds=1))
    service.request_password_reset({"login": unique_email(), "client_address": ATTACKER})
    assert queued(db) == 0
    clock.advance(seconds=1)
    service.request_password_reset({"login": unique_email(), "client_address": ATTACKER})
    assert queued(db) == 1


def test_callers_without_an_address_share_a_larger_queue_share(service, db, monkeypatch) -> None:
    monkeypatch.setattr(domain, "RESET_QUEUE_LIMIT_UNKNOWN", domain.RESET_QUEUE_LIMIT + 5)
    for _ in range(domain.RESET_QUEUE_LIMIT_UNKNOWN + 3):
        service.request_password_reset({"login": unique_email()})
    assert queued(db) == domain.RESET_QUEUE_LIMIT_UNKNOWN


def test_one_tick_resolves_batch_after_batch_until_the_queue_is_empty(
    service, events, db, monkeypatch
) -> None:
    monkeypatch.setattr(use_cases, "RESOLVE_BATCH", 3)
    emails = [unique_email() for _ in range(4)]
    for email in emails:
        service.create_company(company_payload(email))
    for number in range(11):  # from many addresses, as a spread-out flood comes
        login_name = emails[number % 4] if number % 2 else unique_email()
        service.request_password_reset({"login": login_name, "client_address": f"192.0.2.{number}"})
    service.resolve_reset_requests()
    assert queued(db) == 0
    assert len(events.of("password_reset_requested")) == 5


def test_one_tick_stops_taking_batches_once_its_time_budget_is_spent(
    service, db, monkeypatch
) -> None:
    monkeypatch.setattr(use_cases, "RESOLVE_BATCH", 3)
    monkeypatch.setattr(auth_service, "RESOLVE_BUDGET_SECONDS", 0)  # spent after one batch
    for _ in range(7):
        service.request_password_reset({"login": unique_email()})
    service.resolve_reset_requests()
    assert queued(db) == 4
    service.resolve_reset_requests()  # the next tick goes on
    assert queued(db) == 1


def _request_token(service, events, email: str) -> str:
    service.request_password_reset({"login": email})
    service.resolve_reset_requests()
    return link_token(service, events.of("password_reset_requested")[-1]["request_id"])


def test_each_send_gets_a_fresh_token_and_earlier_ones_work_until_one_is_used(
    service, events
) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    service.request_password_reset({"login": email})
    service.resolve_reset_requests()
    request_id = events.of("password_reset_requested")[-1]["request_id"]
    first, retried = link_token(service, request_id), link_token(service, request_id)
    assert first != retried
    service.confirm_password_reset({"token": first, "new_password": NEW_PASSWORD})
    payload = {"token": retried, "new_password": "another fine password"}
    raises_code("invalid_token", service.confirm_password_reset, payload)
    # the request is closed: no new link is made for it
    raises_code("invalid_token", service.password_link, request_id)


def test_only_hashes_of_the_tokens_are_stored(service, events, db) -> None:
    email = unique_email()
    service.create_company(company_payload(email, password=None))
    token = _request_token(service, events, email)
    with db.transaction() as session:
        hashes = session.scalars(select(PasswordToken.token_hash)).all()
    assert domain.hash_token(token) in hashes and token not in hashes


def test_a_link_is_refused_for_a_request_that_is_unknown_queued_or_expired(
    service, events, clock, db
) -> None:
    for request_id in ("", "0" * 32, None, 42, "x" * 500):
        raises_code("invalid_token", service.password_link, request_id)
    email = unique_email()
    service.create_company(company_payload(email))
    service.request_password_reset({"login": email})
    with db.transaction() as session:
        [queued_id] = session.scalars(select(PasswordRequest.request_id)).all()
    raises_code("invalid_token", service.password_link, queued_id)
    service.resolve_reset_requests()
    request_id = events.of("password_reset_requested")[-1]["request_id"]
    clock.advance(domain.RESET_LIFETIME)
    raises_code("invalid_token", service.password_link, request_id)


def test_reset_sets_the_password_once_and_does_not_log_in(service, events) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    session = login(service, email)
    token = _request_token(service, events, email)
    result = service.confirm_password_reset({"token": token, "new_password": NEW_PASSWORD})
    assert result is None  # no session: a reset does not log anyone in
    raises_code("unauthenticated", service.authenticate, session["token"])
    raises_code("invalid_credentials", login, service, email, PASSWORD)
    assert login(service, email, NEW_PASSWORD)["token"]
    [event] = events.of("password_changed")
    assert event["how"] == "reset"
    error = raises_code(
        "invalid_token",
        service.confirm_password_reset,
        {"token": token, "new_password": "another fine password"},
    )
    assert error.details == {}
    assert login(service, email, NEW_PASSWORD)["token"]


def test_reset_token_expires_after_30_minutes(service, events, clock) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    token = _request_token(service, events, email)
    clock.advance(minutes=30)
    raises_code(
        "invalid_token",
        service.confirm_password_reset,
        {"token": token, "new_password": NEW_PASSWORD},
    )
    assert login(service, email)["token"]


def test_reset_token_works_just_before_it_expires(service, events, clock) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    token = _request_token(service, events, email)
    clock.advance(minutes=29, seconds=59)
    service.confirm_password_reset({"token": token, "new_password": NEW_PASSWORD})
    assert login(service, email, NEW_PASSWORD)["token"]


def test_a_weak_password_does_not_use_up_the_reset_token(service, events) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    token = _request_token(service, events, email)
    error = raises_code(
        "weak_password", service.confirm_password_reset, {"token": token, "new_password": "short"}
    )
    assert error.details["fields"]["new_password"]
    service.confirm_password_reset({"token": token, "new_password": NEW_PASSWORD})
    assert login(service, email, NEW_PASSWORD)["token"]


def test_using_one_reset_token_voids_the_others(service, events) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    older = _request_token(service, events, email)
    newer = _request_token(service, events, email)
    service.confirm_password_reset({"token": newer, "new_password": NEW_PASSWORD})
    raises_code(
        "invalid_token",
        service.confirm_password_reset,
        {"token": older, "new_password": "another fine password"},
    )


def test_changing_the_password_voids_outstanding_reset_tokens(service, events) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    token = _request_token(service, events, email)
    session = login(service, email)
    service.change_password(
        session["token"], {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    raises_code(
        "invalid_token",
        service.confirm_password_reset,
        {"token": token, "new_password": "another fine password"},
    )


def test_a_reset_lifts_the_login_throttle(service, events) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    for _ in range(FREE):
        raises_code("invalid_credentials", login, service, email, "wrong password 1", OWNER)
    raises_code("too_many_attempts", login, service, email, PASSWORD, OWNER)
    token = _request_token(service, events, email)
    service.confirm_password_reset({"token": token, "new_password": NEW_PASSWORD})
    assert login(service, email, NEW_PASSWORD, OWNER)["token"]


@pytest.mark.parametrize("token", ["", "garbage", "x" * 200])
def test_unknown_reset_tokens_are_invalid(service, token) -> None:
    payload = {"token": token, "new_password": NEW_PASSWORD}
    code = "validation_error" if token == "" else "invalid_token"
    raises_code(code, service.confirm_password_reset, payload)
