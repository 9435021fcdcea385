"""The users of a company (issue 13) on the real bus and PostgreSQL: invitations, logins per
user, disabling, the last owner, unique emails, preferences and recipients, the audit trail
written with its change, and the migration that gives existing companies their contact."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import eventlet
import pytest
from alembic import command
from eventlet.greenpool import GreenPool
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from common.audit import SYSTEM, encode_cursor
from common.context import ACTOR
from common.db import alembic_config
from common.errors import PortalError
from common.rpc import standalone_client
from services.auth import users
from services.auth.repository import AuthRepository
from services.auth.service import MIGRATIONS
from tests.integration.auth.conftest import Rpc
from tests.support import infra

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

PASSWORD = "correct horse battery"
BOB_PASSWORD = "bob's own long secret"
PORTAL_URL = "http://portal.test"


def unique_email(who: str = "ada") -> str:
    return f"{who}-{uuid.uuid4().hex[:12]}@acme.test"


def new_company(rpc: Rpc, password: str | None = PASSWORD) -> dict:
    payload = {
        "name": f"Acme {uuid.uuid4().hex[:6]}",
        "contact_name": "Ada Lovelace",
        "contact_email": unique_email(),
    }
    if password is not None:
        payload["password"] = password
    return rpc.auth("create_company", payload)


def contact_of(rpc: Rpc, customer_id: str) -> dict:
    [contact] = [u for u in rpc.auth("list_users", customer_id)["users"] if u["contact"]]
    return contact


def as_user(user: dict, method: str, *args: Any) -> Any:
    """A call as the gateway makes it for a logged-in user: the actor in the context data."""
    actor = {"type": "user", "user_id": user["user_id"], "email": user["email"]}
    with standalone_client(timeout=10, context_data={ACTOR: actor}) as client:
        return client.call("auth", method, *args)


def invite(rpc: Rpc, customer_id: str, role: str, email: str | None = None) -> dict:
    payload = {"email": email or unique_email("bob"), "name": "Bob", "role": role}
    return rpc.auth("invite_user", customer_id, payload)


def accept(rpc: Rpc, bus_events, user: dict) -> None:
    """What notify and the invitee do: the link of `user_invited`, then the password."""
    bus_events.wait_until(
        lambda events: any(e["user"]["email"] == user["email"] for e in events.of("user_invited"))
    )
    [event] = [e for e in bus_events.of("user_invited") if e["user"]["email"] == user["email"]][-1:]
    link = rpc.auth("password_link", event["request_id"])
    assert link["url"].startswith(PORTAL_URL + "/accept-invitation#token="), link
    token = link["url"].split("#token=", 1)[1]
    assert rpc.auth("accept_invitation", {"token": token, "password": BOB_PASSWORD}) is None


def active_user(rpc: Rpc, bus_events, customer_id: str, role: str) -> dict:
    user = invite(rpc, customer_id, role)
    accept(rpc, bus_events, user)
    return user


@pytest.fixture
def tables(config) -> Iterator[Any]:
    engine = create_engine(config["AUTH_DATABASE_URL"])
    yield engine
    engine.dispose()


def audit_of(tables, customer_id: str) -> list[Any]:
    with tables.connect() as connection:
        return connection.execute(
            text("SELECT * FROM audit_events WHERE customer_id = :cid ORDER BY id"),
            {"cid": customer_id},
        ).all()


# --- invitations and logins -----------------------------------------------------------------


def test_an_invited_user_accepts_and_logs_in_with_their_role(rpc, bus_events) -> None:
    company = new_company(rpc)
    user = invite(rpc, company["customer_id"], "license_admin")
    assert user["status"] == "invited"
    [event] = bus_events.wait_for("user_invited")
    assert event["user"]["user_id"] == user["user_id"]
    assert event["company"]["customer_id"] == company["customer_id"]
    assert "url" not in json.dumps(event)  # no link, no token in the event
    rpc.error("invalid_credentials", "login", {"login": user["email"], "password": BOB_PASSWORD})
    accept(rpc, bus_events, user)
    session = rpc.auth("login", {"login": user["email"].upper(), "password": BOB_PASSWORD})
    assert session["user"] == {
        "user_id": user["user_id"],
        "email": user["email"],
        "name": "Bob",
        "role": "license_admin",
    }
    authenticated = rpc.auth("authenticate", session["token"])
    assert authenticated["customer_id"] == company["customer_id"]
    assert authenticated["user"]["role"] == "license_admin"
    # the contact still logs in with the customer ID and the company-wide password
    owner = rpc.auth("login", {"login": company["customer_id"], "password": PASSWORD})
    assert owner["user"]["role"] == "owner" and owner["user"]["email"] == company["contact_email"]


def test_a_users_password_does_not_activate_products(rpc, bus_events) -> None:
    company = new_company(rpc)
    active_user(rpc, bus_events, company["customer_id"], "owner")
    cid = company["customer_id"]
    assert rpc.auth("verify_company_password", cid, BOB_PASSWORD) is False
    assert rpc.auth("verify_company_password", cid, PASSWORD) is True


def test_disabling_a_user_ends_their_session_at_once(rpc, bus_events) -> None:
    company = new_company(rpc)
    cid = company["customer_id"]
    user = active_user(rpc, bus_events, cid, "viewer")
    session = rpc.auth("login", {"login": user["email"], "password": BOB_PASSWORD})
    assert rpc.auth("authenticate", session["token"])["user"]["user_id"] == user["user_id"]
    owner = contact_of(rpc, cid)
    assert as_user(owner, "disable_user", cid, user["user_id"])["status"] == "disabled"
    rpc.error("unauthenticated", "authenticate", session["token"])
    rpc.error("invalid_credentials", "login", {"login": user["email"], "password": BOB_PASSWORD})
    [event] = bus_events.wait_for("user_disabled")
    assert event["disabled_by"] == owner["email"]
    assert event["user"]["user_id"] == user["user_id"]
    rpc.auth("enable_user", cid, user["user_id"])
    assert rpc.auth("login", {"login": user["email"], "password": BOB_PASSWORD})["token"]


def test_the_last_owner_stays(rpc, bus_events) -> None:
    company = new_company(rpc, password=None)  # its contact is no active owner yet
    cid = company["customer_id"]
    owner = active_user(rpc, bus_events, cid, "owner")
    rpc.error("last_owner", "update_user", cid, owner["user_id"], {"role": "viewer"})
    rpc.error("last_owner", "disable_user", cid, owner["user_id"])
    rpc.error("last_owner", "remove_user", cid, owner["user_id"])
    contact = contact_of(rpc, cid)
    rpc.error("contact_is_owner", "update_user", cid, contact["user_id"], {"role": "viewer"})
    rpc.error("contact_is_owner", "remove_user", cid, contact["user_id"])
    # a second active owner lets the first one go
    active_user(rpc, bus_events, cid, "owner")
    assert rpc.auth("update_user", cid, owner["user_id"], {"role": "billing"})["role"] == "billing"
    [event] = bus_events.wait_for("user_role_changed")
    assert (event["old_role"], event["new_role"]) == ("owner", "billing")


def outcome_of(actor: dict | None, method: str, *args: Any) -> str:
    """The call's error code, or "ok" (called as `actor`; None: as the system)."""
    try:
        if actor is None:
            with standalone_client(timeout=10) as client:
                client.call("auth", method, *args)
        else:
            as_user(actor, method, *args)
    except PortalError as error:
        return error.code
    return "ok"


def wait_for_lock_waits(tables, count: int) -> None:
    """Until `count` transactions of the auth database wait for a row lock (never a sleep
    that hopes they got there)."""
    deadline = time.monotonic() + 10
    with tables.connect() as probe:
        while True:
            waiting = probe.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
            probe.commit()  # pg_stat_activity is read once per transaction
            if waiting >= count:
                return
            assert time.monotonic() < deadline, f"{waiting} of {count} calls wait for a lock"
            eventlet.sleep(0.01)


def test_two_owners_demoting_each_other_at_once_leave_one_owner(rpc, bus_events, tables) -> None:
    company = new_company(rpc, password=None)
    cid = company["customer_id"]
    first, second = (active_user(rpc, bus_events, cid, "owner") for _ in range(2))
    # Both demotions must be under way together. Holding their targets' rows keeps each
    # from writing until both have started: without the company's row lock both would
    # have found another active owner by then; with it, the second waits for the first.
    with Session(tables) as holder, holder.begin():
        holder.execute(
            text("SELECT id FROM users WHERE user_id IN (:a, :b) FOR UPDATE"),
            {"a": first["user_id"], "b": second["user_id"]},
        )
        pool = GreenPool(2)
        demotions = [
            pool.spawn(outcome_of, actor, "update_user", cid, target["user_id"], {"role": "viewer"})
            for actor, target in ((first, second), (second, first))
        ]
        wait_for_lock_waits(tables, 2)
    assert sorted(demotion.wait() for demotion in demotions) == ["last_owner", "ok"]
    roles = sorted(u["role"] for u in rpc.auth("list_users", cid)["users"] if not u["contact"])
    assert roles == ["owner", "viewer"]


def test_a_login_overtaken_by_the_users_removal_is_refused(rpc, bus_events, tables) -> None:
    company = new_company(rpc)
    cid = company["customer_id"]
    user = active_user(rpc, bus_events, cid, "viewer")
    # the removal runs in our transaction and commits only once the login, its password
    # checked against the user it read, waits to open the session
    with Session(tables) as holder, holder.begin():
        users.remove_user(AuthRepository(holder), cid, user["user_id"], SYSTEM, datetime.now(UTC))
        login = eventlet.spawn(
            outcome_of, None, "login", {"login": user["email"], "password": BOB_PASSWORD}
        )
        wait_for_lock_waits(tables, 1)
    assert login.wait() == "invalid_credentials"
    assert [u["user_id"] for u in rpc.auth("list_users", cid)["users"]] == [
        contact_of(rpc, cid)["user_id"]
    ]
    with tables.connect() as connection:
        sessions = connection.execute(
            text(
                "SELECT count(*) FROM sessions s JOIN companies c ON c.id = s.company_id"
                " WHERE c.customer_id = :cid"
            ),
            {"cid": cid},
        ).scalar()
    assert sessions == 0


def test_an_email_is_one_users_across_companies(rpc) -> None:
    first, second = new_company(rpc), new_company(rpc)
    bob = invite(rpc, first["customer_id"], "viewer")
    error = rpc.error(
        "email_taken",
        "invite_user",
        second["customer_id"],
        {"email": bob["email"].upper(), "name": "B", "role": "viewer"},
    )
    assert "email" in error.details["fields"]
    rpc.error(
        "email_taken",
        "invite_user",
        second["customer_id"],
        {"email": first["contact_email"], "name": "A", "role": "viewer"},
    )
    rpc.error(
        "email_taken", "update_company", second["customer_id"], {"contact_email": bob["email"]}
    )
    rpc.error("user_not_found", "remove_user", second["customer_id"], bob["user_id"])


def test_one_email_invited_by_two_companies_at_once_goes_to_one(rpc) -> None:
    companies = [new_company(rpc)["customer_id"] for _ in range(2)]
    email = unique_email("carol")

    def claim(customer_id: str) -> str:
        payload = {"email": email, "name": "Carol", "role": "viewer"}
        try:
            with standalone_client(timeout=10) as client:
                client.call("auth", "invite_user", customer_id, payload)
        except PortalError as error:
            return error.code
        return "ok"

    assert sorted(GreenPool(2).imap(claim, companies)) == ["email_taken", "ok"]


def test_preferences_and_notice_recipients(rpc, bus_events) -> None:
    company = new_company(rpc)
    cid = company["customer_id"]
    admin = active_user(rpc, bus_events, cid, "license_admin")
    billing = active_user(rpc, bus_events, cid, "billing")
    recipients = rpc.auth("notice_recipients", cid, "installation_activated")
    assert [r["email"] for r in recipients] == [company["contact_email"], admin["email"]]
    assert set(recipients[1]) == {"user_id", "email", "name"}
    answer = as_user(
        admin,
        "update_notification_preferences",
        cid,
        admin["user_id"],
        {"preferences": {"installation_activated": False}},
    )
    assert answer["preferences"]["installation_activated"] is False
    assert answer["available"] == ["installation_activated", "license_expiring", "seats_exhausted"]
    recipients = rpc.auth("notice_recipients", cid, "installation_activated")
    assert [r["email"] for r in recipients] == [company["contact_email"]]
    rpc.error(
        "validation_error",
        "update_notification_preferences",
        cid,
        billing["user_id"],
        {"preferences": {"license_expiring": True}},
    )
    prefs = rpc.auth("get_notification_preferences", cid, billing["user_id"])
    assert prefs["preferences"]["license_expiring"] is False
    assert [r["email"] for r in rpc.auth("notice_recipients", cid, "payment_failed")] == [
        company["contact_email"],
        billing["email"],
    ]


# --- the audit trail ------------------------------------------------------------------------


def test_audit_events_name_the_acting_user_and_ride_the_changes_transaction(
    rpc, bus_events, tables
) -> None:
    company = new_company(rpc)
    cid = company["customer_id"]
    owner = contact_of(rpc, cid)
    user = as_user(
        owner, "invite_user", cid, {"email": unique_email(), "name": "C", "role": "viewer"}
    )
    accept(rpc, bus_events, user)
    as_user(owner, "update_user", cid, user["user_id"], {"role": "license_admin"})
    # a refused change rolls back with no trace, a refused login is committed with its trace
    with pytest.raises(PortalError):
        as_user(owner, "remove_user", cid, owner["user_id"])
    rpc.error("invalid_credentials", "login", {"login": user["email"], "password": "wrong one 1"})
    rows = audit_of(tables, cid)
    assert [row.action for row in rows] == [
        "user_invited",
        "invitation_accepted",
        "user_role_changed",
        "login_failed",
    ]
    by_owner = {"type": "user", "user_id": owner["user_id"], "email": owner["email"]}
    by_user = {"type": "user", "user_id": user["user_id"], "email": user["email"]}
    actors = [
        {"type": row.actor_type, "user_id": row.actor_user_id, "email": row.actor_email}
        for row in rows
    ]
    assert actors == [by_owner, by_user, by_owner, by_user]
    assert json.loads(rows[2].details) == {"old_role": "viewer", "new_role": "license_admin"}
    # one transaction wrote the change and its audit row (PostgreSQL's xmin is the ID of the
    # transaction that wrote a row version; the outbox row is updated again once published)
    with tables.connect() as connection:
        xids = [
            connection.execute(text(query), {"key": key}).scalar_one()
            for query, key in (
                ("SELECT xmin::text FROM users WHERE user_id = :key", user["user_id"]),
                ("SELECT xmin::text FROM audit_events WHERE event_id = :key", rows[2].event_id),
            )
        ]
    assert len(set(xids)) == 1, xids


def test_staff_calls_are_audited_as_staff_whatever_they_claim(rpc, tables) -> None:
    company = new_company(rpc)
    cid = company["customer_id"]
    user = rpc.auth("invite_user", cid, {"email": unique_email(), "name": "D", "role": "viewer"})
    [row] = audit_of(tables, cid)
    # a plain `guest` bus trusts everyone: no actor in the context is the system
    assert (row.actor_type, row.target_id) == ("system", user["user_id"])


def test_list_audit_events_pages_with_the_cursor(rpc, clock) -> None:
    company = new_company(rpc)
    cid = company["customer_id"]
    for _ in range(5):
        rpc.auth("login", {"login": cid, "password": PASSWORD})
        clock.advance(seconds=1)
    first = rpc.auth("list_audit_events", cid, {"limit": 3})
    assert [e["action"] for e in first] == ["login_succeeded"] * 3
    assert first[0]["at"] > first[-1]["at"]
    before = encode_cursor(datetime.fromisoformat(first[-1]["at"]), first[-1]["event_id"])
    second = rpc.auth("list_audit_events", cid, {"limit": 3, "before": before})
    assert len(second) == 2
    assert second[0]["at"] < first[-1]["at"]
    assert {e["event_id"] for e in first}.isdisjoint(e["event_id"] for e in second)
    contact = contact_of(rpc, cid)
    assert first[0]["actor"] == {
        "type": "user",
        "user_id": contact["user_id"],
        "email": contact["email"],
    }
    rpc.error("validation_error", "list_audit_events", cid, {"before": "not-a-cursor"})
    assert rpc.auth("list_audit_events", cid, {"action": "user_removed"}) == []


# --- the migration --------------------------------------------------------------------------

BEFORE_ISSUE_13 = "2f6c0d9e4a71"


@pytest.fixture
def old_database() -> Iterator[str]:
    name = f"lp_{infra.RUN_ID}_auth13_{uuid.uuid4().hex[:8]}"
    url = infra.create_database(name)
    yield url
    infra.drop_database(name)


def _upgrade(url: str, revision: str) -> None:
    engine = create_engine(url)
    config = alembic_config("auth", MIGRATIONS)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
    engine.dispose()


def test_the_migration_gives_existing_companies_their_contact_user(old_database) -> None:
    _upgrade(old_database, BEFORE_ISSUE_13)
    engine = create_engine(old_database)
    with engine.begin() as connection:
        for pk, password_hash in ((1, "$argon2id$stored"), (2, None), (3, "$argon2id$other")):
            connection.execute(
                text(
                    "INSERT INTO companies (id, customer_id, name, contact_name, contact_email,"
                    " password_hash, password_changed_at, created_at) VALUES (:id, :cid,"
                    " 'Acme', 'Ada', :email, :hash, now(), now())"
                ),
                {
                    "id": pk,
                    "cid": f"C900000{pk}",
                    "email": f"c{pk}@acme.test",
                    "hash": password_hash,
                },
            )
        connection.execute(
            text(
                "INSERT INTO sessions (company_id, token_hash, created_at, expires_at) VALUES"
                " (1, 's1', now(), now() + interval '1 hour'),"
                " (3, 's3', now(), now() + interval '1 hour')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO password_requests (id, request_id, purpose, status, login,"
                " company_id, created_at, expires_at) VALUES"
                " (1, 'r1', 'setup', 'open', NULL, 2, now(), now() + interval '7 days'),"
                " (2, 'r2', 'reset', 'queued', 'c1@acme.test', NULL, now(), now())"
            )
        )
        connection.execute(
            text(
                "INSERT INTO password_tokens (company_id, request_pk, token_hash, purpose,"
                " created_at, expires_at) VALUES (2, 1, 't1', 'setup', now(),"
                " now() + interval '7 days')"
            )
        )
    _upgrade(old_database, "head")
    with engine.connect() as connection:
        users = connection.execute(text("SELECT * FROM users ORDER BY company_id")).all()
        sessions = dict(connection.execute(text("SELECT token_hash, user_pk FROM sessions")).all())
        requests = dict(
            connection.execute(text("SELECT request_id, user_pk FROM password_requests")).all()
        )
        tokens = connection.execute(text("SELECT user_pk FROM password_tokens")).scalars().all()
        nullable = dict(
            connection.execute(
                text(
                    "SELECT table_name, is_nullable FROM information_schema.columns"
                    " WHERE column_name = 'user_pk'"
                )
            ).all()
        )
    engine.dispose()
    assert [(u.company_id, u.email, u.role, u.status, u.is_contact) for u in users] == [
        (1, "c1@acme.test", "owner", "active", True),
        (2, "c2@acme.test", "owner", "invited", True),
        (3, "c3@acme.test", "owner", "active", True),
    ]
    assert len({u.user_id for u in users}) == 3
    assert all(re.fullmatch(r"U-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", u.user_id) for u in users)
    assert all(u.password_hash is None for u in users)  # the company's stays the company's
    pk = {u.company_id: u.id for u in users}
    assert sessions == {"s1": pk[1], "s3": pk[3]}
    assert requests == {"r1": pk[2], "r2": None}
    assert tokens == [pk[2]]
    assert nullable == {"sessions": "NO", "password_tokens": "NO", "password_requests": "YES"}
