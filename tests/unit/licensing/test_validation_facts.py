"""What licensing hands the gateway's validation read model: `validation_facts` (from which
the shared verdict gives `validate`'s very answer), `mark_seen`, `validation_keys`, and the
event a new suspension reason publishes (a validation answers the reason)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.errors import PortalError
from common.jws import public_keys_of
from common.rpc import Caller
from common.validation import answer, facts_from_wire
from tests.unit.licensing.support import activate, issue, raises_code


def same_as_validate(service, certificate: str, license_id: str, clock) -> dict:
    facts = facts_from_wire(service.validation_facts(license_id, "inst-1"))
    ours = answer(facts, license_id, "inst-1", clock.now())
    theirs = service.validate(certificate)
    assert ours == {name: value for name, value in theirs.items() if name != "signed_answer"}
    return ours


def test_the_facts_give_validates_answer_for_every_code(service, clock) -> None:
    license_id, password = issue(service, seats=1, expires_at="2026-12-10")
    certificate = activate(service, license_id, password)["certificate"]
    assert same_as_validate(service, certificate, license_id, clock)["code"] == "VALID"
    service.suspend_license(license_id, "Payment overdue.")
    held = same_as_validate(service, certificate, license_id, clock)
    assert (held["code"], held["suspension_reason"]) == ("SUSPENDED", "Payment overdue.")
    service.resume_license(license_id)
    service.deactivate_installation(None, license_id, "inst-1", "staff")
    gone = same_as_validate(service, certificate, license_id, clock)
    assert (gone["code"], gone["deactivated_by"]) == ("DEACTIVATED", "staff")
    activate(service, license_id, password)
    clock.advance(timedelta(days=30))
    assert same_as_validate(service, certificate, license_id, clock)["code"] == "EXPIRED"
    assert service.validation_facts("L-NONE-NONE", "inst-1") is None


def test_bad_arguments_are_refused(service) -> None:
    raises_code("validation_error", service.validation_facts, 7, "inst-1")
    raises_code("validation_error", service.validation_facts, "L-1", "x" * 201)
    raises_code("validation_error", service.mark_seen, [["L-1"]])
    raises_code("validation_error", service.mark_seen, "L-1")
    raises_code("validation_error", service.mark_seen, [["L-1", "i"]] * 1001)


def test_seen_marks_write_last_seen_hourly(service, clock) -> None:
    license_id, password = issue(service)
    activate(service, license_id, password)
    seen = facts_from_wire(service.validation_facts(license_id, "inst-1")).last_seen_at
    clock.advance(timedelta(minutes=30))
    assert service.mark_seen([[license_id, "inst-1"], ["L-NONE-NONE", "x"]]) == {"active": 1}
    assert facts_from_wire(service.validation_facts(license_id, "inst-1")).last_seen_at == seen
    clock.advance(timedelta(minutes=31))
    service.mark_seen([[license_id, "inst-1"]])
    service.mark_seen([[license_id, "inst-1"]])  # idempotent
    later = facts_from_wire(service.validation_facts(license_id, "inst-1")).last_seen_at
    assert later == clock.now()


def test_the_keys_are_the_certificate_keys(service) -> None:
    license_id, password = issue(service)
    certificate = activate(service, license_id, password)["certificate"]
    keys = service.validation_keys()
    assert [key.public_bytes_raw() for key in public_keys_of(keys["jwks"])] == [
        key.public_bytes_raw() for key in service.keys.keyring.verify_keys.values()
    ]
    assert keys["kid"] == service.keys.keyring.signing_kid
    assert certificate.split(".")[0]  # signed by that key: verify() below would raise otherwise
    service.keys.keyring.verify(certificate)


@pytest.mark.parametrize("user", ["lp-x-staff", "lp-x-billing", None])
def test_only_the_gateway_may_ask(user) -> None:
    caller = Caller(user, "lp-x-licensing")
    with pytest.raises(PortalError) as refused:
        caller.check_kind("gateway")
    assert refused.value.code == "forbidden"
    Caller("lp-x-gateway", "lp-x-licensing").check_kind("gateway")


def test_a_new_suspension_reason_is_an_event(service, events) -> None:
    license_id, _ = issue(service)
    service.suspend_license(license_id, "Payment overdue.")
    service.suspend_license(license_id, "Payment overdue.")  # the same: nothing
    assert events.of("license_suspension_changed") == []
    service.suspend_license(license_id, "Call us")
    [changed] = events.of("license_suspension_changed")
    assert (changed["license_id"], changed["reason"]) == (license_id, "Call us")
    assert len(events.of("license_suspended")) == 1  # no second notice
