"""Licensing reacting to billing: a paid purchase issues a license, a paid renewal extends one.

`PaymentHandlers` is a mixin of `LicensingService` (it uses the service's `db`, `keys` and
`events`). DESIGN.md §8: nameko acks an event even when the handler raised, so the effect
and a `payment_events` row keyed by `event_id` are committed in one transaction before the
message is acked; a redelivered event finds the row and changes nothing. A payload that can
never be applied (malformed, unknown product, another company's license) is parked in the
same table, not raised; a transient failure (database down) is raised with
`requeue_on_error=True`, so the message goes back to the queue instead of being lost.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import eventlet
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from nameko.events import event_handler
from nameko.rpc import rpc
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from common import outbox
from common.errors import PortalError, validation_error
from common.timeutil import as_utc, utcnow
from services.licensing import licenses
from services.licensing.licenses import Outcome
from services.licensing.models import EventOutbox, PaymentEvent
from services.licensing.repository import LicensingRepository

log = logging.getLogger(__name__)

# requeue_on_error hands the message straight back: pause so an outage is not a busy loop
REQUEUE_PAUSE_SECONDS = 1.0
APPLIED, PARKED = "applied", "parked"


class _Part(Schema):
    class Meta:
        unknown = EXCLUDE


class _Payment(_Part):
    receipt_number = fields.String(required=True, validate=validate.Length(min=1, max=32))


class _Purchase(_Part):
    kind = fields.String(required=True, validate=validate.OneOf(["new", "renewal"]))
    product_code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    seats = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    period_end = fields.AwareDateTime(required=True, default_timezone=UTC)
    license_id = fields.String(load_default=None, allow_none=True)


class PaymentSucceeded(_Part):
    event_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    customer_id = fields.String(required=True, validate=validate.Length(min=1, max=32))
    payment = fields.Nested(_Payment, required=True)
    purchase = fields.Nested(_Purchase, required=True)


class Poison(Exception):
    """This payment event can never be applied; it is parked with the reason."""


def apply_payment(
    repo: LicensingRepository, box, event: dict[str, Any], now: datetime
) -> tuple[Outcome, str | None]:
    """Issue (`new`) or extend (`renewal`) the license the payment paid for.

    Returns the outcome (with `license_issued` / `license_extended`) and the license ID.
    A renewal never shortens a license, and a perpetual license stays perpetual.
    """
    purchase = event["purchase"]
    customer_id = event["customer_id"]
    period_end = as_utc(purchase["period_end"])
    try:
        if purchase["kind"] == "new":
            data = {
                "customer_id": customer_id,
                "product": purchase["product_code"],
                "seats": purchase["seats"],
                "expires_at": period_end,
            }
            outcome = licenses.issue_license(repo, box, data, now)
            return outcome, outcome.result["license_id"]
        if not purchase.get("license_id"):
            raise Poison("a renewal names no license_id")
        license = licenses.find_license(repo, purchase["license_id"], customer_id, lock=True)
        if license.expires_at is None or as_utc(license.expires_at) >= period_end:
            return Outcome(), license.license_id
        outcome = licenses.extend(repo, license.license_id, period_end, now)
        return outcome, license.license_id
    except PortalError as exc:  # unknown product, another company's license: never succeeds
        raise Poison(f"{exc.code}: {exc.message}") from exc


def _insert_ignoring_conflicts(session, values: dict[str, Any]) -> bool:
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = module.insert(PaymentEvent.__table__).values(**values).on_conflict_do_nothing()
    return session.execute(statement).rowcount == 1


class PaymentHandlers:
    """Mixin for `LicensingService`: `payment_succeeded` → license, and the RPC to find it."""

    @event_handler("billing", "payment_succeeded", requeue_on_error=True)
    def on_payment_succeeded(self, payload: Any) -> None:
        try:
            self._apply_payment(payload)
        except Exception:
            log.exception("payment event not applied; it goes back to the queue")
            eventlet.sleep(REQUEUE_PAUSE_SECONDS)
            raise

    def _apply_payment(self, payload: Any) -> None:
        now = utcnow()
        try:
            event = PaymentSucceeded().load(payload if isinstance(payload, dict) else {})
        except ValidationError as exc:
            self._park(payload, f"invalid payload: {exc.messages}", now)
            return
        try:
            with self.db.transaction() as session:
                recorded = _insert_ignoring_conflicts(
                    session,
                    {
                        "event_id": event["event_id"],
                        "receipt_number": event["payment"]["receipt_number"],
                        "customer_id": event["customer_id"],
                        "kind": event["purchase"]["kind"],
                        "status": APPLIED,
                        "received_at": now,
                    },
                )
                if not recorded:  # seen before (this event, or this receipt): nothing to do
                    return
                outcome, license_id = apply_payment(
                    LicensingRepository(session), self.keys.box, event, now
                )
                row = session.scalar(
                    select(PaymentEvent).where(PaymentEvent.event_id == event["event_id"])
                )
                row.license_id = license_id
                receipt = event["payment"]["receipt_number"]
                staged = outbox.stage(
                    session,
                    EventOutbox,
                    [(kind, {**body, "receipt_number": receipt}) for kind, body in outcome.events],
                )
        except Poison as exc:
            self._park(payload, str(exc), now)
            return
        outbox.flush(self.db, EventOutbox, self.events, staged)

    def _park(self, payload: Any, reason: str, now: datetime) -> None:
        """Keep an event that can never be applied, for staff to look at; never raise it."""
        event_id = payload.get("event_id") if isinstance(payload, dict) else None
        event_id = str(event_id)[:100] if event_id else f"unidentified-{now.timestamp()}"
        log.warning("payment event %s parked: %s", event_id, reason)
        with self.db.transaction() as session:
            _insert_ignoring_conflicts(
                session,
                {
                    "event_id": event_id,
                    "status": PARKED,
                    "error": reason[:2000],
                    "payload": json.dumps(payload, default=str)[:100_000],
                    "received_at": now,
                },
            )

    @rpc(expected_exceptions=PortalError)
    def license_for_payment(self, receipt_number: str, customer_id: str) -> dict | None:
        """The license a paid purchase or renewal issued or extended, once it has.

        `("R-2026-000123", "C4829113")` → `{license_id, customer_id, product: {code, name},
        seats, seats_in_use, expires_at, status, …}`, or null while the payment has not
        been applied yet (or belongs to another company).
        """
        for name, value, limit in (
            ("receipt_number", receipt_number, 32),
            ("customer_id", customer_id, 32),
        ):
            if not isinstance(value, str) or not 0 < len(value) <= limit:
                raise validation_error({name: [f"Expected a string of 1 to {limit} characters."]})
        with self.db.transaction() as session:
            row = session.scalar(
                select(PaymentEvent).where(
                    PaymentEvent.receipt_number == receipt_number,
                    PaymentEvent.customer_id == customer_id,
                    PaymentEvent.status == APPLIED,
                )
            )
            if row is None or row.license_id is None:
                return None
            repo = LicensingRepository(session)
            license = repo.license(row.license_id)
            if license is None:
                return None
            in_use = repo.seats_in_use([license.id]).get(license.id, 0)
            return licenses.license_view(license, utcnow(), in_use)
