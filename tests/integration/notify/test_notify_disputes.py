"""A payment disputed at the customer's bank, and the dispute's end, from the bus to a real
SMTP server with the real auth: to each user who gets the receipts, once."""

from __future__ import annotations

import re

import pytest

from services.auth.service import AuthService
from tests.support.smtp_sink import html_body, text_body
from tests.support.waiting import eventually
from tests.unit.notify import payloads

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ACCEPT = re.compile(r"http://portal\.test/accept-invitation#token=[A-Za-z0-9_\-]+")
PASSWORD = "Harbour-Lantern-97"
DISPUTED = "Your payment R-2026-000125 is disputed at your bank"
WON = "Dispute of payment R-2026-000125 closed: the payment stands"


@pytest.fixture
def company(config, container_factory, rpc) -> dict:
    """The real auth, and a company whose contact is an active owner (every notice on)."""
    container_factory(AuthService).start()
    return rpc.call(
        "auth",
        "create_company",
        {
            "name": "Orbital Tooling",
            "contact_name": "Grace Hopper",
            "contact_email": payloads.unique_email("grace"),
            "password": PASSWORD,
        },
    )


def join(rpc, sink, customer_id: str, role: str, name: str) -> str:
    """Invite a user of `role` and accept the emailed invitation → their email."""
    email = payloads.unique_email(role)
    rpc.call("auth", "invite_user", customer_id, {"email": email, "name": name, "role": role})
    invitation = sink.wait_for(lambda m: "invited you" in m["Subject"], to=email, timeout=15)
    token = ACCEPT.search(text_body(invitation)).group(0).split("#token=", 1)[1]
    assert rpc.call("auth", "accept_invitation", {"token": token, "password": PASSWORD}) is None
    return email


def test_a_dispute_and_its_end_reach_whoever_gets_the_receipts_once(
    company, start_notify, dispatch, sink, rpc, tables
) -> None:
    start_notify()
    customer_id = company["customer_id"]
    owner = company["contact_email"]
    billing = join(rpc, sink, customer_id, "billing", "Bo Chen")
    admin = join(rpc, sink, customer_id, "license_admin", "Lin Wu")

    disputed = payloads.payment_disputed(customer_id)
    dispatch("billing", "payment_disputed", disputed)
    dispatch("billing", "payment_disputed", disputed)  # redelivered
    won = payloads.payment_dispute_closed(customer_id)
    dispatch("billing", "payment_dispute_closed", won)

    def subjects(email: str) -> list[str]:
        return sorted(m["Subject"] for m in sink.messages(to=email) if "R-2026" in m["Subject"])

    for email in (owner, billing):
        eventually(lambda e=email: subjects(e) == sorted([DISPUTED, WON]), timeout=20)
    eventually(lambda: tables.emails_sent(disputed["event_id"]))
    eventually(lambda: tables.emails_sent(won["event_id"]))
    # a marker behind the redelivery on the same queue: once it is sent, the copy was handled
    marker = payloads.payment_disputed(customer_id, receipt_number="R-2026-000999")
    dispatch("billing", "payment_disputed", marker)
    eventually(lambda: tables.emails_sent(marker["event_id"]))
    assert (
        subjects(owner)
        == subjects(billing)
        == sorted([DISPUTED, WON, "Your payment R-2026-000999 is disputed at your bank"])
    )
    assert subjects(admin) == []  # a license admin does not get the receipts

    [to_bo] = [m for m in sink.messages(to=billing) if m["Subject"] == DISPUTED]
    text = text_body(to_bo)
    assert "Hello Bo Chen," in text
    assert "R-2026-000125 of €2,450.00 for CAD Pro is disputed" in text
    assert "the license L-7KQX-M2PD for CAD Pro is suspended" in text
    assert "ask your bank to withdraw the dispute" in html_body(to_bo)
    [to_owner] = [m for m in sink.messages(to=owner) if m["Subject"] == WON]
    assert "is active again" in text_body(to_owner)
    rows = tables.deliveries_of(disputed["event_id"])
    assert sorted(row.status for row in rows) == ["done", "sent", "sent"]
