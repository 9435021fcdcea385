"""What leaves notify: the rows its RPC methods list for ops (no bodies, no payloads)."""

from __future__ import annotations

from typing import Any

from common.timeutil import iso
from services.notify.models import Delivery, ParkedEvent


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    """A delivery for ops: the envelope and its history, never the body or the payload."""
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "source": delivery.source,
        "kind": delivery.kind,
        "customer_id": delivery.customer_id,
        "recipient": delivery.recipient,
        "subject": delivery.subject,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "next_attempt_at": iso(delivery.next_attempt_at),
        "created_at": iso(delivery.created_at),
        "sent_at": iso(delivery.sent_at),
        # the user a notice's delivery goes to (null for the event's own row)
        "user_id": delivery.user_id or None,
    }


def parked_view(parked: ParkedEvent) -> dict[str, Any]:
    """A parked event for ops: why it was parked, not its payload."""
    return {
        "id": parked.id,
        "event_id": parked.event_id,
        "source": parked.source,
        "event_type": parked.event_type,
        "error": parked.error,
        "parked_at": iso(parked.parked_at),
    }
