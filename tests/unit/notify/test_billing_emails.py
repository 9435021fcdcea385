"""The emails billing's events make in notify: receipts, failed renewals, cancellations."""

from __future__ import annotations

from services.notify import domain, rendering, schemas
from tests.unit.notify import payloads

RECIPIENT = domain.Recipient("ada@acme.test", "Ada Lovelace", "Acme", "C7")


def render(kind: str, payload: dict) -> tuple[str, str]:
    data = schemas.load_event(kind, payload)
    return rendering.render(kind, data, RECIPIENT, "http://portal.test")


def test_a_receipt_email_shows_the_receipt_the_amount_and_the_card() -> None:
    for kind in ("payment_succeeded", "offline_payment_recorded"):
        text, html = render(kind, payloads.billing_events("C7")[kind])
        for body in (text, html):
            assert "R-2026-000123" in body
            assert "€147.00" in body
            assert "Visa ending in 4242" in body
    offline = payloads.billing_events("C7")["offline_payment_recorded"]
    text, _ = render("offline_payment_recorded", offline)
    assert "not listed in the portal" in text


def test_receipt_values_are_escaped_in_html() -> None:
    payload = payloads.billing_events("C7")["payment_succeeded"]
    payload["payment"]["description"] = "<script>alert(1)</script>"
    _, html = render("payment_succeeded", payload)
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_the_last_failed_attempt_says_past_due() -> None:
    payload = payloads.billing_events("C7")["payment_failed"]
    text, _ = render("payment_failed", payload)
    assert "insufficient funds" in text and "try again" in text
    payload = {**payload, "attempt": 4, "next_retry_at": None}
    text, html = render("payment_failed", payload)
    assert "past due" in text and "past due" in html
    data = schemas.load_event("payment_failed", payload)
    assert domain.subject("payment_failed", data).startswith("Action needed")


def test_a_decline_only_the_customer_can_undo_says_what_to_do_never_the_code() -> None:
    payload = payloads.billing_events("C7")["payment_failed"]
    for code, reason in (
        ("authentication_required", "your bank wants you to confirm this payment yourself"),
        ("payment_method_unavailable", "can no longer be charged by our payment provider"),
    ):
        failed = {**payload, "reason": code, "next_retry_at": None}
        text, html = render("payment_failed", failed)
        for body in (text, html):
            assert reason in body
            assert (
                "will not try again automatically" in body and "Renew the license by hand" in body
            )
            assert code not in body and "last attempt" not in body


def test_a_cancellation_says_the_license_runs_to_its_end() -> None:
    text, html = render(
        "recurring_payment_cancelled", payloads.billing_events("C7")["recurring_payment_cancelled"]
    )
    assert "L-7KQX-M2PD" in text and "until the end of the period" in html
