"""Floating licenses over the real bus and PostgreSQL: seats held by leases, atomically across
instances; lapses without any timer; heartbeats racing the sweep; the scan once.

The containers share the test's `FixedClock` (conftest.py), so a test moves time instead of
waiting for a lease to lapse; a race between instances that disagree about the time gives
one of them a clock of its own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import eventlet
import pytest
from eventlet.event import Event
from eventlet.greenpool import GreenPool
from nameko.extensions import Entrypoint
from nameko.testing.services import replace_dependencies
from nameko.testing.utils import get_extension
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from common.audit import PRODUCT
from common.db import Db
from common.errors import PortalError
from common.rpc import standalone_client
from services.licensing import domain
from services.licensing.models import Lease
from services.licensing.repository import LicensingRepository
from services.licensing.schemas import LeaseRevokedEvent, SeatsExhaustedEvent
from services.licensing.service import LicensingService
from services.licensing.use_cases import leases
from tests.integration.licensing.support import Rpc, issue, issued_of, payload
from tests.support.fakes import FixedClock
from tests.support.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def floating(
    rpc: Rpc,
    customer: str,
    product: str,
    seats: int = 2,
    lease_seconds: int = 600,
    max_borrow_days: int | None = None,
    expires_at: str | None = None,
) -> tuple[str, str]:
    """Issue a floating license (staff) → (its ID, its activation password)."""
    body = {
        "customer_id": customer,
        "product": product,
        "seats": seats,
        "expires_at": expires_at,
        "model": "floating",
        "lease_seconds": lease_seconds,
    }
    if max_borrow_days is not None:
        body["max_borrow_days"] = max_borrow_days
    license = rpc("issue_license", body)
    password = rpc("get_license", license["license_id"], customer)["activation_password"]
    return license["license_id"], password


def call(container, method: str, *args: Any) -> Any:
    """Run `method` in this very container and answer its result (or raise its error).

    Unlike nameko's `entrypoint_hook`, whose waiter hands the first result of a method to
    every call waiting on it, concurrent calls each get their own.
    """
    done = Event()

    def handle_result(worker_ctx, result=None, exc_info=None):
        if exc_info is not None:
            done.send_exception(exc_info[1])
        else:
            done.send(result)
        return result, exc_info

    entrypoint = get_extension(container, Entrypoint, method_name=method)
    container.spawn_worker(entrypoint, args, {}, handle_result=handle_result)
    return done.wait()


def checkout(rpc: Rpc, license_id: str, password: str, index: int, **extra) -> dict:
    return rpc(
        "checkout", {**payload(license_id, password, f"inst-{index}", f"PC-{index}"), **extra}
    )


def live_leases(rpc: Rpc, license_id: str, customer: str) -> list[dict]:
    return rpc("list_leases", license_id, customer)


def history_of(rpc: Rpc, license_id: str, customer: str, type_: str) -> list[dict]:
    events = rpc("history", license_id, customer, 200)["events"]
    return [event for event in events if event["type"] == type_]


# --- the seat rule ---------------------------------------------------------------------------


def test_thirty_clients_on_two_instances_get_exactly_five_seats(
    another_licensing, rpc, licensing, company, product
) -> None:
    another_licensing()  # a second instance on the same queue and database
    license_id, password = floating(rpc, company, product, seats=5)

    def take(index: int) -> str:
        with standalone_client(timeout=30) as client:
            try:
                Rpc(client)("checkout", payload(license_id, password, f"m{index}", f"M{index}"))
            except PortalError as error:
                return error.code
        return "leased"

    outcomes = list(GreenPool(30).imap(take, range(30)))
    assert outcomes.count("leased") == 5, outcomes
    assert outcomes.count("no_seats_available") == 25, outcomes
    assert len(live_leases(rpc, license_id, company)) == 5
    assert rpc("get_license", license_id, company)["seats_in_use"] == 5
    assert len(history_of(rpc, license_id, company, "lease_refused")) == 25


def test_a_silent_lease_frees_its_seat_at_its_expiry_without_any_timer(
    clock, rpc, company, product
) -> None:
    license_id, password = floating(rpc, company, product, seats=1, lease_seconds=600)
    first = checkout(rpc, license_id, password, 1)
    assert first["created"] is True
    refused = rpc.error("no_seats_available", "checkout", payload(license_id, password, "inst-2"))
    assert [m["machine_name"] for m in refused.details["machines"]] == ["PC-1"]
    clock.advance(seconds=599)
    rpc.error("no_seats_available", "checkout", payload(license_id, password, "inst-2"))
    clock.advance(seconds=1)  # the lease's expiry: its seat is free, nothing has run
    assert rpc("get_license", license_id, company)["seats_in_use"] == 0
    second = checkout(rpc, license_id, password, 2)
    assert second["created"] is True
    # the check-out recorded the lapse (at the lease's expiry, by the system)
    [lapsed] = history_of(rpc, license_id, company, "lease_expired")
    assert lapsed["installation_id"] == "inst-1"
    assert lapsed["at"] == first["lease"]["expires_at"]
    assert lapsed["actor"] == {"type": "system"}
    # and the lapsed lease's machine hears so
    late = rpc.error("lease_expired", "heartbeat", first["lease"]["lease_id"], first["lease_token"])
    assert late.details["reason"] == "expired"
    assert late.details["ended_at"] == first["lease"]["expires_at"]


def test_a_heartbeat_keeps_the_seat_and_one_after_the_expiry_is_refused(
    clock, rpc, company, product
) -> None:
    license_id, password = floating(rpc, company, product, seats=1, lease_seconds=600)
    lease = checkout(rpc, license_id, password, 1)
    lease_id, token = lease["lease"]["lease_id"], lease["lease_token"]
    for _ in range(3):
        clock.advance(seconds=400)
        beat = rpc("heartbeat", lease_id, token)
        assert beat["lease"]["expires_at"] == (clock.now() + timedelta(seconds=600)).isoformat()
        assert rpc("validate", beat["certificate"])["code"] == "VALID"
    rpc.error("no_seats_available", "checkout", payload(license_id, password, "inst-2"))
    rpc.error("invalid_lease_token", "heartbeat", lease_id, "not-the-token")
    rpc.error("invalid_lease_token", "heartbeat", "LS-2222-2222", token)
    clock.advance(seconds=600)
    gone = rpc.error("lease_expired", "heartbeat", lease_id, token)
    assert gone.details == {
        "lease_id": lease_id,
        "reason": "expired",
        "ended_at": beat["lease"]["expires_at"],
    }
    assert rpc("validate", beat["certificate"])["code"] == "LEASE_EXPIRED"
    # heartbeats write no history
    events = rpc("history", license_id, company, 200)["events"]
    assert [event["type"] for event in events] == ["lease_refused", "lease_checked_out"]


def test_a_lease_never_outlives_its_license(clock, rpc, company, product) -> None:
    end = clock.now() + timedelta(minutes=15)
    license_id, password = floating(
        rpc, company, product, lease_seconds=600, expires_at=end.isoformat()
    )
    lease = checkout(rpc, license_id, password, 1)
    clock.advance(minutes=6)
    beat = rpc("heartbeat", lease["lease"]["lease_id"], lease["lease_token"])
    assert beat["lease"]["expires_at"] == end.isoformat()
    rpc("suspend_license", license_id)
    rpc.error("license_suspended", "heartbeat", lease["lease"]["lease_id"], lease["lease_token"])
    rpc("resume_license", license_id)
    clock.advance(minutes=9)
    rpc.error("license_expired", "heartbeat", lease["lease"]["lease_id"], lease["lease_token"])
    assert rpc("validate", beat["certificate"])["code"] == "EXPIRED"


def test_check_in_frees_the_seat_at_once(clock, rpc, company, product) -> None:
    license_id, password = floating(rpc, company, product, seats=1)
    lease = checkout(rpc, license_id, password, 1)
    lease_id, token = lease["lease"]["lease_id"], lease["lease_token"]
    ended = rpc("checkin", lease_id, token)
    assert ended["status"] == "checked_in"
    assert ended["ended_at"] == clock.now().isoformat()
    assert rpc("checkin", lease_id, token) == ended  # again: unchanged, no error
    assert checkout(rpc, license_id, password, 2)["created"] is True
    gone = rpc.error("lease_expired", "heartbeat", lease_id, token)
    assert gone.details["reason"] == "checked_in"
    assert rpc("validate", lease["certificate"])["code"] == "LEASE_EXPIRED"
    assert len(history_of(rpc, license_id, company, "lease_checked_in")) == 1


def test_the_same_installation_gets_its_lease_back_with_a_new_token(rpc, company, product) -> None:
    license_id, password = floating(rpc, company, product, seats=1)
    first = checkout(rpc, license_id, password, 1)
    again = checkout(rpc, license_id, password, 1)
    assert again["created"] is False
    assert again["lease"]["lease_id"] == first["lease"]["lease_id"]
    assert again["lease_token"] != first["lease_token"]
    rpc.error("invalid_lease_token", "heartbeat", first["lease"]["lease_id"], first["lease_token"])
    assert rpc("heartbeat", again["lease"]["lease_id"], again["lease_token"])["lease"][
        "status"
    ] == ("live")
    assert len(history_of(rpc, license_id, company, "lease_checked_out")) == 1


def test_a_borrowed_lease_needs_no_heartbeat_until_its_end(clock, rpc, company, product) -> None:
    license_id, password = floating(rpc, company, product, seats=1, lease_seconds=600)
    until = clock.now() + timedelta(days=3)
    borrowed = checkout(rpc, license_id, password, 1, borrow_until=until.isoformat())
    assert borrowed["lease"]["borrowed"] is True
    assert borrowed["lease"]["expires_at"] == until.isoformat()
    # a heartbeat (none is needed) never shortens the borrowing
    beat = rpc("heartbeat", borrowed["lease"]["lease_id"], borrowed["lease_token"])
    assert beat["lease"]["expires_at"] == until.isoformat()
    clock.advance(days=2, hours=23)  # many lease periods, not one heartbeat
    assert rpc("validate", borrowed["certificate"])["code"] == "VALID"
    refused = rpc.error("no_seats_available", "checkout", payload(license_id, password, "inst-2"))
    assert refused.details["machines"] == [
        {"machine_name": "PC-1", "expires_at": until.isoformat(), "borrowed": True}
    ]
    clock.advance(hours=1)
    assert rpc("validate", borrowed["certificate"])["code"] == "LEASE_EXPIRED"
    assert checkout(rpc, license_id, password, 2)["created"] is True


def test_borrowing_beyond_the_limit_is_refused(clock, rpc, company, product) -> None:
    license_id, password = floating(rpc, company, product, max_borrow_days=2)
    too_long = (clock.now() + timedelta(days=2, seconds=1)).isoformat()
    refused = rpc.error(
        "borrow_not_allowed",
        "checkout",
        {**payload(license_id, password), "borrow_until": too_long},
    )
    assert refused.details == {
        "max_borrow_days": 2,
        "latest": (clock.now() + timedelta(days=2)).isoformat(),
    }
    past = (clock.now() - timedelta(seconds=1)).isoformat()
    rpc.error(
        "validation_error", "checkout", {**payload(license_id, password), "borrow_until": past}
    )
    none_allowed, password2 = floating(rpc, company, product, max_borrow_days=0)
    soon = (clock.now() + timedelta(hours=1)).isoformat()
    rpc.error(
        "borrow_not_allowed", "checkout", {**payload(none_allowed, password2), "borrow_until": soon}
    )


def test_revocation_makes_the_next_heartbeat_fail(rpc, company, product, bus_events) -> None:
    license_id, password = floating(rpc, company, product, seats=1)
    lease = checkout(rpc, license_id, password, 1)
    lease_id = lease["lease"]["lease_id"]
    rpc.error("lease_not_found", "revoke_lease", company, license_id, "LS-2222-2222")
    revoked = rpc("revoke_lease", company, license_id, lease_id)
    assert revoked["status"] == "revoked"
    gone = rpc.error("lease_expired", "heartbeat", lease_id, lease["lease_token"])
    assert gone.details["reason"] == "revoked"
    assert rpc("revoke_lease", company, license_id, lease_id) == revoked  # again: unchanged
    assert checkout(rpc, license_id, password, 2)["created"] is True
    [event] = bus_events.wait_for("lease_revoked")
    LeaseRevokedEvent().load(event)
    assert event["lease_id"] == lease_id and event["machine_name"] == "PC-1"
    [fact] = rpc("list_audit_events", company, {"action": "lease_revoked"})
    assert fact["details"]["lease_id"] == lease_id
    assert len(history_of(rpc, license_id, company, "lease_revoked")) == 1


def test_each_model_refuses_the_other_ones_calls(rpc, company, product) -> None:
    floating_id, floating_password = floating(rpc, company, product)
    refused = rpc.error("floating_license", "activate", payload(floating_id, floating_password))
    assert refused.details == {"license_id": floating_id}
    locked_id, locked_password = issue(rpc, company, product)
    rpc.error("node_locked_license", "checkout", payload(locked_id, locked_password))
    assert rpc("list_leases", locked_id, company) == []
    detail = rpc("get_license", locked_id, company)
    assert (detail["model"], detail["leases"], detail["usage"]) == ("node_locked", [], None)


def test_license_views_of_a_floating_license(clock, rpc, company, product) -> None:
    license_id, password = floating(rpc, company, product, seats=3, lease_seconds=900)
    for index in range(2):
        checkout(rpc, license_id, password, index)
    detail = rpc("get_license", license_id, company)
    assert (detail["model"], detail["lease_seconds"], detail["max_borrow_days"]) == (
        "floating",
        900,
        7,
    )
    assert detail["seats_in_use"] == 2
    assert [lease["machine_name"] for lease in detail["leases"]] == ["PC-0", "PC-1"]
    assert detail["usage"] == {
        "peak_30d": 2,
        "days": [{"date": clock.now().date().isoformat(), "peak": 2}],
    }
    [listed] = [item for item in rpc("list_licenses", company) if item["license_id"] == license_id]
    assert (listed["model"], listed["seats_in_use"]) == ("floating", 2)


# --- races and the scan ----------------------------------------------------------------------


def test_heartbeats_racing_the_sweep_never_leave_more_than_seats_live(
    config, container_factory, clock, rpc, licensing, company, product
) -> None:
    """Two instances that disagree about the time: for the heartbeating one the leases have a
    second to go, for the checking-out one they lapsed a second ago. Whoever wins each
    lease's row, never more than `seats` leases are live."""
    seats = 4
    license_id, password = floating(rpc, company, product, seats=seats, lease_seconds=60)
    held = [checkout(rpc, license_id, password, index) for index in range(seats)]
    expiry = clock.now() + timedelta(seconds=60)

    def instance(at):
        container = container_factory(LicensingService, config)
        replace_dependencies(container, clock=FixedClock(at))
        container.start()
        return container

    early = instance(expiry - timedelta(seconds=1))
    late = instance(expiry + timedelta(seconds=1))

    def beat(lease: dict) -> str:
        try:
            call(early, "heartbeat", lease["lease"]["lease_id"], lease["lease_token"])
        except PortalError as error:
            return error.code
        return "kept"

    def take(index: int) -> str:
        try:
            call(late, "checkout", payload(license_id, password, f"new-{index}", f"New {index}"))
        except PortalError as error:
            return error.code
        return "leased"

    pool = GreenPool(20)
    beats = [pool.spawn(beat, lease) for lease in held]
    takes = [pool.spawn(take, index) for index in range(seats * 2)]
    kept = [thread.wait() for thread in beats]
    taken = [thread.wait() for thread in takes]
    assert set(kept) <= {"kept", "lease_expired"}, kept
    assert set(taken) <= {"leased", "no_seats_available"}, taken
    # each lease either lived on or gave its seat to a newcomer, never both
    assert kept.count("kept") + taken.count("leased") <= seats, (kept, taken)
    clock.at = expiry + timedelta(seconds=1)  # as the late instance sees it
    live = live_leases(rpc, license_id, company)
    assert len(live) == kept.count("kept") + taken.count("leased") <= seats
    assert len(history_of(rpc, license_id, company, "lease_expired")) == kept.count("lease_expired")


def waiting_on(engine, pid: int) -> int:
    """How many backends wait for a lock that the backend `pid` holds."""
    with engine.connect() as connection:
        return connection.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
            {"pid": pid},
        )


def test_a_lease_checked_in_while_its_installation_checks_out_again_is_not_handed_back(
    config, clock, rpc, company, product
) -> None:
    """A check-in locks the lease row only: it may end the lease after a check-out of the
    same installation counted it live. That check-out waits for the lease row, finds it
    ended and takes a new lease; the ended row keeps its token."""
    license_id, password = floating(rpc, company, product, seats=1)
    first = checkout(rpc, license_id, password, 1)
    lease_id, token = first["lease"]["lease_id"], first["lease_token"]
    engine = create_engine(config["LICENSING_DATABASE_URL"])

    def check_out_again() -> dict:
        with standalone_client(timeout=30) as client:
            return checkout(Rpc(client), license_id, password, 1)

    try:
        with Db(sessionmaker(bind=engine, expire_on_commit=False)).transaction() as session:
            # the check-in holds the lease row; its change is written at the commit below
            assert leases.checkin(
                LicensingRepository(session), lease_id, token, PRODUCT, clock.now()
            )
            pid = session.scalar(text("SELECT pg_backend_pid()"))
            again = eventlet.spawn(check_out_again)
            eventually(lambda: waiting_on(engine, pid), what="the check-out waiting for the lease")
        with eventlet.Timeout(20):
            answer = again.wait()
        with engine.connect() as connection:
            ended = connection.execute(
                select(Lease.status, Lease.token_hash).where(Lease.lease_id == lease_id)
            ).one()
    finally:
        engine.dispose()
    assert answer["created"] is True
    assert answer["lease"]["lease_id"] != lease_id
    assert tuple(ended) == (domain.LEASE_CHECKED_IN, domain.lease_token_hash(token))
    assert [lease["lease_id"] for lease in live_leases(rpc, license_id, company)] == [
        answer["lease"]["lease_id"]
    ]
    assert rpc("heartbeat", answer["lease"]["lease_id"], answer["lease_token"])
    assert len(history_of(rpc, license_id, company, "lease_checked_out")) == 2


def test_a_heartbeat_needs_no_license_row_lock_and_writes_nothing_but_the_lease(
    config, clock, rpc, company, product
) -> None:
    """Another transaction holds the license row (as a check-out, a revocation or staff do):
    a heartbeat completes all the same, within its call's deadline, and adds no history,
    audit fact or event."""
    license_id, password = floating(rpc, company, product, lease_seconds=600)
    lease = checkout(rpc, license_id, password, 1)
    clock.advance(seconds=200)
    counts = text(
        "SELECT (SELECT count(*) FROM history h JOIN licenses l ON l.id = h.license_pk"
        "        WHERE l.license_id = :license_id),"
        " (SELECT count(*) FROM audit_events WHERE customer_id = :customer_id),"
        " (SELECT count(*) FROM event_outbox WHERE payload LIKE '%' || :license_id || '%')"
    )
    params = {"license_id": license_id, "customer_id": company}
    engine = create_engine(config["LICENSING_DATABASE_URL"])
    try:
        with engine.connect() as holder:
            holder.execute(
                text("SELECT id FROM licenses WHERE license_id = :license_id FOR UPDATE"), params
            )
            before = holder.execute(counts, params).one()
            with standalone_client(timeout=5) as client:  # the deadline: it never waits
                beat = Rpc(client)("heartbeat", lease["lease"]["lease_id"], lease["lease_token"])
            after = holder.execute(counts, params).one()
            holder.rollback()
    finally:
        engine.dispose()
    assert beat["lease"]["expires_at"] == (clock.now() + timedelta(seconds=600)).isoformat()
    assert tuple(after) == tuple(before)


def test_a_new_lease_is_refused_on_a_taken_id_and_fails_on_any_other_taken_key(
    config, clock, rpc, company, product
) -> None:
    """`add_lease` on PostgreSQL: a lease ID already taken answers False (draw another);
    a token hash already taken, or a second live lease of one installation, is an error."""
    license_id, password = floating(rpc, company, product, seats=5)
    held = checkout(rpc, license_id, password, 1)["lease"]
    engine = create_engine(config["LICENSING_DATABASE_URL"])
    db = Db(sessionmaker(bind=engine, expire_on_commit=False))

    def add(**changes: Any) -> bool:
        with db.transaction() as session:
            current = session.scalar(select(Lease).where(Lease.lease_id == held["lease_id"]))
            values = {column.key: getattr(current, column.key) for column in Lease.__table__.c}
            values.update({"id": None, "lease_id": "LS-4444-4444", **changes})
            added = LicensingRepository(session).add_lease(Lease(**values))
            session.rollback()
            return added

    try:
        assert add(lease_id=held["lease_id"], token_hash="f" * 64, installation_id="x") is False
        with pytest.raises(IntegrityError, match="token_hash"):
            add(installation_id="inst-other")
        with pytest.raises(IntegrityError, match="uq_leases_live_installation"):
            add(token_hash="f" * 64)
        assert add(token_hash="f" * 64, installation_id="inst-other") is True
    finally:
        engine.dispose()


def test_only_a_heartbeats_own_transaction_skips_waiting_for_the_disk(
    config, clock, rpc, company, product
) -> None:
    """`repository.NOT_DURABLE`: a heartbeat that matched commits with synchronous_commit off;
    an unmatched one, and the next transaction on the same connection, keep the default."""
    license_id, password = floating(rpc, company, product)
    lease = checkout(rpc, license_id, password, 1)
    lease_id = lease["lease"]["lease_id"]
    token_hash = domain.lease_token_hash(lease["lease_token"])
    # a pool of one connection: every transaction below runs on the same session
    engine = create_engine(config["LICENSING_DATABASE_URL"], pool_size=1, max_overflow=0)
    show = text("SHOW synchronous_commit")
    try:
        db = Db(sessionmaker(bind=engine, expire_on_commit=False))
        with db.transaction() as session:
            assert LicensingRepository(session).beat(lease_id, "0" * 64, clock.now()) is None
            assert session.scalar(show) == "on"
        with db.transaction() as session:
            assert session.scalar(show) == "on"
            assert LicensingRepository(session).beat(lease_id, token_hash, clock.now())
            assert session.scalar(show) == "off"
        with db.transaction() as session:
            assert session.scalar(show) == "on"
    finally:
        engine.dispose()


def test_the_scan_records_each_lapse_once_with_two_scanners(
    another_licensing, clock, rpc, licensing, company, product
) -> None:
    second = another_licensing()
    license_id, password = floating(rpc, company, product, seats=6, lease_seconds=60)
    for index in range(5):
        checkout(rpc, license_id, password, index)
    clock.advance(seconds=61)

    def scan(container) -> int:
        return call(container, "scan_leases")["expired"]

    pool = GreenPool(6)
    counts = list(pool.imap(scan, [licensing, second, licensing, second, licensing, second]))
    # the run's other tests may leave lapsed leases of their own in the database
    assert sum(counts) >= 5, counts
    assert len(history_of(rpc, license_id, company, "lease_expired")) == 5
    facts = rpc("list_audit_events", company, {"action": "lease_expired"})
    assert len(facts) == 5
    assert {fact["actor"]["type"] for fact in facts} == {"system"}
    assert rpc("scan_leases") == {"expired": 0}  # however many scanners come after
    assert [item["status"] for item in rpc("list_leases", license_id, company, True)] == [
        "expired"
    ] * 5


def test_the_timer_scans_at_the_configured_interval(
    config, another_licensing, clock, rpc, licensing, company, product
) -> None:
    another_licensing({**config, "LICENSING_LEASE_SCAN_SECONDS": 0.2})
    license_id, password = floating(rpc, company, product, lease_seconds=60)
    checkout(rpc, license_id, password, 1)
    clock.advance(seconds=61)
    eventually(
        lambda: history_of(rpc, license_id, company, "lease_expired"), what="the timer's pass"
    )
    assert len(history_of(rpc, license_id, company, "lease_expired")) == 1


def test_all_seats_in_use_is_told_at_most_once_a_day(
    clock, rpc, company, product, bus_events
) -> None:
    license_id, password = floating(rpc, company, product, seats=1, max_borrow_days=30)
    until = (clock.now() + timedelta(days=10)).isoformat()
    checkout(rpc, license_id, password, 1, borrow_until=until)
    for index in range(3):
        rpc.error("no_seats_available", "checkout", payload(license_id, password, f"x{index}"))
    clock.advance(hours=23, minutes=59)
    rpc.error("no_seats_available", "checkout", payload(license_id, password, "x3"))
    clock.advance(minutes=1)
    rpc.error("no_seats_available", "checkout", payload(license_id, password, "x4"))
    # a sentinel published after the refusals: once it is here, their events are too
    sentinel, _ = issue(rpc, company, product)
    bus_events.wait_until(lambda events: issued_of(events, sentinel))
    told = [e for e in bus_events.of("seats_exhausted") if e["license_id"] == license_id]
    assert len(told) == 2, told
    for event in told:
        SeatsExhaustedEvent().load(event)
    assert told[0]["machines"] == [{"machine_name": "PC-1", "expires_at": until, "borrowed": True}]
    assert told[0]["seats"] == 1 and told[0]["customer_id"] == company
