"""Issue 10 in auth over the real bus and PostgreSQL: the staff's `update_company` and
`resend_invite`, `get_company` by ID or email, and redelivered requests that change nothing
twice (the same request key, or the same AMQP message delivered again)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from eventlet.greenpool import GreenPool
from sqlalchemy import create_engine, select, text

from common.errors import PortalError
from common.idempotency import REQUEST_KEY
from common.rpc import standalone_client
from services.auth.models import HandledRequest
from tests.integration.auth.conftest import Rpc
from tests.support.bus import answers, deliver_again

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

PASSWORD = "correct horse battery"


def unique_email() -> str:
    return f"grace-{uuid.uuid4().hex[:12]}@acme.test"


def new_company(rpc: Rpc, password: str | None = None, email: str | None = None) -> dict:
    payload = {
        "name": f"Orbital {uuid.uuid4().hex[:6]}",
        "contact_name": "Grace Hopper",
        "contact_email": email or unique_email(),
    }
    if password is not None:
        payload["password"] = password
    return rpc.auth("create_company", payload)


def as_staff_run(key: str, method: str, *args: Any) -> Any:
    """One `portalctl` command run with the request key `key`: one call, its own client."""
    with standalone_client(timeout=10, context_data={REQUEST_KEY: key}) as client:
        return client.call("auth", method, *args)


def error_of(call, *args: Any) -> PortalError:
    with pytest.raises(PortalError) as caught:
        call(*args)
    return caught.value


@pytest.fixture
def tables(config) -> Iterator[Any]:
    engine = create_engine(config["AUTH_DATABASE_URL"])
    yield engine
    engine.dispose()


# --- journeys ---------------------------------------------------------------------------------


def test_support_fixes_a_typo_in_the_email_and_resends_the_invitation(rpc, bus_events) -> None:
    company = new_company(rpc, email=unique_email())
    [created] = bus_events.wait_for("company_created")
    fixed = unique_email()
    updated = rpc.auth(
        "update_company", company["customer_id"].lower(), {"contact_email": fixed.upper()}
    )
    assert updated["contact_email"] == fixed
    # the link for the wrong address is dead
    rpc.error("invalid_token", "password_link", created["request_id"])
    assert rpc.auth("get_company", fixed.upper())["customer_id"] == company["customer_id"]

    answer = rpc.auth("resend_invite", f" {company['customer_id'].lower()} ")
    assert answer == {"customer_id": company["customer_id"], "contact_email": fixed, "sent": True}
    [invited] = bus_events.wait_for("company_invited")
    assert invited["company"]["contact_email"] == fixed
    assert invited["customer_id"] == company["customer_id"]
    assert len(invited["event_id"]) >= 32 and invited["occurred_at"]
    link = rpc.auth("password_link", invited["request_id"])["url"]
    token = link.split("#token=", 1)[1]
    rpc.auth("confirm_password_reset", {"token": token, "new_password": PASSWORD})
    assert rpc.auth("login", {"login": fixed, "password": PASSWORD})["token"]
    error = rpc.error("password_already_set", "resend_invite", company["customer_id"])
    assert "Forgot password" in error.message


def test_update_company_refuses_another_companys_email(rpc) -> None:
    taken = new_company(rpc)["contact_email"]
    company = new_company(rpc)
    error = rpc.error(
        "email_taken", "update_company", company["customer_id"], {"contact_email": taken.upper()}
    )
    assert "contact_email" in error.details["fields"]
    rpc.error("company_not_found", "update_company", "C0000000", {"name": "X"})
    rpc.error("validation_error", "update_company", company["customer_id"], {})


def test_concurrent_changes_to_one_email_give_it_to_one_company(rpc) -> None:
    """Creates and contact-email changes racing for one address: exactly one wins."""
    companies = [new_company(rpc) for _ in range(4)]
    email = unique_email()

    def claim(index: int) -> Any:
        with standalone_client(timeout=20) as client:
            try:
                if index < len(companies):
                    customer_id = companies[index]["customer_id"]
                    return client.call(
                        "auth", "update_company", customer_id, {"contact_email": email}
                    )
                return new_company(Rpc(client), email=email)
            except PortalError as error:
                return error

    outcomes = list(GreenPool(8).imap(claim, range(8)))
    codes = sorted("ok" if isinstance(o, dict) else o.code for o in outcomes)
    assert codes == ["email_taken"] * 7 + ["ok"], outcomes
    assert rpc.auth("get_company", email)["contact_email"] == email


# --- redelivered requests ---------------------------------------------------------------------


def test_a_staff_command_run_twice_with_its_key_changes_once(rpc, bus_events, tables) -> None:
    company = new_company(rpc)
    key = f"staff-run-{uuid.uuid4().hex}"
    first = as_staff_run(key, "resend_invite", company["customer_id"])
    again = as_staff_run(key, "resend_invite", company["customer_id"].lower())
    assert again == first
    bus_events.wait_for("company_invited")
    other = new_company(rpc)
    error = error_of(as_staff_run, key, "resend_invite", other["customer_id"])
    assert error.code == "idempotency_key_reused"
    # a fresh key is a new request
    as_staff_run(f"staff-run-{uuid.uuid4().hex}", "resend_invite", company["customer_id"])
    bus_events.wait_for("company_invited", count=2)
    assert len(bus_events.of("company_invited")) == 2
    with tables.connect() as connection:
        rows = connection.execute(
            select(HandledRequest.__table__).where(
                HandledRequest.__table__.c.operation == "auth.resend_invite"
            )
        ).all()
    assert {row.scope for row in rows} == {"staff"}


def test_a_create_run_twice_with_its_key_makes_one_company(rpc, tables) -> None:
    key = f"staff-run-{uuid.uuid4().hex}"
    payload = {"name": "Once Ltd", "contact_name": "Ada", "contact_email": unique_email()}
    first = as_staff_run(key, "create_company", {**payload, "password": PASSWORD})
    assert as_staff_run(key, "create_company", {**payload, "password": PASSWORD}) == first
    with tables.connect() as connection:
        companies = connection.execute(
            text("SELECT count(*) FROM companies WHERE contact_email = :email"),
            {"email": payload["contact_email"]},
        ).scalar()
        answers = connection.execute(select(HandledRequest.__table__.c.answer)).scalars().all()
    assert companies == 1
    assert not any(PASSWORD in (answer or "") for answer in answers)


def redelivered(amqp_uri: str, method: str, *args: Any) -> list[Any]:
    """The answers of one auth request delivered twice (a lost ack), with no request key."""
    return answers(deliver_again(amqp_uri, "auth", method, list(args)), "auth")


def test_a_redelivered_message_without_a_key_changes_nothing_twice(config, rpc, bus_events) -> None:
    company = new_company(rpc)
    first, second = redelivered(config["AMQP_URI"], "resend_invite", company["customer_id"])
    assert (
        first
        == second
        == {
            "customer_id": company["customer_id"],
            "contact_email": company["contact_email"],
            "sent": True,
        }
    )
    [invited] = bus_events.wait_for("company_invited")
    # nothing voided the one invitation's request
    assert rpc.auth("password_link", invited["request_id"])["url"]
    renamed = redelivered(
        config["AMQP_URI"], "update_company", company["customer_id"], {"name": "Twice Ltd"}
    )
    assert renamed[0] == renamed[1] and renamed[0]["name"] == "Twice Ltd"
    # the next invitation's event comes right after the one before: none came in between
    rpc.auth("resend_invite", company["customer_id"])
    bus_events.wait_for("company_invited", count=2)
    assert len(bus_events.of("company_invited")) == 2
