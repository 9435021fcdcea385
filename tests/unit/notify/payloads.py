"""Example event payloads in the shapes producers publish (shared by the notify tests)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

PORTAL_URL = "http://portal.test"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def unique_email(label: str = "contact") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}@example.test"


def company(email: str | None = None, **overrides: Any) -> dict[str, Any]:
    values = {
        "customer_id": "C" + str(uuid.uuid4().int)[:7],
        "name": "Acme Engineering",
        "contact_name": "Ada Lovelace",
        "contact_email": email or unique_email(),
        "has_password": False,
        "created_at": iso(datetime.now(UTC)),
    }
    values.update(overrides)
    return values


def license_(**overrides: Any) -> dict[str, Any]:
    values = {
        "license_id": "L" + uuid.uuid4().hex[:10].upper(),
        "product": {"code": "cad-pro", "name": "CAD Pro"},
        "seats": 5,
        "expires_at": "2027-01-31T00:00:00+00:00",
        "status": "active",
    }
    values.update(overrides)
    return values


def event(body: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        **body,
        "event_id": event_id or uuid.uuid4().hex,
        "occurred_at": iso(datetime.now(UTC)),
    }


def link_for(request_id: str) -> str:
    """The link the fake auth (`FakeDirectory.password_link`) makes for a password request."""
    return f"{PORTAL_URL}/reset-password#token=token-of-{request_id}"


def company_created(email: str | None = None, with_link: bool = True, **extra: Any) -> dict:
    """auth's event: with a set-up request (its link is asked of auth at send time)."""
    now = datetime.now(UTC)
    body = {"company": company(email), "request_id": None}
    if with_link:
        body["request_id"] = uuid.uuid4().hex
        body["expires_at"] = iso(now + timedelta(days=7))
    return event({**body, **extra})


def company_invited(email: str | None = None) -> dict[str, Any]:
    """auth's `resend_invite` event: a new set-up request (its link asked of auth at send)."""
    now = datetime.now(UTC)
    body = company(email)
    return event(
        {
            "customer_id": body["customer_id"],
            "contact_email": body["contact_email"],
            "company": body,
            "request_id": uuid.uuid4().hex,
            "expires_at": iso(now + timedelta(days=7)),
        }
    )


def password_reset_requested(
    email: str | None = None,
    expires_in: timedelta | None = None,
    user: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """auth's event; with `user` (team accounts) the email goes to that user, not `email`."""
    now = datetime.now(UTC)
    body = {
        "company": company(email),
        "request_id": uuid.uuid4().hex,
        "expires_at": iso(now + (expires_in or timedelta(minutes=30))),
    }
    if user is not None:
        body["user"] = user
    return event(body)


def new_user_id() -> str:
    """A user ID in auth's shape (`U-XXXX-XXXX`)."""
    digits = uuid.uuid4().hex.upper()
    return f"U-{digits[:4]}-{digits[4:8]}"


def user(email: str | None = None, role: str = "license_admin", **overrides: Any) -> dict:
    """A user as auth's events name one: `{user_id, email, name, role}`."""
    values = {
        "user_id": new_user_id(),
        "email": email or unique_email("user"),
        "name": "Grace Hopper",
        "role": role,
    }
    values.update(overrides)
    return values


def company_ref(customer_id: str | None = None) -> dict[str, Any]:
    """The company as auth's user events name it: `{customer_id, name}`."""
    return {"customer_id": customer_id or "C" + str(uuid.uuid4().int)[:7], "name": "Acme"}


def user_invited(
    email: str | None = None, role: str = "license_admin", invited_by: str = "ada@acme.test"
) -> dict[str, Any]:
    """auth's `invite_user` / `resend_invitation` event: the accept link is asked at send."""
    return event(
        {
            "company": company_ref(),
            "user": user(email, role=role),
            "request_id": uuid.uuid4().hex,
            "expires_at": iso(datetime.now(UTC) + timedelta(days=7)),
            "invited_by": invited_by,
        }
    )


def user_role_changed(
    email: str | None = None,
    old_role: str = "viewer",
    new_role: str = "billing",
    changed_by: str = "ada@acme.test",
) -> dict[str, Any]:
    return event(
        {
            "company": company_ref(),
            "user": user(email, role=new_role),
            "old_role": old_role,
            "new_role": new_role,
            "changed_by": changed_by,
        }
    )


def user_disabled(email: str | None = None, disabled_by: str = "ada@acme.test") -> dict:
    return event({"company": company_ref(), "user": user(email), "disabled_by": disabled_by})


def user_events() -> dict[str, dict[str, Any]]:
    """One event of every auth user-management type notify emails about, keyed by type."""
    return {
        "user_invited": user_invited(),
        "user_role_changed": user_role_changed(),
        "user_disabled": user_disabled(),
    }


def legacy_company_created(email: str | None = None) -> dict[str, Any]:
    """The shape auth published before issue 11: the link itself, raw token and all."""
    return event(
        {
            "company": company(email),
            "set_password_url": f"{PORTAL_URL}/reset-password#token={uuid.uuid4().hex}",
            "expires_at": iso(datetime.now(UTC) + timedelta(days=7)),
        }
    )


def legacy_password_reset_requested(email: str | None = None) -> dict[str, Any]:
    """The shape auth published before issue 11: the link itself, raw token and all."""
    return event(
        {
            "company": company(email),
            "reset_url": f"{PORTAL_URL}/reset-password#token={uuid.uuid4().hex}",
            "expires_at": iso(datetime.now(UTC) + timedelta(minutes=30)),
        }
    )


def password_changed(
    email: str | None = None, how: str = "change", user: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = {"company": company(email), "how": how, "changed_at": iso(datetime.now(UTC))}
    if user is not None:
        body["user"] = user
    return event(body)


def license_issued(customer_id: str, **license_overrides: Any) -> dict[str, Any]:
    return event({"customer_id": customer_id, "license": license_(**license_overrides)})


def license_extended(customer_id: str) -> dict[str, Any]:
    return event(
        {
            "customer_id": customer_id,
            "license": license_(expires_at="2028-01-31T00:00:00+00:00"),
            "previous_expires_at": "2027-01-31T00:00:00+00:00",
        }
    )


def installation_activated(customer_id: str, machine_name: str = "WS-042") -> dict[str, Any]:
    return event(
        {
            "customer_id": customer_id,
            "license": license_(),
            "installation": {
                "installation_id": "inst-" + uuid.uuid4().hex,
                "machine_name": machine_name,
                "activated_at": iso(datetime.now(UTC)),
            },
        }
    )


def license_expiring(customer_id: str, days_left: int = 7) -> dict[str, Any]:
    return event({"customer_id": customer_id, "license": license_(), "days_left": days_left})


def license_suspended(
    customer_id: str, reason: str | None = "Unpaid invoice 2026-114."
) -> dict[str, Any]:
    """licensing's shape: the facts flat, and the whole license beside them."""
    license = license_(status="suspended")
    return event(
        {
            "license_id": license["license_id"],
            "customer_id": customer_id,
            "product": license["product"],
            "reason": reason,
            "license": license,
        }
    )


def license_resumed(customer_id: str) -> dict[str, Any]:
    license = license_()
    return event(
        {
            "license_id": license["license_id"],
            "customer_id": customer_id,
            "product": license["product"],
            "license": license,
        }
    )


def license_features_changed(customer_id: str) -> dict[str, Any]:
    """licensing's shape: the features the license holds now, the codes added and
    removed, and the names of both."""
    license = license_()
    return event(
        {
            "customer_id": customer_id,
            "license_id": license["license_id"],
            "product": license["product"],
            "features": [{"code": "steel", "name": "Steel design"}],
            "added": ["steel"],
            "removed": ["dynamics"],
            "added_features": [{"code": "steel", "name": "Steel design"}],
            "removed_features": [{"code": "dynamics", "name": "Dynamic analysis"}],
            "changed_by": {"type": "staff"},
        }
    )


def seats_exhausted(customer_id: str, seats: int = 2, **overrides: Any) -> dict[str, Any]:
    """licensing's shape: a refused check-out of a floating license, and who holds its seats
    (soonest free last here: the email sorts them)."""
    license = license_(seats=seats)
    machines = [
        {
            "machine_name": f"WS-{index:02d}",
            "expires_at": iso(datetime(2026, 12, 9, 16, 45, tzinfo=UTC) - timedelta(hours=index)),
            "borrowed": index == 1,
        }
        for index in range(1, seats + 1)
    ]
    return event(
        {
            "customer_id": customer_id,
            "license_id": license["license_id"],
            "product": license["product"],
            "seats": seats,
            "machines": machines,
            "at": "2026-12-02T16:30:00+00:00",
            **overrides,
        }
    )


def licensing_events(customer_id: str) -> dict[str, dict[str, Any]]:
    """One event of every licensing type notify emails about, keyed by event type."""
    return {
        "license_issued": license_issued(customer_id),
        "license_extended": license_extended(customer_id),
        "installation_activated": installation_activated(customer_id),
        "license_expiring": license_expiring(customer_id),
        "license_suspended": license_suspended(customer_id),
        "license_resumed": license_resumed(customer_id),
        "license_features_changed": license_features_changed(customer_id),
        "seats_exhausted": seats_exhausted(customer_id),
    }


def billing_events(customer_id: str) -> dict[str, dict[str, Any]]:
    """One event of every billing type notify emails about, keyed by event type."""
    payment = {
        "receipt_number": "R-2026-000123",
        "amount": 14700,
        "currency": "EUR",
        "amount_formatted": "€147.00",
        "description": "CAD Pro, 3 seats, monthly",
        "paid_at": "2026-11-28T09:30:00+00:00",
        "card_brand": "visa",
        "card_last4": "4242",
    }
    recurring = {
        "id": "rp_0123456789abcdef0123",
        "license_id": "L-7KQX-M2PD",
        "product": {"code": "cadpro"},
        "amount": 14700,
        "currency": "EUR",
        "amount_formatted": "€147.00",
        "interval": "month",
        "next_charge_at": "2026-12-28T09:30:00+00:00",
        "status": "active",
    }
    purchase = {
        "kind": "new",
        "plan": "cad-m",
        "product_code": "cadpro",
        "seats": 3,
        "period_start": "2026-11-28T09:30:00+00:00",
        "period_end": "2026-12-28T09:30:00+00:00",
        "license_id": None,
    }
    return {
        "payment_succeeded": event(
            {"customer_id": customer_id, "payment": payment, "purchase": purchase}
        ),
        "payment_failed": event(
            {
                "customer_id": customer_id,
                "recurring_payment": recurring,
                "attempt": 1,
                "next_retry_at": "2026-12-29T09:30:00+00:00",
                "reason": "insufficient_funds",
            }
        ),
        "recurring_payment_cancelled": event(
            {"customer_id": customer_id, "recurring_payment": {**recurring, "status": "cancelled"}}
        ),
        "offline_payment_recorded": event({"customer_id": customer_id, "payment": payment}),
        "payment_refunded": event(
            {
                "customer_id": customer_id,
                "receipt_number": "R-2026-000124",
                "amount": 245000,
                "currency": "EUR",
                "description": "CAD Pro, 5 seats, yearly",
                "product": {"code": "cadpro", "name": "CAD Pro"},
                "reason": "product_archived",
                "message": "The product cadpro is archived.",
                "refunded_at": "2026-11-28T09:31:00+00:00",
            }
        ),
        "payment_disputed": payment_disputed(customer_id),
        "payment_dispute_closed": payment_dispute_closed(customer_id),
        "recurring_payment_resumed": event(
            {
                "customer_id": customer_id,
                "recurring_payment": {
                    **recurring,
                    "product": {"code": "cadpro", "name": "CAD Pro"},
                },
                "resumed_at": "2026-11-29T10:00:00+00:00",
            }
        ),
        "recurring_payment_card_changed": event(
            {
                "customer_id": customer_id,
                "recurring_payment": {
                    **recurring,
                    "product": {"code": "cadpro", "name": "CAD Pro"},
                    "card_brand": "mastercard",
                    "card_last4": "4444",
                },
                "changed_at": "2026-11-29T10:00:00+00:00",
            }
        ),
    }


def payment_disputed(
    customer_id: str, license_id: str | None = "L-7KQX-M2PD", **extra: Any
) -> dict[str, Any]:
    """billing's `payment_disputed`: the customer's bank disputes the payment R-2026-000125."""
    return event(
        {
            "customer_id": customer_id,
            "receipt_number": "R-2026-000125",
            "license_id": license_id,
            "amount": 245000,
            "currency": "EUR",
            "reason": "fraudulent",
            "product_name": "CAD Pro",
            **extra,
        }
    )


def payment_dispute_closed(
    customer_id: str, status: str = "won", license_id: str | None = "L-7KQX-M2PD", **extra: Any
) -> dict[str, Any]:
    """billing's `payment_dispute_closed` of that dispute: won or lost."""
    return payment_disputed(customer_id, license_id, status=status, **extra)
