"""The emails of a payment disputed at the customer's bank and of the dispute's end: to whoever
gets the receipts, with the receipt, the money in the one format, the product by its name,
what happens to the license and what to do."""

from __future__ import annotations

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import select

from services.notify import domain, rendering, schemas
from services.notify.exceptions import InvalidEvent
from services.notify.models import Delivery
from services.notify.service import NotifyService
from tests.unit.notify import payloads
from tests.unit.notify.payloads import PORTAL_URL

RECIPIENT = domain.Recipient("ada@acme.test", "Ada Lovelace", "Acme", "C7")
LICENSE_URL = f"{PORTAL_URL}/licenses/L-7KQX-M2PD"


def render(kind: str, payload: dict) -> tuple[str, str, str]:
    """The subject, text and HTML of the email the event makes."""
    data = schemas.load_event(kind, payload)
    text, html = rendering.render(kind, data, RECIPIENT, PORTAL_URL)
    return domain.subject(kind, data), text, html


@pytest.fixture
def notify(db, mailer, directory, options, clock) -> NotifyService:
    return worker_factory(
        NotifyService, db=db, mailer=mailer, auth=directory, options=options, clock=clock
    )


# --- what the emails say -----------------------------------------------------------------------


def test_a_dispute_says_which_payment_and_that_the_license_is_suspended() -> None:
    subject, text, html = render("payment_disputed", payloads.payment_disputed("C7"))
    assert subject == "Your payment R-2026-000125 is disputed at your bank"
    for body in (text, html):
        assert "your payment R-2026-000125 of €2,450.00 for CAD Pro is disputed" in body
        assert "The card holder does not recognise the payment" in body
        assert "the license L-7KQX-M2PD for CAD Pro is suspended" in body
        assert "Until the dispute is resolved" in body
        assert "ask your bank to withdraw the dispute" in body
        assert "contact our support team" in body
        assert "fraudulent" not in body  # the bank's code, never shown
    assert LICENSE_URL in text and f'href="{LICENSE_URL}"' in html
    assert '"Receipts" is on in your notification settings' in text


def test_a_dispute_of_a_payment_without_a_license_suspends_nothing() -> None:
    payload = payloads.payment_disputed("C7", license_id=None, reason="general")
    _, text, html = render("payment_disputed", payload)
    for body in (text, html):
        assert "suspended" not in body
        assert "Not stated by the bank" in body and "general" not in body
    assert f"{PORTAL_URL}/" in text and "See your payments" in html


def test_a_dispute_won_says_the_payment_stands_and_the_license_works() -> None:
    subject, text, html = render("payment_dispute_closed", payloads.payment_dispute_closed("C7"))
    assert subject == "Dispute of payment R-2026-000125 closed: the payment stands"
    for body in (text, html):
        assert "closed the dispute of your payment R-2026-000125 of €2,450.00" in body
        assert "The license L-7KQX-M2PD for CAD Pro, suspended during the dispute" in body
        assert "is active again" in body and "stays suspended" not in body


def test_a_dispute_lost_says_the_payment_was_reversed_and_the_license_stays_suspended() -> None:
    payload = payloads.payment_dispute_closed("C7", status="lost")
    subject, text, html = render("payment_dispute_closed", payload)
    assert subject == "Dispute of payment R-2026-000125 closed: the payment was reversed"
    for body in (text, html):
        assert "the payment was reversed" in body
        assert "the license L-7KQX-M2PD for CAD Pro stays suspended" in body
        assert "contact our support team" in body and "is active again" not in body


@pytest.mark.parametrize("kind", ["payment_disputed", "payment_dispute_closed"])
def test_products_by_name_never_by_code_and_money_in_the_one_format(kind: str) -> None:
    coded = {"product_name": None, "product": {"code": "cad-pro"}, "amount": 500000}
    payload = {**payloads.billing_events("C7")[kind], **coded, "currency": "JPY"}
    _, text, html = render(kind, payload)
    for body in (text, html):
        assert "cad-pro" not in body and "for your purchase" in body
        assert "¥500,000" in body
    named = {**payload, "product": {"code": "cad-pro", "name": "CAD Pro"}}
    assert "for CAD Pro" in render(kind, named)[1]


def test_values_from_the_event_are_escaped_in_html() -> None:
    payload = payloads.payment_disputed("C7", product_name="<b>CAD</b> & Co")
    _, text, html = render("payment_disputed", payload)
    assert "<b>CAD</b> & Co" in text
    assert "&lt;b&gt;CAD&lt;/b&gt; &amp; Co" in html and "<b>CAD</b>" not in html


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("duplicate", "The payment was charged twice"),
        ("fraudulent", "The card holder does not recognise the payment"),
        ("general", "Not stated by the bank"),
        ("something_new", "Not stated by the bank"),
        (None, "Not stated by the bank"),
    ],
)
def test_the_banks_reason_in_words(code: str | None, words: str) -> None:
    assert domain.dispute_reason(code) == words


@pytest.mark.parametrize(
    "broken",
    [
        {"amount": 12.5},
        {"currency": "euro"},
        {"receipt_number": ""},
        {"status": "pending"},
        {"product_name": "x" * 201},
    ],
)
def test_a_closed_dispute_that_no_email_can_be_made_of_is_refused(broken: dict) -> None:
    with pytest.raises(InvalidEvent):
        schemas.load_event(
            "payment_dispute_closed", {**payloads.payment_dispute_closed("C7"), **broken}
        )


# --- who gets them ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["payment_disputed", "payment_dispute_closed"])
def test_a_dispute_goes_to_each_user_who_gets_the_receipts(
    notify, mailer, directory, store, kind
) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    customer_id = company["customer_id"]
    directory.recipients[customer_id] = {
        "receipts": [
            {"user_id": "U-AAAA-0001", "email": "ada@acme.test", "name": "Ada"},
            {"user_id": "U-AAAA-0002", "email": "Bo@Acme.TEST", "name": "Bo"},
        ],
        "installation_activated": [
            {"user_id": "U-AAAA-0003", "email": "lin@acme.test", "name": "Lin"},
        ],
    }
    payload = payloads.billing_events(customer_id)[kind]
    getattr(notify, f"on_{kind}")(payload)
    getattr(notify, f"on_{kind}")(payload)  # redelivered: nobody gets it twice
    assert directory.notice_calls == [(customer_id, "receipts")]
    assert sorted(m["To"].addresses[0].addr_spec for m in mailer.sent) == [
        "ada@acme.test",
        "bo@acme.test",
    ]
    [to_bo] = mailer.to("bo@acme.test")
    assert to_bo["X-License-Portal-Kind"] == kind
    assert "Hello Bo," in to_bo.get_body(("plain",)).get_content()
    with store.repository() as repo:
        query = select(Delivery.status).where(Delivery.event_id == payload["event_id"])
        assert sorted(repo.session.scalars(query)) == ["done", "sent", "sent"]


def test_a_malformed_dispute_is_parked_not_sent(notify, mailer, directory) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    payload = {**payloads.payment_disputed(company["customer_id"]), "amount": "a lot"}
    notify.on_payment_disputed(payload)
    assert mailer.sent == []
    [parked] = notify.list_parked_events()
    assert (parked["event_id"], parked["event_type"]) == (payload["event_id"], "payment_disputed")
    assert "amount" in parked["error"]
