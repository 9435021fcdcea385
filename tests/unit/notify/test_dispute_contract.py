"""billing's dispute events as billing really builds them (its webhook use case over an unsaved
payment) load in the schemas of both consumers, licensing and notify, and make their emails.

A producer that renames or drops a field breaks this test, not a customer's license or email.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.billing.models import Payment
from services.billing.use_cases import webhooks
from services.licensing import schemas as licensing_schemas
from services.notify import domain, rendering, schemas

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
RECIPIENT = domain.Recipient("ada@acme.test", "Ada Lovelace", "Acme", "C4829113")


def paid(**overrides: Any) -> Payment:
    values = {
        "receipt_number": "R-2026-000124",
        "customer_id": "C4829113",
        "license_id": "L-7KQX-M2PD",
        "amount": 245000,
        "currency": "EUR",
        "description": "CAD Pro, 5 seats, monthly",
        "status": "disputed",
        "product_code": "cad-pro",
        "product_name": "CAD Pro",
        "paid_at": NOW,
    }
    return Payment(**{**values, **overrides})


def published(event: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """What the outbox adds to every event (common/outbox.py)."""
    kind, payload = event
    return kind, {**payload, "event_id": uuid.uuid4().hex, "occurred_at": NOW.isoformat()}


@pytest.mark.parametrize("status", [None, "won", "lost"])
def test_billings_dispute_events_reach_licensing_and_notify(status: str | None) -> None:
    dispute = {"id": "dp_1", "payment_intent": "pi_1", "reason": "fraudulent", "amount": 245000}
    kind, payload = published(
        webhooks._dispute_event(
            "payment_disputed" if status is None else "payment_dispute_closed", paid(), dispute
        )
    )
    if status is not None:
        payload["status"] = status  # as `dispute_closed` adds it
        licensing = licensing_schemas.PaymentDisputeClosed().load(payload)
        assert licensing["status"] == status
    else:
        licensing = licensing_schemas.PaymentDisputed().load(payload)
    assert (licensing["license_id"], licensing["receipt_number"]) == (
        "L-7KQX-M2PD",
        "R-2026-000124",
    )
    data = schemas.load_event(kind, payload)
    text, html = rendering.render(kind, data, RECIPIENT, "http://portal.test")
    for body in (text, html):
        assert "R-2026-000124 of €2,450.00 for CAD Pro" in body
        assert "L-7KQX-M2PD" in body
