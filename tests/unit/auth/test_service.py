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
from nameko.testing.services import worker_factory
from sqlalchemy import select

from common.db import Db
from common.errors import PortalError
from common.schemas import TOKEN_MAX
from services.auth import domain
from services.auth.models import LoginFailure
from services.auth.service import AuthService
from tests.support.fakes import FixedClock, RecordedEvents

PORTAL_URL = "https://portal.example.test"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple gun 4 ever!"


@pytest.fixture
def service(db: Db, events: RecordedEvents, clock: FixedClock, monkeypatch) -> AuthService:
    monkeypatch.setenv("PORTAL_URL", PORTAL_URL + "/")
    return worker_factory(AuthService, db=db, events=events, clock=clock)


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


def login(service: AuthService, login_name: str, password: str = PASSWORD) -> dict:
    return service.login({"login": login_name, "password": password})


# --- creating companies -------------------------------------------------------------------


def test_create_company_with_a_password(service, events) -> None:
    email = unique_email()
    company = service.create_company(company_payload(email.upper()))
    assert re.fullmatch(r"C\d{7}", company["customer_id"])
    assert company["contact_email"] == email
    assert company["has_password"] is True
    [event] = events.of("company_created")
    assert event["company"]["customer_id"] == company["customer_id"]
    assert event["set_password_url"] is None
    assert login(service, email)["company"]["customer_id"] == company["customer_id"]


def test_create_company_without_password_sends_a_set_password_link(service, events) -> None:
    email = unique_email()
    company = service.create_company(company_payload(email, password=None))
    assert company["has_password"] is False
    [event] = events.of("company_created")
    token = token_of(event["set_password_url"])
    assert event["expires_at"]
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


def test_login_is_throttled_after_five_failures_across_both_login_forms(service, clock) -> None:
    email = unique_email()
    customer_id = service.create_company(company_payload(email))["customer_id"]
    for attempt in range(domain.LOGIN_FAILURE_LIMIT):
        login_name = email.upper() if attempt % 2 else customer_id.lower()
        raises_code("invalid_credentials", login, service, login_name, f"wrong {attempt}")
        clock.advance(seconds=10)
    # the right password does not help now, by either login form
    error = raises_code("too_many_attempts", login, service, email, PASSWORD)
    assert error.details["retry_after"] == 15 * 60 - 5 * 10
    raises_code("too_many_attempts", login, service, customer_id, PASSWORD)
    # once the oldest failure leaves the window, one more attempt is allowed
    clock.advance(seconds=error.details["retry_after"])
    assert login(service, email)["token"]


def test_unknown_logins_are_throttled_too(service) -> None:
    email = unique_email()
    for _ in range(domain.LOGIN_FAILURE_LIMIT):
        raises_code("invalid_credentials", login, service, email, PASSWORD)
    error = raises_code("too_many_attempts", login, service, email.upper(), PASSWORD)
    assert error.details["retry_after"] > 0


def test_a_successful_login_clears_the_failures(service) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    for _ in range(domain.LOGIN_FAILURE_LIMIT - 1):
        raises_code("invalid_credentials", login, service, email, "wrong password 1")
    login(service, email)
    for _ in range(domain.LOGIN_FAILURE_LIMIT - 1):
        raises_code("invalid_credentials", login, service, email, "wrong password 1")
    assert login(service, email)["token"]


def test_throttling_one_company_does_not_affect_another(service) -> None:
    victim, other = unique_email(), unique_email()
    service.create_company(company_payload(victim))
    service.create_company(company_payload(other))
    for _ in range(domain.LOGIN_FAILURE_LIMIT):
        raises_code("invalid_credentials", login, service, victim, "wrong password 1")
    raises_code("too_many_attempts", login, service, victim, PASSWORD)
    assert login(service, other)["token"]


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
    clock.advance(domain.LOGIN_FAILURE_WINDOW, seconds=1)
    raises_code("invalid_credentials", login, service, unique_email(), PASSWORD)
    service.prune()
    with db.transaction() as session:
        assert session.scalars(select(LoginFailure.at)).all() == [clock.now()]


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
    for _ in range(domain.LOGIN_FAILURE_LIMIT):
        raises_code("invalid_credentials", service.change_password, session["token"], payload)
    raises_code("too_many_attempts", login, service, email, PASSWORD)


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
    service, events
) -> None:
    email = unique_email()
    customer_id = service.create_company(company_payload(email))["customer_id"]
    events.clear()
    assert service.request_password_reset({"login": unique_email()}) is None
    assert service.request_password_reset({"login": "C0000000"}) is None
    assert events == []
    assert service.request_password_reset({"login": email.upper()}) is None
    assert service.request_password_reset({"login": customer_id}) is None
    requested = events.of("password_reset_requested")
    assert len(requested) == 2
    assert all(event["company"]["contact_email"] == email for event in requested)


def test_reset_link_is_built_from_the_portal_url_and_expires_in_30_minutes(
    service, events, clock
) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    service.request_password_reset({"login": email})
    [event] = events.of("password_reset_requested")
    token_of(event["reset_url"])
    assert datetime.fromisoformat(event["expires_at"]) == clock.now() + timedelta(minutes=30)


def test_reset_emails_are_limited_but_the_answer_is_not(service, events) -> None:
    email = unique_email()
    service.create_company(company_payload(email))
    for _ in range(domain.RESET_EMAIL_LIMIT + 2):
        assert service.request_password_reset({"login": email}) is None
    assert len(events.of("password_reset_requested")) == domain.RESET_EMAIL_LIMIT
    assert login(service, email)["token"]  # reset requests never lock the account


def _request_token(service, events, email: str) -> str:
    service.request_password_reset({"login": email})
    return token_of(events.of("password_reset_requested")[-1]["reset_url"])


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
    for _ in range(domain.LOGIN_FAILURE_LIMIT):
        raises_code("invalid_credentials", login, service, email, "wrong password 1")
    raises_code("too_many_attempts", login, service, email, PASSWORD)
    token = _request_token(service, events, email)
    service.confirm_password_reset({"token": token, "new_password": NEW_PASSWORD})
    assert login(service, email, NEW_PASSWORD)["token"]


@pytest.mark.parametrize("token", ["", "garbage", "x" * 200])
def test_unknown_reset_tokens_are_invalid(service, token) -> None:
    payload = {"token": token, "new_password": NEW_PASSWORD}
    code = "validation_error" if token == "" else "invalid_token"
    raises_code(code, service.confirm_password_reset, payload)
