"""The emails of issue 10: refunds, suspensions, invitations, resumed renewals and new cards;
money in the one format and products by name in every email."""

from __future__ import annotations

import copy

import pytest
from nameko.testing.services import worker_factory

from services.notify import domain, rendering, schemas
from services.notify.exceptions import InvalidEvent
from services.notify.service import NotifyService
from tests.unit.notify import payloads
from tests.unit.notify.payloads import PORTAL_URL

RECIPIENT = domain.Recipient("ada@acme.test", "Ada Lovelace", "Acme", "C7")


def render(kind: str, payload: dict) -> tuple[str, str]:
    data = schemas.load_event(kind, payload)
    request_id = domain.link_request(kind, data)
    if request_id is not None:
        data = domain.with_link(kind, data, payloads.link_for(request_id), data["expires_at"])
    return rendering.render(kind, data, RECIPIENT, PORTAL_URL)


def billing(kind: str) -> dict:
    return payloads.billing_events("C7")[kind]


def invalid(kind: str, payload: object) -> str:
    with pytest.raises(InvalidEvent) as caught:
        schemas.load_event(kind, payload)
    return str(caught.value.details.get("fields") or caught.value.message)


# --- money, one format everywhere -------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (245000, "EUR", "€2,450.00"),
        (5000, "JPY", "¥5,000"),
        (1234567, "KWD", "KWD 1,234.567"),
    ],
)
@pytest.mark.parametrize(
    "kind", ["payment_succeeded", "offline_payment_recorded", "payment_failed", "payment_refunded"]
)
def test_every_amount_is_shown_in_the_one_money_format(kind, amount, currency, shown) -> None:
    payload = copy.deepcopy(billing(kind))
    for facts in (payload, payload.get("payment"), payload.get("recurring_payment")):
        if facts is not None and "amount" in facts:
            # what billing formatted itself is not what the email shows
            facts.update(amount=amount, currency=currency, amount_formatted="EUR 1 (old)")
    text, html = render(kind, payload)
    for body in (text, html):
        assert shown in body
        assert "(old)" not in body and "minor units" not in body


def test_a_failed_renewal_shows_the_invoice_amount_when_it_comes() -> None:
    payload = {**billing("payment_failed"), "amount": 29400, "currency": "EUR"}
    text, _ = render("payment_failed", payload)
    assert "Amount:      €294.00" in text
    problem = invalid("payment_failed", {**payload, "currency": None})
    assert "currency" in problem


@pytest.mark.parametrize("currency", ["eur", "EURO", "", 978])
def test_a_currency_that_is_no_iso_code_is_refused(currency) -> None:
    payload = copy.deepcopy(billing("payment_succeeded"))
    payload["payment"]["currency"] = currency
    assert "currency" in invalid("payment_succeeded", payload)


def test_an_amount_must_be_integer_minor_units() -> None:
    payload = {**billing("payment_refunded"), "amount": 2450.0}
    assert "amount" in invalid("payment_refunded", payload)
    payload = {**billing("payment_refunded"), "amount": "2450"}
    assert "amount" in invalid("payment_refunded", payload)


# --- products by name ---------------------------------------------------------------------


def test_recurring_emails_name_the_product_and_never_its_code() -> None:
    payload = copy.deepcopy(billing("payment_failed"))
    payload["recurring_payment"]["product"] = {"code": "cad-pro", "name": "CAD Pro"}
    data = schemas.load_event("payment_failed", payload)
    assert (
        domain.subject("payment_failed", data) == "Your CAD Pro renewal payment did not go through"
    )
    text, html = render("payment_failed", payload)
    assert "automatic renewal of CAD Pro" in text and "automatic renewal of CAD Pro" in html
    # an event from before billing knew names still makes its email, without the code
    cancelled = billing("recurring_payment_cancelled")
    text, html = render("recurring_payment_cancelled", cancelled)
    assert "The automatic renewal of your license (license L-7KQX-M2PD)" in text
    assert "cadpro" not in text and "cadpro" not in html
    data = schemas.load_event("recurring_payment_cancelled", cancelled)
    subject = domain.subject("recurring_payment_cancelled", data)
    assert subject == "Automatic renewal of license L-7KQX-M2PD cancelled"
    # billing puts the code where it never learnt the name: still not shown
    payload = copy.deepcopy(billing("payment_failed"))
    payload["recurring_payment"]["product"] = {"code": "cadpro", "name": "cadpro"}
    data = schemas.load_event("payment_failed", payload)
    subject = domain.subject("payment_failed", data)
    assert subject == "Your renewal payment for license L-7KQX-M2PD did not go through"
    data["next_retry_at"] = None
    subject = domain.subject("payment_failed", data)
    assert subject == "Action needed: the renewal payment for license L-7KQX-M2PD failed"


def test_product_label() -> None:
    assert domain.product_label({"code": "cad-pro", "name": "CAD Pro"}) == "CAD Pro"
    assert domain.product_label({"code": "cad-pro", "name": None}) == "your software"
    assert domain.product_label({"code": "cad-pro", "name": "cad-pro"}, "") == ""
    assert domain.product_label(None) == "your software"


# --- the receipt's period ---------------------------------------------------------------------


def test_the_receipt_email_shows_the_receipts_own_period() -> None:
    """The demo's first payment: its event covers the subscription so far (two periods, for
    licensing), but its receipt covers one; the email shows what the receipt page shows."""
    payload = copy.deepcopy(billing("payment_succeeded"))
    payload["payment"].update(
        period_start="2026-09-28T09:00:00+00:00", period_end="2026-10-28T09:00:00+00:00"
    )
    payload["purchase"].update(
        period_start="2026-09-28T09:00:00+00:00", period_end="2026-11-28T09:00:00+00:00"
    )
    text, html = render("payment_succeeded", payload)
    assert "Period:      Sep 28, 2026 to Oct 28, 2026" in text
    assert "Sep 28, 2026 to Oct 28, 2026" in html
    assert "November" not in text.split("Period:")[1].splitlines()[0]


def test_without_its_own_period_the_receipt_email_shows_the_purchases() -> None:
    text, _ = render("payment_succeeded", billing("payment_succeeded"))
    assert "Period:      Nov 28, 2026 to Dec 28, 2026" in text
    text, _ = render("offline_payment_recorded", billing("offline_payment_recorded"))
    assert "Period:" not in text


# --- refunds ----------------------------------------------------------------------------------


def test_a_refund_says_how_much_why_and_where_the_money_goes() -> None:
    payload = {**billing("payment_refunded"), "card_brand": "visa", "card_last4": "4242"}
    text, html = render("payment_refunded", payload)
    for body in (text, html):
        assert "We refunded €2,450.00 for your payment R-2026-000124" in body
        assert "the product you paid for is no longer sold" in body
        assert "Visa ending in 4242" in body
        assert "product_archived" not in body  # the code is for staff, not the customer
    assert "Item:        CAD Pro, 5 seats, yearly" in text


@pytest.mark.parametrize(
    ("reason", "phrase"),
    [
        ("product_not_found", "no longer available"),
        ("license_suspended", "the license to renew is suspended"),
        ("license_not_found", "not found in your account"),
        ("refunded_by_provider", "our billing team made this refund"),
        ("something_new", domain.REFUND_REASON_DEFAULT),
        (None, domain.REFUND_REASON_DEFAULT),
    ],
)
def test_every_refund_reason_reads_as_a_sentence(reason, phrase) -> None:
    text, _ = render("payment_refunded", {**billing("payment_refunded"), "reason": reason})
    assert phrase in text


def test_a_refund_may_come_with_the_payment_nested() -> None:
    flat = billing("payment_refunded")
    nested = {
        "event_id": flat["event_id"],
        "customer_id": "C7",
        "reason": "product_archived",
        "payment": {
            key: flat[key] for key in ("receipt_number", "amount", "currency", "description")
        },
    }
    data = schemas.load_event("payment_refunded", nested)
    assert (data["receipt_number"], data["amount"], data["currency"]) == (
        "R-2026-000124",
        245000,
        "EUR",
    )


@pytest.mark.parametrize("missing", ["customer_id", "receipt_number", "amount", "currency"])
def test_a_refund_without_its_facts_is_invalid(missing) -> None:
    payload = {k: v for k, v in billing("payment_refunded").items() if k != missing}
    assert missing in invalid("payment_refunded", payload)


# --- suspensions ------------------------------------------------------------------------------


def test_a_suspension_gives_the_reason() -> None:
    payload = payloads.license_suspended("C7", reason="Unpaid invoice 2026-114.\nCall us.")
    text, html = render("license_suspended", payload)
    for body in (text, html):
        assert f"license {payload['license_id']} for CAD Pro has been suspended" in body
        assert "Unpaid invoice 2026-114." in body
        assert f"{PORTAL_URL}/licenses/{payload['license_id']}" in body
    assert "  Unpaid invoice 2026-114.\n  Call us." in text  # indented as a quote


def test_a_suspension_without_a_reason() -> None:
    text, html = render("license_suspended", payloads.license_suspended("C7", reason=None))
    assert "has been suspended.\n" in text and "for this reason" not in html


def test_the_reason_is_escaped_in_html() -> None:
    payload = payloads.license_suspended("C7", reason="<a href='x'>click</a>")
    _, html = render("license_suspended", payload)
    assert "<a href='x'>" not in html and "&lt;a href=" in html


def test_a_suspension_event_may_be_flat_or_nested() -> None:
    full = payloads.license_suspended("C7")
    flat = {k: v for k, v in full.items() if k != "license"}
    nested = {k: v for k, v in full.items() if k not in ("license_id", "product")}
    for payload in (flat, nested):
        data = schemas.load_event("license_suspended", payload)
        assert data["license_id"] == full["license_id"]
        assert domain.subject("license_suspended", data).startswith("Your CAD Pro license")
        render("license_suspended", payload)
    # no product at all: the email still says which license
    bare = {**flat, "product": None}
    data = schemas.load_event("license_suspended", bare)
    assert domain.subject("license_suspended", data) == (
        f"Your license {full['license_id']} is suspended"
    )
    text, _ = render("license_suspended", bare)
    assert f"The license {full['license_id']} has been suspended" in text


def test_a_suspension_names_its_license() -> None:
    payload = {k: v for k, v in payloads.license_suspended("C7").items() if k != "license"}
    del payload["license_id"]
    assert "license_id" in invalid("license_suspended", payload)
    long_reason = {**payloads.license_suspended("C7"), "reason": "x" * 501}
    assert "reason" in invalid("license_suspended", long_reason)


def test_a_resumed_license_is_active_again() -> None:
    payload = payloads.license_resumed("C7")
    text, html = render("license_resumed", payload)
    for body in (text, html):
        assert "is active again" in body
        assert f"{PORTAL_URL}/licenses/{payload['license_id']}" in body


# --- recurring payments -----------------------------------------------------------------------


def test_a_resumed_renewal_says_when_the_card_is_charged_next() -> None:
    text, html = render("recurring_payment_resumed", billing("recurring_payment_resumed"))
    for body in (text, html):
        assert "The automatic renewal of CAD Pro (license L-7KQX-M2PD) is on again" in body
        assert "charged next on Dec 28, 2026" in body
        assert "€147.00" in body


def test_a_new_card_is_named_and_a_past_due_payment_is_retried() -> None:
    payload = billing("recurring_payment_card_changed")
    text, html = render("recurring_payment_card_changed", payload)
    for body in (text, html):
        assert "now paid with Mastercard ending in 4444" in body
        assert "If you did not make this change" in body
        assert "tried again" not in body
    payload = copy.deepcopy(payload)
    payload["recurring_payment"]["status"] = "past_due"
    text, html = render("recurring_payment_card_changed", payload)
    assert "tried again with this card" in text and "tried again with this card" in html


def test_a_card_change_names_the_card() -> None:
    payload = copy.deepcopy(billing("recurring_payment_card_changed"))
    payload["recurring_payment"]["card_last4"] = None
    assert "recurring_payment" in invalid("recurring_payment_card_changed", payload)


# --- the invitation ---------------------------------------------------------------------------


def test_an_invitation_brings_a_new_link() -> None:
    payload = payloads.company_invited("ada@acme.test")
    text, html = render("company_invited", payload)
    link = payloads.link_for(payload["request_id"])
    for body in (text, html):
        assert "Links sent to you before no longer work" in body
        assert payload["company"]["customer_id"] in body
        assert "valid for 7 days" in body
    assert link in text and f'href="{link}"' in html


def test_an_invitation_names_its_request() -> None:
    payload = {**payloads.company_invited(), "request_id": None}
    assert "request_id" in invalid("company_invited", payload)


# --- through the service ----------------------------------------------------------------------


@pytest.fixture
def notify(db, mailer, directory, options, clock) -> NotifyService:
    return worker_factory(
        NotifyService, db=db, mailer=mailer, auth=directory, options=options, clock=clock
    )


def test_the_new_events_are_emailed_to_the_companys_contact(notify, mailer, directory) -> None:
    company = directory.add(payloads.company("ops@acme.test"))
    customer_id = company["customer_id"]
    events = {
        "license_suspended": payloads.license_suspended(customer_id),
        "license_resumed": payloads.license_resumed(customer_id),
        **{
            kind: {**payload, "customer_id": customer_id}
            for kind, payload in payloads.billing_events(customer_id).items()
            if kind
            in ("payment_refunded", "recurring_payment_resumed", "recurring_payment_card_changed")
        },
    }
    for kind, payload in events.items():
        getattr(notify, f"on_{kind}")(payload)
    assert sorted(m["X-License-Portal-Kind"] for m in mailer.to("ops@acme.test")) == sorted(events)
    assert directory.calls == [customer_id] * len(events)
    # the refund is a receipt notice: its event's row is split (done), the contact's is sent
    assert {row["status"] for row in notify.list_deliveries()} == {"sent", "done"}


def test_an_invitation_asks_auth_for_the_link_when_it_is_sent(notify, mailer, directory) -> None:
    payload = payloads.company_invited("grace@acme.test")
    notify.on_company_invited(payload)
    [message] = mailer.to("grace@acme.test")
    assert message["Subject"] == "Set your License Portal password"
    assert directory.link_calls == [payload["request_id"]]
    assert directory.calls == []  # the recipient is in the payload
    assert payloads.link_for(payload["request_id"]) in message.get_body(("plain",)).get_content()
    [row] = notify.list_deliveries()
    assert row["customer_id"] == payload["company"]["customer_id"]


def test_an_invitation_replaced_before_it_was_sent_is_not_sent(notify, mailer, directory) -> None:
    payload = payloads.company_invited("grace@acme.test")
    directory.closed.add(payload["request_id"])
    notify.on_company_invited(payload)
    assert mailer.sent == []
    [row] = notify.list_deliveries()
    assert row["status"] == "failed" and "invalid_token" in row["last_error"]


def test_garbage_is_parked_not_sent(notify, mailer) -> None:
    notify.on_payment_refunded({"event_id": "e-1", "customer_id": "C7", "amount": "lots"})
    notify.on_license_suspended({"event_id": "e-2", "license_id": "L-1"})
    notify.on_recurring_payment_card_changed(["not", "an", "object"])
    notify.on_company_invited({"event_id": "e-3", "request_id": "x"})
    assert mailer.sent == []
    parked = {p["event_type"]: p["error"] for p in notify.list_parked_events()}
    assert set(parked) == {
        "payment_refunded",
        "license_suspended",
        "recurring_payment_card_changed",
        "company_invited",
    }
    assert "amount" in parked["payment_refunded"] and "receipt_number" in parked["payment_refunded"]
    assert "customer_id" in parked["license_suspended"]
    assert "company" in parked["company_invited"]


def test_the_new_card_may_come_beside_the_recurring_payment() -> None:
    payload = copy.deepcopy(billing("recurring_payment_card_changed"))
    payload["recurring_payment"].update(card_brand=None, card_last4=None)
    payload.update(
        card_brand="amex",
        card_last4="0005",
        previous_card_brand="visa",
        previous_card_last4="4242",
    )
    text, html = render("recurring_payment_card_changed", payload)
    for body in (text, html):
        assert "now paid with Amex ending in 0005, instead of Visa ending in 4242" in body
    assert "Card:        Amex ending in 0005" in text
