"""The events notify emails about, as their producers really build them (their `views`
functions over unsaved model objects), load in notify's schemas and make their emails.

A producer that renames or drops a field breaks this test, not a customer's email.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.audit import STAFF
from common.timeutil import human_date
from services.auth import views as auth_views
from services.auth.models import Company, PasswordRequest, User
from services.billing import views as billing_views
from services.billing.models import Payment, PaymentMethod, RecurringPayment
from services.licensing import views as licensing_views
from services.licensing.models import Lease, License, LicenseFeature, Product, ProductFeature
from services.notify import domain, rendering, schemas

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
PORTAL_URL = "http://portal.test"
RECIPIENT = domain.Recipient("ada@acme.test", "Ada Lovelace", "Acme", "C4829113")


def published(payload: dict[str, Any]) -> dict[str, Any]:
    """What the outbox adds to every event (common/outbox.py)."""
    return {**payload, "event_id": uuid.uuid4().hex, "occurred_at": NOW.isoformat()}


def emailed(kind: str, payload: dict[str, Any]) -> tuple[str, str, str]:
    """The subject and both bodies notify makes of the event."""
    data = schemas.load_event(kind, published(payload))
    request_id = domain.link_request(kind, data)
    if request_id is not None:
        data = domain.with_link(kind, data, f"{PORTAL_URL}/reset-password#token=t", NOW)
    text, html = rendering.render(kind, data, RECIPIENT, PORTAL_URL)
    return domain.subject(kind, data), text, html


def payment(**overrides: Any) -> Payment:
    values = {
        "receipt_number": "R-2026-000124",
        "customer_id": "C4829113",
        "amount": 245000,
        "currency": "EUR",
        "description": "CAD Pro, 5 seats, monthly",
        "status": "paid",
        "channel": "portal",
        "kind": "new",
        "plan_code": "cad-m",
        "product_code": "cad-pro",
        "product_name": "CAD Pro",
        "seats": 5,
        "unit_amount": 49000,
        "period_start": NOW - timedelta(days=60),
        "period_end": NOW - timedelta(days=30),
        "card_brand": "visa",
        "card_last4": "4242",
        "paid_at": NOW - timedelta(days=60),
    }
    return Payment(**{**values, **overrides})


def recurring(status: str = "active") -> RecurringPayment:
    return RecurringPayment(
        reference="rp_0123456789abcdef0123",
        customer_id="C4829113",
        license_id="L-7KQX-M2PD",
        plan_code="cad-m",
        product_code="cad-pro",
        product_name="CAD Pro",
        seats=5,
        amount=245000,
        currency="EUR",
        interval="month",
        next_charge_at=NOW + timedelta(days=5),
        status=status,
        failures=0,
        created_at=NOW - timedelta(days=60),
    )


def card(brand: str, last4: str) -> PaymentMethod:
    return PaymentMethod(
        customer_id="C4829113",
        provider="sandbox",
        token="pm_x",
        brand=brand,
        last4=last4,
        exp_month=12,
        exp_year=2030,
        created_at=NOW,
    )


def suspended_license() -> License:
    return License(
        license_id="L-7KQX-M2PD",
        customer_id="C4829113",
        product=Product(code="cad-pro", name="CAD Pro", created_at=NOW),
        seats=5,
        expires_at=NOW + timedelta(days=30),
        suspended_at=NOW,
        suspension_reason="Unpaid invoice 2026-114.",
        created_at=NOW,
    )


def test_licensings_feature_change_names_the_modules() -> None:
    product = Product(
        code="cad-pro",
        name="CAD Pro",
        created_at=NOW,
        features=[
            ProductFeature(code="dynamics", name="Dynamic analysis"),
            ProductFeature(code="steel", name="Steel design"),
        ],
    )
    license = suspended_license()
    license.product, license.suspended_at = product, None
    license.features = [LicenseFeature(code="steel")]
    payload = licensing_views.license_features_changed(license, ["steel"], ["dynamics"], STAFF)
    subject, text, html = emailed("license_features_changed", payload)
    assert subject == "Modules of your CAD Pro license L-7KQX-M2PD changed"
    for body in (text, html):
        assert "added Steel design; removed Dynamic analysis." in body
        assert "at its next online check (or with a new certificate)" in body


def test_licensings_seats_exhausted_names_who_holds_the_seats() -> None:
    license = suspended_license()
    license.suspended_at, license.seats = None, 2
    leases = [
        Lease(machine_name="WS-01", expires_at=NOW + timedelta(minutes=15)),
        Lease(
            machine_name="LAPTOP-7",
            expires_at=NOW + timedelta(days=3),
            borrowed_until=NOW + timedelta(days=3),
        ),
    ]
    machines = [licensing_views.lease_machine(lease) for lease in leases]
    payload = licensing_views.seats_exhausted(license, machines, NOW)
    subject, text, html = emailed("seats_exhausted", payload)
    assert subject == "All 2 seats of CAD Pro are in use"
    assert "WS-01: until Dec 2, 2026, 09:45 UTC" in text
    assert "LAPTOP-7: borrowed until Dec 5, 2026, 09:30 UTC" in text
    for body in (text, html):
        assert "L-7KQX-M2PD" in body and f"{PORTAL_URL}/buy" in body


# --- billing ----------------------------------------------------------------------------------


def test_billings_refund() -> None:
    refunded = payment(
        status="refunded", refunded_at=NOW, refund_reason="product_archived", paid_at=NOW
    )
    _, payload = billing_views.payment_refunded(refunded, "The product cad-pro is archived.")
    subject, text, html = emailed("payment_refunded", payload)
    assert subject == "We refunded your payment R-2026-000124"
    for body in (text, html):
        assert "We refunded €2,450.00 for your payment R-2026-000124" in body
        assert "no longer sold" in body and "Visa ending in 4242" in body


def test_billings_first_receipt_shows_the_receipts_own_period() -> None:
    """The demo's first payment: one event for two periods (licensing's license runs to the
    next charge), the receipt for one; the email says what the receipt page says."""
    first = payment()
    _, payload = billing_views.payment_succeeded(first, "month", period_end=NOW + timedelta(days=5))
    _, text, _ = emailed("payment_succeeded", payload)
    receipt = billing_views.receipt_view(first, {"name": "Vendor"})
    line = receipt["lines"][0]
    start, end = (datetime.fromisoformat(line[key]) for key in ("period_start", "period_end"))
    assert f"Period:      {human_date(start)} to {human_date(end)}" in text
    assert "Item:        CAD Pro, 5 seats, monthly" in text
    assert "Amount:      €2,450.00" in text


@pytest.mark.parametrize("status", ["active", "past_due"])
def test_billings_card_change(status: str) -> None:
    _, payload = billing_views.recurring_payment_card_changed(
        recurring(status), card("mastercard", "4444"), card("visa", "4242"), NOW
    )
    subject, text, _ = emailed("recurring_payment_card_changed", payload)
    assert subject == "New card for the automatic renewal of CAD Pro"
    assert "Mastercard ending in 4444, instead of Visa ending in 4242" in text
    assert ("tried again with this card" in text) is (status == "past_due")


def test_billings_resume_and_cancellation() -> None:
    _, payload = billing_views.recurring_payment_resumed(recurring(), card("visa", "4242"), NOW)
    subject, text, _ = emailed("recurring_payment_resumed", payload)
    assert subject == "Automatic renewal of CAD Pro resumed"
    assert "Amount:      €2,450.00" in text
    cancelled = recurring("cancelled")
    _, payload = billing_views.recurring_payment_cancelled(cancelled, card("visa", "4242"), NOW)
    subject, text, _ = emailed("recurring_payment_cancelled", payload)
    assert subject == "Automatic renewal of CAD Pro cancelled"


# --- licensing and auth -----------------------------------------------------------------------


def test_licensings_suspension_and_resumption() -> None:
    license = suspended_license()
    subject, text, _ = emailed("license_suspended", licensing_views.license_suspended(license, NOW))
    assert subject == "Your CAD Pro license L-7KQX-M2PD is suspended"
    assert "Unpaid invoice 2026-114." in text
    license.suspended_at, license.suspension_reason = None, None
    subject, text, _ = emailed("license_resumed", licensing_views.license_resumed(license, NOW))
    assert subject == "Your CAD Pro license L-7KQX-M2PD is active again"
    assert "Expires:     Jan 1, 2027" in text


def test_auths_invitation() -> None:
    company = Company(
        customer_id="C4829113",
        name="Acme",
        contact_name="Ada Lovelace",
        contact_email="ada@acme.test",
        created_at=NOW,
    )
    request = PasswordRequest(request_id=uuid.uuid4().hex, expires_at=NOW + timedelta(days=7))
    payload = auth_views.company_invited(company, request)
    subject, text, _ = emailed("company_invited", payload)
    assert subject == "Set your License Portal password"
    assert f"{PORTAL_URL}/reset-password#token=t" in text
    data = schemas.load_event("company_invited", published(payload))
    assert domain.link_request("company_invited", data) == request.request_id
    assert domain.customer_id_of("company_invited", data) == "C4829113"


# --- auth's team accounts ----------------------------------------------------------------------


def _company() -> Company:
    return Company(
        customer_id="C4829113",
        name="Acme",
        contact_name="Ada Lovelace",
        contact_email="ada@acme.test",
        created_at=NOW,
    )


def _user(role: str = "license_admin") -> User:
    return User(user_id="U-7KQX-M2PD", email="lin@acme.test", name="Lin Wu", role=role)


def test_auths_user_invitation() -> None:
    request = PasswordRequest(request_id=uuid.uuid4().hex, expires_at=NOW + timedelta(days=7))
    payload = auth_views.user_invited(_company(), _user(), request, "ada@acme.test")
    subject, text, html = emailed("user_invited", payload)
    assert subject == "ada@acme.test invited you to Acme's license portal"
    assert "as License admin. This role lets you" in text
    assert f"{PORTAL_URL}/reset-password#token=t" in html  # the link auth answers at send time
    data = schemas.load_event("user_invited", published(payload))
    assert domain.link_request("user_invited", data) == request.request_id
    assert domain.recipient_from_payload(data).email == "lin@acme.test"
    assert domain.customer_id_of("user_invited", data) == "C4829113"


def test_auths_role_change_and_disabled_user() -> None:
    user = _user(role="billing")
    payload = auth_views.user_role_changed(_company(), user, "viewer", "staff")
    subject, text, _ = emailed("user_role_changed", payload)
    assert subject == "Your role at Acme is now Billing"
    assert "from Viewer to Billing by our support team" in text
    payload = auth_views.user_disabled(_company(), user, "ada@acme.test")
    subject, text, _ = emailed("user_disabled", payload)
    assert subject == "Your access to Acme's license portal was disabled"
    assert "by an owner of the account (ada@acme.test)" in text


def test_auths_password_events_name_the_user() -> None:
    request = PasswordRequest(request_id=uuid.uuid4().hex, expires_at=NOW + timedelta(minutes=30))
    for kind, payload in (
        (
            "password_reset_requested",
            auth_views.password_reset_requested(_company(), _user(), request),
        ),
        ("password_changed", auth_views.password_changed(_company(), _user(), "change", NOW)),
    ):
        data = schemas.load_event(kind, published(payload))
        assert domain.recipient_from_payload(data).email == "lin@acme.test"
        emailed(kind, payload)  # renders
