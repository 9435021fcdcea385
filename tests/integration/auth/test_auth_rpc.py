"""The auth service over the real bus and PostgreSQL: journeys, races, throttling, events.

Each test runs an `AuthService` container in this process (against the run's vhost and
database) and calls it through `common.rpc.standalone_client()`, as portalctl does. The
container's clock is a `FixedClock` at the real time, which a test may move.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eventlet.greenpool import GreenPool
from nameko.testing.services import entrypoint_hook, replace_dependencies
from sqlalchemy import create_engine, func, select

from common.errors import PortalError
from common.rpc import standalone_client
from services.auth import domain
from services.auth.models import ResetRequestAddress
from services.auth.service import AuthService
from tests.integration.auth.conftest import Rpc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple gun 4 ever!"
EVENT_TYPES = ("company_created", "password_reset_requested", "password_changed")


def unique_email() -> str:
    return f"ada-{uuid.uuid4().hex[:12]}@acme.test"


def new_company(rpc: Rpc, email: str | None = None, password: str | None = PASSWORD) -> dict:
    payload = {
        "name": f"Acme {uuid.uuid4().hex[:6]}",
        "contact_name": "Ada Lovelace",
        "contact_email": email or unique_email(),
    }
    if password is not None:
        payload["password"] = password
    return rpc.auth("create_company", payload)


def login(rpc: Rpc, login_name: str, password: str = PASSWORD) -> dict:
    return rpc.auth("login", {"login": login_name, "password": password})


def token_of(url: str, portal_url: str) -> str:
    assert url.startswith(portal_url + "/reset-password#token="), url
    return url.split("#token=", 1)[1]


def link_token(rpc: Rpc, event: dict, portal_url: str) -> str:
    """What notify does when it sends the email of `event`: ask auth for the link."""
    assert not {"reset_url", "set_password_url"} & set(event), event  # no link in events
    return token_of(rpc.auth("password_link", event["request_id"])["url"], portal_url)


def assert_event_envelope(event: dict) -> None:
    assert len(event["event_id"]) >= 32
    occurred = datetime.fromisoformat(event["occurred_at"])
    assert occurred.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - occurred) < timedelta(minutes=1)


# --- journeys -----------------------------------------------------------------------------


def test_login_with_customer_id_or_email_in_any_case(rpc) -> None:
    email = unique_email()
    customer_id = new_company(rpc, email.upper())["customer_id"]
    for login_name in (customer_id, customer_id.lower(), email, email.upper()):
        session = login(rpc, login_name)
        assert session["company"]["customer_id"] == customer_id
        assert rpc.auth("authenticate", session["token"])["contact_email"] == email
    assert rpc.auth("ping") == {"service": "auth", "status": "ok"}


def test_unknown_login_gets_the_same_error_as_a_wrong_password(rpc) -> None:
    email = unique_email()
    new_company(rpc, email)
    wrong = rpc.error("invalid_credentials", "login", {"login": email, "password": "nope nope 1"})
    unknown = rpc.error(
        "invalid_credentials", "login", {"login": unique_email(), "password": PASSWORD}
    )
    assert wrong.to_dict() == unknown.to_dict()


def test_throttling_answers_too_many_attempts_with_an_integer_retry_after(rpc) -> None:
    email = unique_email()
    customer_id = new_company(rpc, email)["customer_id"]
    for attempt in range(domain.ACCOUNT_FREE_FAILURES):
        login_name = email if attempt % 2 else customer_id
        rpc.error("invalid_credentials", "login", {"login": login_name, "password": "nope nope 1"})
    error = rpc.error("too_many_attempts", "login", {"login": email, "password": PASSWORD})
    retry_after = error.details["retry_after"]
    assert isinstance(retry_after, int)
    assert 0 < retry_after <= domain.MAX_DELAY.total_seconds()


def test_guesses_from_one_address_through_activations_and_logins_share_one_budget(rpc) -> None:
    email = unique_email()
    customer_id = new_company(rpc, email)["customer_id"]
    attacker, owner = "203.0.113.66", "2001:db8:5::1"
    for attempt in range(domain.ACCOUNT_FREE_FAILURES - 1):
        assert (
            rpc.auth("verify_company_password", customer_id, f"guess {attempt}", attacker) is False
        )
    rpc.error(
        "invalid_credentials",
        "login",
        {"login": email, "password": "last free guess", "client_address": attacker},
    )
    rpc.error("too_many_attempts", "verify_company_password", customer_id, PASSWORD, attacker)
    rpc.error(
        "too_many_attempts",
        "login",
        {"login": customer_id, "password": PASSWORD, "client_address": attacker},
    )
    # the company, from its own address, is not slowed at all
    assert rpc.auth("verify_company_password", customer_id, PASSWORD, owner) is True
    assert login_from(rpc, email, owner)["token"]


def login_from(rpc: Rpc, login_name: str, address: str) -> dict:
    return rpc.auth("login", {"login": login_name, "password": PASSWORD, "client_address": address})


def test_duplicate_email_in_another_case_is_email_taken(rpc) -> None:
    email = unique_email()
    new_company(rpc, email)
    rpc.error(
        "email_taken",
        "create_company",
        {
            "name": "Other",
            "contact_name": "Bob",
            "contact_email": email.upper(),
        },
    )


def test_change_password_revokes_the_other_sessions(rpc, bus_events) -> None:
    email = unique_email()
    new_company(rpc, email)
    current, other = login(rpc, email), login(rpc, email)
    weak = rpc.error(
        "weak_password",
        "change_password",
        current["token"],
        {"current_password": PASSWORD, "new_password": "short"},
    )
    assert weak.details["fields"]["new_password"]
    rpc.auth(
        "change_password",
        current["token"],
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert rpc.auth("authenticate", current["token"])["contact_email"] == email
    rpc.error("unauthenticated", "authenticate", other["token"])
    rpc.error("invalid_credentials", "login", {"login": email, "password": PASSWORD})
    assert login(rpc, email, NEW_PASSWORD)["token"]
    [event] = bus_events.wait_for("password_changed")
    assert event["how"] == "change"
    assert event["company"]["contact_email"] == email
    assert_event_envelope(event)


def test_reset_journey_over_the_bus(rpc, bus_events, config) -> None:
    email = unique_email()
    customer_id = new_company(rpc, email)["customer_id"]
    session = login(rpc, email)
    # unknown logins answer the same and publish nothing
    assert rpc.auth("request_password_reset", {"login": unique_email()}) is None
    assert rpc.auth("request_password_reset", {"login": customer_id}) is None
    # resolved a moment later, by a timer, in the order they came
    [requested] = bus_events.wait_for("password_reset_requested")
    assert requested["company"]["customer_id"] == customer_id
    assert_event_envelope(requested)
    token = link_token(rpc, requested, config["PORTAL_URL"])

    weak = rpc.error(
        "weak_password", "confirm_password_reset", {"token": token, "new_password": email}
    )
    assert weak.details["fields"]["new_password"]
    result = rpc.auth("confirm_password_reset", {"token": token, "new_password": NEW_PASSWORD})
    assert result is None  # no session: a reset does not log in
    rpc.error("unauthenticated", "authenticate", session["token"])
    rpc.error(
        "invalid_token",
        "confirm_password_reset",
        {"token": token, "new_password": "yet another password"},
    )
    assert login(rpc, email, NEW_PASSWORD)["token"]
    [changed] = bus_events.wait_for("password_changed")
    assert changed["how"] == "reset"
    assert_event_envelope(changed)
    # the sentinel: the unknown login's request was resolved before the known one's, so an
    # event of it would have come first
    assert len(bus_events.of("password_reset_requested")) == 1


def test_reset_token_expires_after_30_minutes(rpc, bus_events, config, clock) -> None:
    email = unique_email()
    new_company(rpc, email)
    rpc.auth("request_password_reset", {"login": email})
    [requested] = bus_events.wait_for("password_reset_requested")
    token = link_token(rpc, requested, config["PORTAL_URL"])
    clock.advance(domain.RESET_LIFETIME, seconds=1)
    rpc.error(
        "invalid_token", "confirm_password_reset", {"token": token, "new_password": NEW_PASSWORD}
    )
    rpc.error("invalid_token", "password_link", requested["request_id"])


def test_company_created_event_names_a_set_up_request(rpc, bus_events, config) -> None:
    email = unique_email()
    company = new_company(rpc, email, password=None)
    with_password = new_company(rpc)
    events = bus_events.wait_for("company_created", count=2)
    by_id = {event["company"]["customer_id"]: event for event in events}
    created = by_id[company["customer_id"]]
    assert created["company"]["contact_email"] == email
    assert created["company"]["has_password"] is False
    assert created["expires_at"]
    assert_event_envelope(created)
    token = link_token(rpc, created, config["PORTAL_URL"])
    assert by_id[with_password["customer_id"]]["request_id"] is None
    assert len({event["event_id"] for event in events}) == 2

    rpc.auth("confirm_password_reset", {"token": token, "new_password": NEW_PASSWORD})
    assert login(rpc, email, NEW_PASSWORD)["company"]["has_password"] is True


# --- races --------------------------------------------------------------------------------


def _in_parallel(call, count: int = 10) -> list[Any]:
    """Run `call()` `count` times at once, each with its own client; results or PortalErrors."""

    def one(_: int) -> Any:
        with standalone_client(timeout=20) as client:
            try:
                return call(Rpc(client))
            except PortalError as error:
                return error

    return list(GreenPool(count).imap(one, range(count)))


def _codes(outcomes: list[Any]) -> list[str]:
    return sorted("ok" if not isinstance(o, PortalError) else o.code for o in outcomes)


def test_concurrent_creates_with_one_email_make_exactly_one_company(rpc) -> None:
    email = unique_email()

    def create(client: Rpc) -> dict:
        return new_company(client, email)

    outcomes = _in_parallel(create)
    assert _codes(outcomes) == ["email_taken"] * 9 + ["ok"], [
        o.to_dict() if isinstance(o, PortalError) else o for o in outcomes
    ]
    assert len(rpc.auth("find_companies", email)) == 1


def test_concurrent_confirmations_of_one_reset_token_succeed_once(rpc, bus_events, config) -> None:
    email = unique_email()
    new_company(rpc, email)
    rpc.auth("request_password_reset", {"login": email})
    [requested] = bus_events.wait_for("password_reset_requested")
    token = link_token(rpc, requested, config["PORTAL_URL"])

    def confirm(client: Rpc) -> None:
        return client.auth("confirm_password_reset", {"token": token, "new_password": NEW_PASSWORD})

    assert _codes(_in_parallel(confirm)) == ["invalid_token"] * 9 + ["ok"]
    # a sentinel published after every confirmation answered: their events are queued before it
    rpc.auth("request_password_reset", {"login": email})
    bus_events.wait_for("password_reset_requested", count=2)
    assert len(bus_events.of("password_changed")) == 1


def test_concurrent_wrong_passwords_do_not_outrun_the_throttle(rpc) -> None:
    email = unique_email()
    new_company(rpc, email)

    def guess(client: Rpc) -> dict:
        return login(client, email, "a wrong guess")

    codes = _codes(_in_parallel(guess))
    assert codes.count("invalid_credentials") == domain.ACCOUNT_FREE_FAILURES, codes
    assert codes.count("too_many_attempts") == 10 - domain.ACCOUNT_FREE_FAILURES, codes


def test_concurrent_reset_requests_from_one_address_queue_only_its_share(
    rpc, bus_events, config
) -> None:
    flooder = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"

    def request(client: Rpc) -> None:
        payload = {"login": unique_email(), "client_address": flooder}
        return client.auth("request_password_reset", payload)

    count = domain.RESET_QUEUE_LIMIT + 10
    assert _codes(_in_parallel(request, count)) == ["ok"] * count  # the same answer to all
    engine = create_engine(config["AUTH_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            queued = connection.scalar(
                select(func.count(ResetRequestAddress.id)).where(
                    ResetRequestAddress.address == flooder
                )
            )
    finally:
        engine.dispose()
    assert queued == domain.RESET_QUEUE_LIMIT  # the per-address lock: no overshoot
    # and another address is not held back by the flood: its request is emailed
    email = unique_email()
    new_company(rpc, email)
    rpc.auth("request_password_reset", {"login": email, "client_address": "192.0.2.99"})
    [requested] = bus_events.wait_for("password_reset_requested")
    assert requested["company"]["contact_email"] == email


def test_throttle_holds_across_two_auth_containers(
    config, container_factory, rpc, auth, clock
) -> None:
    second = container_factory(AuthService)
    replace_dependencies(second, clock=clock)
    second.start()
    email = unique_email()
    new_company(rpc, email)
    wrong = {"login": email, "password": "nope nope 1"}
    for attempt in range(domain.ACCOUNT_FREE_FAILURES):
        container = (auth, second)[attempt % 2]
        with entrypoint_hook(container, "login") as hook, pytest.raises(PortalError) as caught:
            hook(wrong)
        assert caught.value.code == "invalid_credentials"
    for container in (auth, second):
        with entrypoint_hook(container, "login") as hook, pytest.raises(PortalError) as caught:
            hook({"login": email, "password": PASSWORD})
        assert caught.value.code == "too_many_attempts"
