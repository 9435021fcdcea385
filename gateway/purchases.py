"""A portal purchase: what billing is asked, and the bounded wait for the license.

Licensing issues (or extends) the license when it hears of the payment, so the license
follows the payment by a moment. The purchase answer waits for it up to
PURCHASE_LICENSE_WAIT_SECONDS, then answers `license: null`, `license_status: "pending"`:
the payment is final either way.

With Stripe the card's bank may ask the customer to confirm the payment (3-D Secure):
billing then answers `{"status": "requires_action", "purchase_id", "client_secret"}`,
which the gateway answers as 202 until the confirmation (`POST
/api/v1/purchases/{purchase_id}/confirm`) finds it paid. `outcome` is the one answer of
both routes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import eventlet

from common import settings
from common.errors import PortalError
from gateway import roles
from gateway.http import Reply
from gateway.views import named_product, purchase_for_role

log = logging.getLogger(__name__)

DEFAULT_LICENSE_WAIT_SECONDS = 5.0
LICENSE_POLL_SECONDS = 0.2
REQUIRES_ACTION = "requires_action"  # billing's answer while the bank awaits the customer


def billing_payload(body: dict[str, Any], request_key: str) -> dict[str, Any]:
    """The purchase as billing takes it: the body without its nulls, plus the request's key
    (`gateway.request_keys`: the client's `Idempotency-Key`, else the gateway's own) as
    `request_key`, the same key the RPC context carries."""
    payload = {key: value for key, value in body.items() if value is not None}
    payload["request_key"] = request_key
    return payload


def license_wait_seconds() -> float:
    return settings.get_float("PURCHASE_LICENSE_WAIT_SECONDS", DEFAULT_LICENSE_WAIT_SECONDS)


def wait_for_license(
    licensing: Any,
    receipt_number: str,
    customer_id: str,
    wait_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], Any] = eventlet.sleep,
) -> dict[str, Any] | None:
    """The license licensing issued or extended for this receipt, if it is there within
    `wait_seconds`: asked every LICENSE_POLL_SECONDS, each call cut at the deadline."""
    deadline = clock() + wait_seconds
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            return None
        try:
            with eventlet.Timeout(remaining):
                found = licensing.license_for_payment(receipt_number, customer_id)
            if found:
                return found
        except eventlet.Timeout:
            return None
        except PortalError as exc:
            log.info("licensing cannot say yet about %s: %s", receipt_number, exc.code)
        pause(min(LICENSE_POLL_SECONDS, max(0.0, deadline - clock())))


def answer(result: dict[str, Any], license: dict[str, Any] | None, renewal: bool) -> dict[str, Any]:
    """`{payment, license, license_status, recurring_payment}` for billing's `result`:
    `license_status` is "issued" or "extended" (a renewal), "pending" without the license.

    The payment names the license as soon as the answer has it: billing learns it from
    licensing's event a moment later, so a retried purchase (same Idempotency-Key) answers
    the same payment whichever of the two it sees first.
    """
    payment = result["payment"]
    if license is not None:
        payment = {**payment, "license_id": license["license_id"]}
    if license is None:
        status = "pending"
    elif renewal:
        status = "extended"
    else:
        status = "issued"
    return {
        "payment": payment,
        "license": license,
        "license_status": status,
        "recurring_payment": named_product(result["recurring_payment"], {}),
    }


def outcome(
    licensing: Any, company: dict[str, Any], result: dict[str, Any], renewal: bool | None = None
) -> dict[str, Any] | Reply:
    """The answer to billing's `result` of a purchase or of its confirmation.

    `{"status": "requires_action", "purchase_id": "pur_…", "client_secret": "pi_…_secret_…"}`
    is a 202 of it. A paid one is the purchase answer (`answer`), with the license when
    licensing has it within the wait, and its `activation_password` only for the roles
    that may read it. `renewal` None: as billing's payment says (its `kind`).
    """
    if result.get("status") == REQUIRES_ACTION:
        return Reply(result, status=202)
    if renewal is None:
        renewal = result["payment"].get("kind") == "renewal"
    customer_id = company["customer_id"]
    license = wait_for_license(
        licensing, result["payment"]["receipt_number"], customer_id, license_wait_seconds()
    )
    paid = answer(result, license, renewal)
    return purchase_for_role(paid, roles.may(company, roles.PASSWORD_READERS))
