"""common.audit: audit rows commit with their change, read back newest first, merge into one
trail with one cursor, and name who acted as the bus vouches for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, Integer, String, Table, select
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from common import audit
from common.audit import Actor, ActorInfo, AuditEventColumns
from common.db import Db, make_engine
from common.errors import Conflict, ValidationFailed
from common.outbox import outbox_table
from common.unit_of_work import Outcome, UnitOfWork

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ADA = Actor("user", user_id="U-AAAA-BBBB", email="ada@acme.test")


class Base(DeclarativeBase):
    pass


class AuditEvent(AuditEventColumns, Base):
    pass


things = Table(
    "things", Base.metadata, Column("id", Integer, primary_key=True), Column("name", String(50))
)
event_outbox = outbox_table(Base.metadata)


class Repo:
    def __init__(self, session: Session) -> None:
        self.session = session


@pytest.fixture
def db(tmp_path) -> Db:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    Base.metadata.create_all(engine)
    return Db(sessionmaker(bind=engine, expire_on_commit=False))


def _uow(db: Db) -> UnitOfWork[Repo]:
    return UnitOfWork(db, Repo, event_outbox, lambda *_: None, audit_table=AuditEvent)


def _rename(repo: Repo, name: str, at: datetime, fail: bool = False) -> Outcome:
    repo.session.execute(things.insert().values(name=name))
    if fail:
        raise Conflict("refused after the change")
    fact = audit.entry(
        "C1234567", ADA, "license_extended", ("license", "L-AAAA-BBBB"), at, name=name
    )
    return Outcome(name, [("thing_renamed", {"name": name})], audit=[fact])


def _rows(db: Db) -> list[AuditEvent]:
    with db.transaction() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_an_audit_row_commits_with_its_change(db):
    _uow(db).run(_rename, "one", T0)
    (row,) = _rows(db)
    assert (row.customer_id, row.action, row.actor_type, row.actor_email) == (
        "C1234567",
        "license_extended",
        "user",
        "ada@acme.test",
    )
    assert (row.target_type, row.target_id) == ("license", "L-AAAA-BBBB")


def test_no_audit_row_without_its_change(db):
    with pytest.raises(Conflict):
        _uow(db).run(_rename, "two", T0, True)
    assert _rows(db) == []


def test_an_audit_without_a_table_is_a_programming_error(db):
    uow = UnitOfWork(db, Repo, event_outbox, lambda *_: None)
    with pytest.raises(TypeError):
        uow.run(_rename, "three", T0)
    assert _rows(db) == []


def test_only_known_actions_are_recorded():
    with pytest.raises(ValueError):
        audit.entry("C1234567", ADA, "made_up", ("license", None), T0)


def _fill(db: Db, count: int, step: timedelta = timedelta(minutes=1)) -> None:
    for index in range(count):
        _uow(db).run(_rename, f"n{index}", T0 + index * step)


def test_pages_are_newest_first_and_the_cursor_continues_exactly(db):
    _fill(db, 7)
    seen: list[str] = []
    before = None
    while True:
        query = audit.AuditQuery("C1234567", limit=3, before=before)
        with db.transaction() as session:
            page = audit.page(session, AuditEvent, query)
        merged = audit.merge([page], 3)
        seen += [event["details"]["name"] for event in merged["events"]]
        if merged["next_before"] is None:
            break
        before = audit.decode_cursor(merged["next_before"])
    assert seen == [f"n{index}" for index in reversed(range(7))]


def test_events_at_the_same_instant_are_neither_lost_nor_repeated_across_pages(db):
    _fill(db, 5, step=timedelta(0))
    names = []
    before = None
    for _ in range(5):
        with db.transaction() as session:
            page = audit.page(session, AuditEvent, audit.AuditQuery("C1234567", 2, before))
        merged = audit.merge([page], 2)
        names += [event["details"]["name"] for event in merged["events"]]
        if merged["next_before"] is None:
            break
        before = audit.decode_cursor(merged["next_before"])
    assert sorted(names) == [f"n{index}" for index in range(5)]


def test_another_company_sees_nothing(db):
    _fill(db, 2)
    with db.transaction() as session:
        assert audit.page(session, AuditEvent, audit.AuditQuery("C7654321")) == []


def test_filters_by_user_action_and_time(db):
    _fill(db, 4)
    since = T0 + timedelta(minutes=1)
    until = T0 + timedelta(minutes=3)
    with db.transaction() as session:
        ranged = audit.page(
            session, AuditEvent, audit.AuditQuery("C1234567", since=since, until=until)
        )
        other_user = audit.page(
            session, AuditEvent, audit.AuditQuery("C1234567", user_id="U-ZZZZ-ZZZZ")
        )
        action = audit.page(session, AuditEvent, audit.AuditQuery("C1234567", action="purchase"))
    assert [event["details"]["name"] for event in ranged] == ["n2", "n1"]
    assert other_user == [] and action == []


def test_merge_interleaves_the_parts_and_knows_when_a_part_may_have_more():
    def event(minute: int, event_id: str) -> dict:
        return {"event_id": event_id, "at": (T0 + timedelta(minutes=minute)).isoformat()}

    auth_part = [event(9, "a9"), event(5, "a5")]
    licensing_part = [event(8, "l8"), event(7, "l7")]
    merged = audit.merge([auth_part, licensing_part, []], 2)
    assert [e["event_id"] for e in merged["events"]] == ["a9", "l8"]
    assert audit.decode_cursor(merged["next_before"]) == (T0 + timedelta(minutes=8), "l8")
    last = audit.merge([[event(1, "a1")], []], 2)
    assert last["next_before"] is None


def test_query_from_reads_the_gateway_arguments_and_names_each_bad_one():
    cursor = audit.encode_cursor(T0, "abc")
    query = audit.query_from(
        "C1234567",
        {"limit": 10, "before": cursor, "action": "purchase", "since": "2026-12-01"},
    )
    assert query.before == (T0, "abc") and query.limit == 10
    assert query.since == datetime(2026, 12, 1, tzinfo=UTC)
    assert audit.query_from("C1234567", audit.query_args(query)) == query
    with pytest.raises(ValidationFailed) as refused:
        audit.query_from(
            "C1234567", {"limit": 0, "before": "%%%", "action": "nope", "until": "yesterday"}
        )
    assert set(refused.value.details["fields"]) == {"limit", "before", "action", "until"}


@pytest.mark.parametrize("cursor", ["", "x" * 300, "bm90IGEgY3Vyc29y", "MjAyNi0xMi0wMnw="])
def test_a_foreign_cursor_is_refused(cursor):
    with pytest.raises(ValueError):
        audit.decode_cursor(cursor)


def test_staff_callers_are_staff_whatever_they_wrote():
    context = {"bus_user": "portal-staff", "actor": ADA.to_dict()}
    assert ActorInfo(context).current() == Actor("staff")
    named = {"bus_user": "portal-staff", "actor": {"type": "staff", "name": "grace"}}
    assert ActorInfo(named).current() == Actor("staff", name="grace")


def test_the_gateway_cannot_act_as_staff_but_names_its_user():
    forged = {"bus_user": "portal-gateway", "actor": {"type": "staff"}}
    assert ActorInfo(forged).current(audit.PRODUCT) == audit.PRODUCT
    user = {"bus_user": "portal-gateway", "actor": ADA.to_dict()}
    assert ActorInfo(user).current() == ADA


def test_without_an_actor_the_default_acts():
    assert ActorInfo({}).current() == audit.SYSTEM
    assert ActorInfo({"actor": {"type": "wizard"}}).current(audit.PRODUCT) == audit.PRODUCT


def test_long_details_are_cut_inside_the_json_never_through_it(db):
    reason = "🔒" * 5000

    def suspend(repo: Repo) -> Outcome:
        fact = audit.entry(
            "C1234567", ADA, "license_suspended", ("license", "L-AAAA-BBBB"), T0, reason=reason
        )
        return Outcome(None, audit=[fact])

    _uow(db).run(suspend)
    with db.transaction() as session:
        (event,) = audit.page(session, AuditEvent, audit.AuditQuery("C1234567"))
    assert event["details"]["truncated"] is True
    assert reason.startswith(event["details"]["reason"]) and event["details"]["reason"]


def test_a_stored_row_that_is_not_json_still_shows(db):
    _fill(db, 1)
    with db.transaction() as session:
        session.execute(AuditEvent.__table__.update().values(details="{broken"))
    with db.transaction() as session:
        (event,) = audit.page(session, AuditEvent, audit.AuditQuery("C1234567"))
    assert event["details"] == {"unreadable": True}


def test_the_settled_actor_is_what_the_next_call_carries():
    class Worker:
        data = {"bus_user": "portal-gateway", "actor": {"type": "staff"}}

    audit.AuditActor().get_dependency(Worker)
    assert "actor" not in Worker.data  # a forged staff actor goes no further
    Worker.data = {"bus_user": "portal-staff", "actor": ADA.to_dict()}
    audit.AuditActor().get_dependency(Worker)
    assert Worker.data["actor"] == {"type": "staff"}


def test_a_user_filter_matches_whatever_the_case_it_was_typed_in():
    assert audit.query_from("C1234567", {"user_id": " u-aaaa-bbbb "}).user_id == "U-AAAA-BBBB"
