"""When each machine was last seen, and a license's nickname and note, on the real bus and
PostgreSQL with the real auth (fixtures: conftest.py).

`last_seen_at` is written at activation and then by a validation at most once an hour: a
validation that finds it fresh leaves the row as it is (the row's `xmin`, the transaction
that wrote its current version, does not move). The instance's clock is the test's
`FixedClock`, moved to cross the hour.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import eventlet
import pytest
from sqlalchemy import Engine, create_engine, text

from common.rpc import standalone_client
from common.timeutil import iso
from services.licensing import domain
from tests.integration.licensing.support import Rpc, issue, payload, redeliver_as
from tests.support.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def installation_row(sql, license_id: str, installation_id: str = "inst-1") -> Any:
    """The active installation's `last_seen_at` and `xmin` (its row version's writer)."""
    [row] = sql(
        "SELECT i.last_seen_at, i.xmin::text AS version FROM installations i "
        "JOIN licenses l ON l.id = i.license_pk "
        "WHERE l.license_id = :l AND i.installation_id = :i AND i.status = 'active'",
        l=license_id,
        i=installation_id,
    )
    return row


def test_last_seen_is_set_at_activation_and_refreshed_at_most_hourly(
    rpc, company, product, clock, sql
) -> None:
    license_id, password = issue(rpc, company, product)
    certificate = rpc("activate", payload(license_id, password))["certificate"]
    activated = installation_row(sql, license_id)
    assert activated.last_seen_at == clock.now()
    [listed] = rpc("list_installations", license_id, company)
    assert listed["last_seen_at"] == iso(clock.now())

    # within the hour: validations leave the row untouched (no new row version)
    for minutes in (1, 30, 29):  # the last one exactly an hour after the activation
        clock.advance(minutes=minutes)
        assert rpc("validate", certificate)["valid"] is True
        assert installation_row(sql, license_id) == activated

    # past the hour: the first validation writes it, the next ones of the hour do not
    clock.advance(seconds=1)
    rpc("validate", certificate)
    seen = installation_row(sql, license_id)
    assert seen.last_seen_at == clock.now() and seen.version != activated.version
    clock.advance(minutes=59)
    rpc("validate", certificate)
    assert installation_row(sql, license_id) == seen
    detail = rpc("get_license", license_id, company)
    assert detail["installations"][0]["last_seen_at"] == iso(seen.last_seen_at)


def test_a_reactivation_and_an_offline_activation_set_last_seen(
    rpc, company, product, clock, sql
) -> None:
    license_id, password = issue(rpc, company, product)
    rpc("activate", payload(license_id, password))
    clock.advance(minutes=5)  # within the hour: an activation writes it all the same
    again = rpc("activate", payload(license_id, password, machine="PC-1 renamed"))
    assert again["created"] is False
    assert again["activation"]["last_seen_at"] == iso(clock.now())
    assert installation_row(sql, license_id).last_seen_at == clock.now()

    clock.advance(minutes=5)
    request = json.dumps(
        {
            "type": "activation_request",
            "version": 1,
            "license_id": license_id,
            "installation_id": "air-gapped-1",
            "machine_name": "LAB-1",
            "product": product,
            "requested_at": iso(clock.now()),
            "nonce": "n" * 32,
        }
    )
    offline = rpc("activate_offline", company, license_id, request)
    assert offline["activation"]["last_seen_at"] == iso(clock.now())
    assert installation_row(sql, license_id, "air-gapped-1").last_seen_at == clock.now()


@contextmanager
def counted_writes(engine: Engine, installation_pk: int) -> Iterator[Callable[[], list]]:
    """`writes()`: each committed UPDATE of the installation's `last_seen_at`, as PostgreSQL
    itself saw it (a trigger on the row, dropped afterwards), whatever wrote it: the new
    value of each write, oldest first."""
    name = f"seen_writes_{uuid.uuid4().hex[:12]}"
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {name} (n serial, last_seen_at timestamptz)"))
        connection.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"INSERT INTO {name} (last_seen_at) VALUES (NEW.last_seen_at); RETURN NULL; "
                "END $$"
            )
        )
        connection.execute(
            text(
                f"CREATE TRIGGER {name} AFTER UPDATE OF last_seen_at ON installations "
                f"FOR EACH ROW WHEN (NEW.id = {int(installation_pk)}) EXECUTE FUNCTION {name}()"
            )
        )

    def writes() -> list:
        with engine.connect() as connection:
            query = text(f"SELECT last_seen_at FROM {name} ORDER BY n")
            return list(connection.execute(query).scalars())

    try:
        yield writes
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP TRIGGER {name} ON installations"))
            connection.execute(text(f"DROP FUNCTION {name}()"))
            connection.execute(text(f"DROP TABLE {name}"))


def waiting_for_locks(engine: Engine) -> int:
    """How many backends of licensing's database wait for a lock another one holds."""
    with engine.connect() as connection:
        return connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND cardinality(pg_blocking_pids(pid)) > 0"
            )
        )


def test_concurrent_stale_validations_write_last_seen_once(
    config, rpc, company, product, clock, sql
) -> None:
    """Eight validations find `last_seen_at` stale at the same moment: the test holds the
    row until all eight have read it (stale) and wait to write it, then lets them go. The
    guard, read again after the wait, lets the first write and the seven others write
    nothing; PostgreSQL counts the writes (`counted_writes`), so an unguarded write of all
    eight (each leaving the same value) fails here."""
    license_id, password = issue(rpc, company, product)
    certificate = rpc("activate", payload(license_id, password))["certificate"]
    [(pk,)] = sql(
        "SELECT i.id FROM installations i JOIN licenses l ON l.id = i.license_pk "
        "WHERE l.license_id = :l",
        l=license_id,
    )
    clock.advance(hours=2)
    engine = create_engine(config["LICENSING_DATABASE_URL"])

    def validate(_: int) -> bool:
        with standalone_client(timeout=30) as client:
            return Rpc(client)("validate", certificate)["valid"]

    try:
        with counted_writes(engine, pk) as writes:
            with engine.begin() as holder:
                holder.execute(
                    text("SELECT 1 FROM installations WHERE id = :pk FOR UPDATE"), {"pk": pk}
                )
                validations = [eventlet.spawn(validate, index) for index in range(8)]
                eventually(
                    lambda: waiting_for_locks(engine) == 8,
                    timeout=20,
                    what="eight validations waiting to write last_seen_at",
                )
            with eventlet.Timeout(30):
                assert [thread.wait() for thread in validations] == [True] * 8
            assert writes() == [clock.now()]
    finally:
        engine.dispose()
    assert installation_row(sql, license_id).last_seen_at == clock.now()


# --- nickname and note ------------------------------------------------------------------------


def test_a_user_labels_a_license_and_the_trail_says_who(
    rpc, as_user, company, product, sql
) -> None:
    license_id, _ = issue(rpc, company, product)
    answer = as_user(
        "label_license", license_id, company, {"nickname": " Design office ", "note": "Finance."}
    )
    assert (answer["nickname"], answer["note"]) == ("Design office", "Finance.")
    [listed] = rpc("list_licenses", company)
    assert (listed["nickname"], listed["note"]) == ("Design office", "Finance.")
    detail = rpc("get_license", license_id, company)
    assert (detail["nickname"], detail["note"]) == ("Design office", "Finance.")
    as_user("label_license", license_id, company, {"note": ""})
    assert rpc("get_license", license_id, company)["nickname"] == "Design office"
    rows = sql(
        "SELECT actor_type, actor_user_id, details FROM audit_events "
        "WHERE customer_id = :c AND action = 'license_labelled' ORDER BY id",
        c=company,
    )
    assert [(r.actor_type, r.actor_user_id, json.loads(r.details)) for r in rows] == [
        ("user", "U-AAAA-BBBB", {"nickname": "Design office", "note": "Finance."}),
        ("user", "U-AAAA-BBBB", {"note": None}),
    ]
    stored = sql("SELECT nickname, note FROM licenses WHERE license_id = :l", l=license_id)
    assert [tuple(row) for row in stored] == [("Design office", None)]


def test_labels_are_validated_naming_the_field(rpc, company, product) -> None:
    license_id, _ = issue(rpc, company, product)
    error = rpc.error("validation_error", "label_license", license_id, company, {"note": "x" * 501})
    assert list(error.details["fields"]) == ["note"]
    error = rpc.error("validation_error", "label_license", license_id, company, {"nickname": 7})
    assert list(error.details["fields"]) == ["nickname"]
    other = rpc.auth(
        "create_company",
        {"name": "Other", "contact_name": "Bo", "contact_email": f"bo-{license_id}@o.test"},
    )["customer_id"]
    rpc.error("license_not_found", "label_license", license_id, other, {"nickname": "Mine"})


def test_a_redelivered_label_is_applied_once(
    config, rpc, licensing, portal_user, company, product, sql
) -> None:
    license_id, _ = issue(rpc, company, product)
    replies = redeliver_as(
        config["AMQP_URI"],
        portal_user,
        "licensing",
        "label_license",
        [license_id, company, {"nickname": "Design office"}],
    )
    assert len(replies) == 3, replies
    assert {reply["result"]["nickname"] for reply in replies} == {"Design office"}
    rows = sql(
        "SELECT count(*) AS n FROM audit_events WHERE customer_id = :c "
        "AND action = 'license_labelled'",
        c=company,
    )
    assert rows[0].n == 1


def test_nickname_and_note_columns_match_the_limits(sql) -> None:
    rows = sql(
        "SELECT column_name, character_maximum_length, is_nullable FROM "
        "information_schema.columns WHERE table_name = 'licenses' "
        "AND column_name IN ('nickname', 'note') ORDER BY column_name"
    )
    assert [tuple(row) for row in rows] == [
        ("nickname", domain.NICKNAME_MAX, "YES"),
        ("note", domain.NOTE_MAX, "YES"),
    ]
