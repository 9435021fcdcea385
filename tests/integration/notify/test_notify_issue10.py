"""The emails of issue 10 at a real SMTP server: an invitation resent by staff (with the real
auth), refunds, suspensions and recurring-payment changes from the bus, in the one money
format and with product names."""

from __future__ import annotations

import re

import pytest

from common.errors import PortalError
from services.auth.service import AuthService
from tests.support.smtp_sink import html_body, text_body
from tests.support.waiting import eventually
from tests.unit.notify import payloads

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

LINK = re.compile(r"http://portal\.test/reset-password#token=[A-Za-z0-9_\-]+")


def _token(message) -> str:
    return LINK.search(text_body(message)).group(0).split("#token=", 1)[1]


def test_a_resent_invitation_arrives_with_a_working_link_and_the_first_one_dies(
    container_factory, start_notify, sink, rpc
) -> None:
    container_factory(AuthService).start()
    start_notify()
    email = payloads.unique_email("grace")
    company = rpc.call(
        "auth",
        "create_company",
        {"name": "Orbital Tooling", "contact_name": "Grace Hopper", "contact_email": email},
    )
    welcome = sink.wait_for(lambda m: m["Subject"] == "Welcome to License Portal", to=email)
    first_token = _token(welcome)

    answer = rpc.call("auth", "resend_invite", company["customer_id"].lower())
    assert answer == {"customer_id": company["customer_id"], "contact_email": email, "sent": True}
    invitation = sink.wait_for(
        lambda m: m["Subject"] == "Set your License Portal password", to=email, timeout=15
    )
    body = text_body(invitation)
    assert "Links sent to you before no longer work" in body
    assert company["customer_id"] in body and "Hello Grace Hopper," in body
    new_token = _token(invitation)
    assert new_token != first_token

    with pytest.raises(PortalError) as caught:
        rpc.call(
            "auth",
            "confirm_password_reset",
            {"token": first_token, "new_password": "Harbour-Lantern-97"},
        )
    assert caught.value.code == "invalid_token"
    confirm = {"token": new_token, "new_password": "Harbour-Lantern-97"}
    assert rpc.call("auth", "confirm_password_reset", confirm) is None
    assert rpc.call("auth", "get_company", email.upper())["has_password"] is True


def test_billing_and_licensing_news_arrive_in_the_one_format(
    container_factory, start_notify, dispatch, sink, rpc, tables
) -> None:
    container_factory(AuthService).start()
    start_notify()
    email = payloads.unique_email("ops")
    company = rpc.call(
        "auth",
        "create_company",
        {
            "name": "Acme",
            "contact_name": "Ada Lovelace",
            "contact_email": email,
            "password": "correct horse battery",
        },
    )
    customer_id = company["customer_id"]
    billing = payloads.billing_events(customer_id)
    refund = {**billing["payment_refunded"], "amount": 500000, "currency": "JPY"}
    dispatch("billing", "payment_refunded", refund)
    dispatch("licensing", "license_suspended", payloads.license_suspended(customer_id))
    dispatch("licensing", "license_resumed", payloads.license_resumed(customer_id))
    dispatch("billing", "recurring_payment_resumed", billing["recurring_payment_resumed"])
    card = billing["recurring_payment_card_changed"]
    dispatch("billing", "recurring_payment_card_changed", card)

    subjects = {
        "We refunded your payment R-2026-000124",
        "Automatic renewal of CAD Pro resumed",
        "New card for the automatic renewal of CAD Pro",
    }

    def arrived() -> dict:
        got = {m["Subject"]: m for m in sink.messages(to=email)}
        return got if len(got) == 6 else {}  # the welcome and the five above

    messages = eventually(arrived, timeout=15)
    assert subjects <= set(messages)
    refunded = messages["We refunded your payment R-2026-000124"]
    assert "We refunded ¥500,000 for your payment R-2026-000124" in text_body(refunded)
    assert "the product you paid for is no longer sold" in html_body(refunded)
    suspended = [m for s, m in messages.items() if s.endswith("is suspended")]
    assert len(suspended) == 1 and "Unpaid invoice 2026-114." in text_body(suspended[0])
    assert any(s.endswith("is active again") for s in messages)
    assert "Mastercard ending in 4444" in text_body(
        messages["New card for the automatic renewal of CAD Pro"]
    )
    for payload in (refund, billing["recurring_payment_resumed"], card):
        assert eventually(lambda p=payload: tables.emails_sent(p["event_id"]))


def test_a_malformed_refund_is_parked_with_its_reason(start_notify, dispatch, tables) -> None:
    start_notify()
    payload = {"event_id": "refund-garbage-1", "customer_id": "C1", "amount": 12.5}
    dispatch("billing", "payment_refunded", payload)
    [parked] = eventually(lambda: tables.parked("refund-garbage-1"))
    assert "amount" in parked.error and "receipt_number" in parked.error
    assert tables.delivery("refund-garbage-1") is None
