"""A license's nickname and note (`label_license`), and when each machine was last seen
(`installations.last_seen_at`: at activation, then at most one write an hour by validation)
(fixtures: conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, select

from common.db import Db
from common.timeutil import iso
from services.licensing import domain, schemas
from services.licensing.models import Installation
from services.licensing.repository import LicensingRepository
from tests.unit.licensing.support import COMPANY, OTHER, activate, issue, raises_code
from tests.unit.licensing.test_audit_trail import USER, trail

# --- last seen ------------------------------------------------------------------------------


@pytest.fixture
def statements(db: Db) -> Iterator[Callable[[], list[str]]]:
    """The first word of every SQL statement run from now on."""
    engine = db._factory.kw["bind"]
    seen: list[str] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", on_execute)
    yield lambda: list(seen)
    event.remove(engine, "before_cursor_execute", on_execute)


def last_seen(service, license_id: str, installation_id: str = "inst-1") -> str:
    [installation] = [
        item
        for item in service.list_installations(license_id, COMPANY)
        if item["installation_id"] == installation_id
    ]
    return installation["last_seen_at"]


def stored_last_seen(db: Db, installation_id: str = "inst-1") -> datetime:
    with db.transaction() as session:
        return session.scalar(
            select(Installation.last_seen_at).where(Installation.installation_id == installation_id)
        )


def test_activation_and_reactivation_set_last_seen(service, clock) -> None:
    license_id, password = issue(service)
    activated = activate(service, license_id, password)
    assert activated["activation"]["last_seen_at"] == iso(clock.now())
    assert last_seen(service, license_id) == iso(clock.now())
    clock.advance(minutes=10)  # within the hour: a re-activation writes it all the same
    activate(service, license_id, password, machine="PC-1 renamed")
    assert last_seen(service, license_id) == iso(clock.now())
    detail = service.get_license(license_id, COMPANY)
    assert detail["installations"][0]["last_seen_at"] == iso(clock.now())


def test_a_validation_within_the_hour_writes_nothing(service, clock, statements) -> None:
    license_id, password = issue(service)
    certificate = activate(service, license_id, password)["certificate"]
    activated_at = iso(clock.now())
    clock.advance(domain.LAST_SEEN_RESOLUTION)  # exactly an hour: not older than that
    before = len(statements())
    assert service.validate(certificate)["valid"] is True
    assert statements()[before:] == ["SELECT"]  # the validation facts, nothing else
    assert last_seen(service, license_id) == activated_at


def test_a_validation_after_the_hour_writes_it_once(service, clock, db, statements) -> None:
    license_id, password = issue(service)
    certificate = activate(service, license_id, password)["certificate"]
    clock.advance(hours=1, seconds=1)
    before = len(statements())
    assert service.validate(certificate)["valid"] is True
    assert statements()[before:] == ["SELECT", "UPDATE"]
    seen_at = clock.now()
    assert stored_last_seen(db) == seen_at
    # the next validations of the hour write nothing again
    clock.advance(minutes=59)
    before = len(statements())
    service.validate(certificate)
    service.validate(certificate)
    assert statements()[before:] == ["SELECT", "SELECT"]
    assert last_seen(service, license_id) == iso(seen_at)


def test_a_suspended_licenses_machine_is_still_seen(service, clock, db) -> None:
    license_id, password = issue(service)
    certificate = activate(service, license_id, password)["certificate"]
    service.suspend_license(license_id, "Call us.")
    clock.advance(hours=2)
    assert service.validate(certificate)["code"] == domain.CODE_SUSPENDED
    assert stored_last_seen(db) == clock.now()


def test_a_deactivated_machine_is_not_seen(service, clock, db, statements) -> None:
    license_id, password = issue(service)
    certificate = activate(service, license_id, password)["certificate"]
    activated_at = clock.now()
    service.deactivate_installation(COMPANY, license_id, "inst-1")
    clock.advance(hours=2)
    before = len(statements())
    assert service.validate(certificate)["code"] == domain.CODE_DEACTIVATED
    # reads only: the facts, then who deactivated it and when (for the answer)
    assert statements()[before:] == ["SELECT", "SELECT"]
    assert stored_last_seen(db) == activated_at


def test_the_guard_writes_nothing_when_another_validation_wrote_it_first(
    service, clock, db
) -> None:
    """Two validations that both read a stale time: the second UPDATE matches no row."""
    license_id, password = issue(service)
    activate(service, license_id, password)
    clock.advance(hours=2)
    first = clock.now()
    with db.transaction() as session:
        repo = LicensingRepository(session)
        _, _, pk, _, _ = repo.validation_facts(license_id, "inst-1")
        repo.mark_seen(pk, first)
        repo.mark_seen(pk, first + timedelta(minutes=1))
    assert stored_last_seen(db) == first


def test_last_seen_due() -> None:
    at = datetime(2026, 12, 3, 8, 0)
    assert domain.last_seen_due(None, at)
    assert not domain.last_seen_due(at, at + domain.LAST_SEEN_RESOLUTION)
    assert domain.last_seen_due(at, at + domain.LAST_SEEN_RESOLUTION + timedelta(seconds=1))


# --- nickname and note ----------------------------------------------------------------------


def label(service, license_id: str, payload, customer_id: str | None = COMPANY) -> dict:
    return service.label_license(license_id, customer_id, payload)


def test_a_license_gets_a_nickname_and_a_note(service, db, actor_context) -> None:
    license_id, _ = issue(service)
    listed = service.list_licenses(COMPANY)[0]
    assert listed["nickname"] is None and listed["note"] is None
    actor_context["actor"] = USER
    answer = label(
        service,
        license_id.lower(),
        {"nickname": "  Design office  ", "note": "Renewed by finance\neach December. "},
    )
    assert answer["license_id"] == license_id
    assert answer["nickname"] == "Design office"
    assert answer["note"] == "Renewed by finance\neach December."
    assert answer["seats_in_use"] == 0 and "activation_password" not in answer
    assert service.list_licenses(COMPANY)[0]["nickname"] == "Design office"
    detail = service.get_license(license_id, COMPANY, reveal_password=False)
    assert (detail["nickname"], detail["note"]) == (answer["nickname"], answer["note"])
    [*_, fact] = trail(db)
    assert fact["action"] == "license_labelled"
    assert fact["actor"] == USER
    assert fact["target"] == {"type": "license", "id": license_id}
    assert fact["details"] == {
        "nickname": "Design office",
        "note": "Renewed by finance\neach December.",
    }


def test_only_the_keys_given_change_and_empty_clears(service, db, actor_context) -> None:
    license_id, _ = issue(service)
    actor_context["actor"] = USER
    label(service, license_id, {"nickname": "Design office", "note": "A note."})
    answer = label(service, license_id, {"note": "Another note."})
    assert (answer["nickname"], answer["note"]) == ("Design office", "Another note.")
    assert trail(db)[-1]["details"] == {"note": "Another note."}
    answer = label(service, license_id, {"nickname": "   "})
    assert (answer["nickname"], answer["note"]) == (None, "Another note.")
    answer = label(service, license_id, {"note": None})
    assert (answer["nickname"], answer["note"]) == (None, None)
    assert trail(db)[-1]["details"] == {"note": None}


def test_nothing_changed_is_not_in_the_trail(service, db, actor_context) -> None:
    license_id, _ = issue(service)
    actor_context["actor"] = USER
    label(service, license_id, {"nickname": "Design office"})
    count = len(trail(db))
    label(service, license_id, {"nickname": " Design office"})
    label(service, license_id, {})
    assert len(trail(db)) == count


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"nickname": "x" * 61}, "nickname"),
        ({"note": "x" * 501}, "note"),
        ({"nickname": 42}, "nickname"),
        ({"note": ["a note"]}, "note"),
        ({"nickname": "two\nlines"}, "nickname"),
        ({"note": "bell\x07"}, "note"),
        ({"nickname": "nul\x00"}, "nickname"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_labels_are_validated_naming_the_field(service, db, payload, field) -> None:
    license_id, _ = issue(service)
    error = raises_code("validation_error", label, service, license_id, payload)
    assert list(error.details["fields"]) == [field], error.details
    assert [fact["action"] for fact in trail(db)] == ["license_issued"]


def test_the_limits_count_what_is_kept(service) -> None:
    license_id, _ = issue(service)
    answer = label(service, license_id, {"nickname": " " + "x" * 60 + " ", "note": "y" * 500})
    assert len(answer["nickname"]) == 60 and len(answer["note"]) == 500


def test_another_companys_license_is_not_found(service, db) -> None:
    license_id, _ = issue(service, customer=OTHER)
    raises_code("license_not_found", label, service, license_id, {"nickname": "Mine"})
    raises_code("license_not_found", label, service, "L-NOPE-NOPE", {"nickname": "Mine"})
    assert service.list_licenses(OTHER)[0]["nickname"] is None


def test_staff_label_any_license(service, db) -> None:
    license_id, _ = issue(service, customer=OTHER)
    answer = label(service, license_id, {"nickname": "Staff's"}, customer_id=None)
    assert answer["nickname"] == "Staff's"
    assert trail(db, OTHER)[-1]["actor"] == {"type": "staff"}


def test_a_redelivered_label_is_applied_once(service, db, request_key, actor_context) -> None:
    license_id, _ = issue(service)
    actor_context["actor"] = USER
    request_key.key = "label-1"
    first = label(service, license_id, {"nickname": "Design office"})
    again = label(service, license_id, {"nickname": "Design office"})
    assert again == first
    assert [fact["action"] for fact in trail(db)].count("license_labelled") == 1
    raises_code("idempotency_key_reused", label, service, license_id, {"nickname": "Other"})
    request_key.key = "label-2"
    assert label(service, license_id, {"nickname": "Other"})["nickname"] == "Other"


def test_the_label_schema_keeps_absent_keys_absent() -> None:
    assert schemas.LabelLicense().load({}) == {}
    assert schemas.LabelLicense().load({"nickname": "", "note": None}) == {
        "nickname": None,
        "note": None,
    }
    assert schemas.LabelLicense().load({"note": "\ttabbed\r\n"}) == {"note": "tabbed"}
