"""What leaves the licensing service: the dicts its RPC methods answer and its events carry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.audit import Actor
from common.timeutil import iso
from common.validation import validation_view  # the answer, shared with the gateway
from services.licensing import domain, offline
from services.licensing.models import HistoryEvent, Installation, Lease, License, Product

# --- RPC answers ---------------------------------------------------------------------------


def product_ref(product: Product) -> dict[str, Any]:
    """A product as licenses and events name it: `{code, name}`."""
    return {"code": product.code, "name": product.name}


def product_view(product: Product) -> dict[str, Any]:
    """The catalogue's product: `{code, name, active, features: [{code, name}]}` (active
    false: archived, off sale; features by code)."""
    return {
        **product_ref(product),
        "active": product.archived_at is None,
        "features": [{"code": item.code, "name": item.name} for item in product.features],
    }


def feature_codes(license: License) -> list[str]:
    """The codes of the features `license` unlocks, sorted."""
    return sorted(item.code for item in license.features)


def features_view(product: Product, codes: list[str]) -> list[dict[str, str]]:
    """`[{code, name}]` of `codes` (features of `product`), by code."""
    names = {item.code: item.name for item in product.features}
    return [{"code": code, "name": names.get(code, code)} for code in sorted(codes)]


def license_view(
    license: License, now: datetime, seats_in_use: int | None = None
) -> dict[str, Any]:
    """`{license_id, customer_id, product: {code, name}, nickname, note, seats, seats_in_use,
    expires_at, suspended_at, suspension_reason, suspension_cause, status, created_at,
    features: [{code, name}], model, lease_seconds, max_borrow_days}` (the lease terms null
    for a node-locked license; `seats_in_use` of a floating one: its live leases;
    `suspension_cause` "staff" or "payment_disputed" while suspended; `nickname` and `note`
    the company's labels, null when not set)."""
    view = {
        "license_id": license.license_id,
        "customer_id": license.customer_id,
        "product": product_ref(license.product),
        "nickname": license.nickname,
        "note": license.note,
        "seats": license.seats,
        "expires_at": iso(license.expires_at),
        "suspended_at": iso(license.suspended_at),
        # null unless suspended (a resumed license forgets why it was suspended)
        "suspension_reason": license.suspension_reason if license.suspended_at else None,
        # a suspension older than causes was staff's (migration 0009 says so too)
        "suspension_cause": (license.suspension_cause or domain.BY_STAFF)
        if license.suspended_at
        else None,
        "status": domain.license_status(license.expires_at, license.suspended_at, now),
        "created_at": iso(license.created_at),
        "features": features_view(license.product, feature_codes(license)),
        "model": license.model or domain.NODE_LOCKED,
        "lease_seconds": license.lease_seconds,
        "max_borrow_days": license.max_borrow_days,
    }
    if seats_in_use is not None:
        view["seats_in_use"] = seats_in_use
    return view


@dataclass(frozen=True)
class FloatingFacts:
    """What a floating license's page shows besides installations: its live leases (oldest
    first) and its daily peaks of the last days (`domain.usage_summary`)."""

    leases: list[Lease]
    usage: dict[str, Any]


def license_detail_view(
    license: License,
    now: datetime,
    installations: list[Installation],
    password: str | None,
    floating: FloatingFacts | None = None,
) -> dict[str, Any]:
    """The license with its activation password (None: not shown to this reader), every
    installation (newest first), and `leases` (live, oldest first) with `usage` (`{peak_30d,
    days: [{date, peak}]}`) for a floating license (`[]` and null for a node-locked one)."""
    if floating is None:
        in_use = sum(1 for item in installations if item.status == domain.INSTALLATION_ACTIVE)
    else:
        in_use = len(floating.leases)
    return {
        **license_view(license, now, in_use),
        "activation_password": password,
        "installations": [installation_view(item) for item in installations],
        "leases": [lease_view(item, license.license_id, now) for item in floating.leases]
        if floating
        else [],
        "usage": floating.usage if floating else None,
    }


def sealed_detail(
    license: License,
    now: datetime,
    installations: list[Installation],
    floating: FloatingFacts | None = None,
) -> dict[str, Any]:
    """`license_detail_view` with the password as the license keeps it (a Fernet token) in
    `sealed_password`, for the request ledger; `opened_detail` makes the answer of it."""
    view = license_detail_view(license, now, installations, None, floating)
    return {**view, "sealed_password": license.activation_password}


def opened_detail(sealed: dict[str, Any], password: str) -> dict[str, Any]:
    """The answer of a `sealed_detail`: its `activation_password` the opened `password`."""
    view = {key: value for key, value in sealed.items() if key != "sealed_password"}
    return {**view, "activation_password": password}


def password_view(license_id: str, password: str) -> dict[str, Any]:
    """`rotate_activation_password`'s answer: `{license_id, activation_password}`."""
    return {"license_id": license_id, "activation_password": password}


def sealed_password(license: License) -> dict[str, Any]:
    """What the request ledger keeps of a rotation: the new password as stored (a Fernet
    token), never its plain text; `password_view` is made from it when answering."""
    return {"license_id": license.license_id, "sealed_password": license.activation_password}


def installation_view(installation: Installation) -> dict[str, Any]:
    return {
        "installation_id": installation.installation_id,
        "machine_name": installation.machine_name,
        "status": installation.status,
        "activated_at": iso(installation.activated_at),
        "last_seen_at": iso(installation.last_seen_at),
        "deactivated_at": iso(installation.deactivated_at),
        "deactivated_by": installation.deactivated_by,
    }


def history_actor(event: HistoryEvent) -> dict[str, Any]:
    """Who acted: `{type, user_id?, email?}`; a row without one, what its source implies."""
    kind = event.actor_type or domain.actor_type_of_source(event.source)
    return Actor(kind, user_id=event.actor_user_id, email=event.actor_email).to_dict()


def history_view(event: HistoryEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "type": event.type,
        "at": iso(event.at),
        "installation_id": event.installation_id,
        "machine_name": event.machine_name,
        "source": event.source,
        "reason": event.reason,
        "actor": history_actor(event),
    }


def history_page(events: list[HistoryEvent], limit: int) -> dict[str, Any]:
    """`events` holds up to `limit + 1` rows, newest first; the extra one says there is more."""
    page = events[:limit]
    more = len(events) > limit
    return {
        "events": [history_view(event) for event in page],
        "next_before": str(page[-1].id) if more and page else None,
    }


def activation_view(
    license: License, installation: dict[str, Any], status: str, source: str | None = None
) -> dict[str, Any]:
    """The installation as the product sees it after activating, with its license's facts
    (and `source: "offline"` for an offline activation)."""
    view = {
        **installation,
        "license_id": license.license_id,
        "product": product_ref(license.product),
        "expires_at": iso(license.expires_at),
        "license_status": status,
    }
    if source is not None:
        view["source"] = source
    return view


def activation_reply(result: dict[str, Any], certificate: str) -> dict[str, Any]:
    """`activate`'s answer: `{"activation", "certificate", "created"}`."""
    return {
        "activation": result["activation"],
        "certificate": certificate,
        "created": result["created"],
    }


def offline_reply(result: dict[str, Any], certificate: str, secret: str) -> dict[str, Any]:
    """`activate_offline`'s answer: `activation_reply` with `response`, the text of the
    response file (the request's nonce, the certificate and the deactivation `secret`)."""
    activation = result["activation"]
    response = offline.response_text(
        license_id=activation["license_id"],
        installation_id=activation["installation_id"],
        product=activation["product"]["code"],
        nonce=result["nonce"],
        issued_at=result["issued_at"],
        certificate=certificate,
        secret=secret,
    )
    return {**activation_reply(result, certificate), "response": response}


def lease_validation_view(
    code: str,
    license_id: Any,
    installation_id: Any,
    expires_at: datetime | None,
    features: list[str],
    lease_id: str,
    lease_expires_at: datetime | None,
) -> dict[str, Any]:
    """A lease certificate's `validate` answer: `validation_view` (`expires_at` the
    license's) with `lease_id` and `lease_expires_at` (null for an unknown lease)."""
    return {
        **validation_view(code, license_id, installation_id, expires_at, features),
        "lease_id": lease_id,
        "lease_expires_at": iso(lease_expires_at),
    }


def lease_view(lease: Lease, license_id: str, now: datetime) -> dict[str, Any]:
    """`{lease_id, license_id, installation_id, machine_name, started_at, expires_at,
    last_heartbeat_at, borrowed, borrowed_until, status, ended_at}`; a live lease past its
    expiry is shown `expired`, ended at its expiry (domain.lease_status)."""
    return {
        "lease_id": lease.lease_id,
        "license_id": license_id,
        "installation_id": lease.installation_id,
        "machine_name": lease.machine_name,
        "started_at": iso(lease.started_at),
        "expires_at": iso(lease.expires_at),
        "last_heartbeat_at": iso(lease.last_heartbeat_at),
        "borrowed": lease.borrowed_until is not None,
        "borrowed_until": iso(lease.borrowed_until),
        "status": domain.lease_status(lease.status, lease.expires_at, now),
        "ended_at": iso(domain.lease_ended_at(lease.status, lease.expires_at, lease.ended_at, now)),
    }


def lease_machine(lease: Lease) -> dict[str, Any]:
    """Who holds a seat, as a refusal and `seats_exhausted` name them: `{machine_name,
    expires_at, borrowed}`."""
    return {
        "machine_name": lease.machine_name,
        "expires_at": iso(lease.expires_at),
        "borrowed": lease.borrowed_until is not None,
    }


def checkout_reply(result: dict[str, Any], certificate: str) -> dict[str, Any]:
    """`checkout`'s answer: `{"lease", "lease_token", "certificate", "created"}`."""
    return {
        "lease": result["lease"],
        "lease_token": result["lease_token"],
        "certificate": certificate,
        "created": result["created"],
    }


def heartbeat_reply(result: dict[str, Any], certificate: str) -> dict[str, Any]:
    """`heartbeat`'s answer: `{"lease", "certificate"}`."""
    return {"lease": result["lease"], "certificate": certificate}


def signed_validation(answer: dict[str, Any], signed_answer: str) -> dict[str, Any]:
    """`validate`'s answer with `signed_answer`, the same answer as a compact JWS."""
    return {**answer, "signed_answer": signed_answer}


# --- event payloads ------------------------------------------------------------------------


def event_license(license: License, now: datetime) -> dict[str, Any]:
    """The license as events carry it: `{license_id, product, seats, expires_at, status}`."""
    # not made from `license_view`: the names of its features would cost the activation hot
    # path a query, and no consumer reads them here
    return {
        "license_id": license.license_id,
        "product": product_ref(license.product),
        "seats": license.seats,
        "expires_at": iso(license.expires_at),
        "status": domain.license_status(license.expires_at, license.suspended_at, now),
    }


def license_issued(license: License, now: datetime) -> dict[str, Any]:
    return {"customer_id": license.customer_id, "license": event_license(license, now)}


def license_extended(
    license: License, previous_expires_at: datetime | None, now: datetime
) -> dict[str, Any]:
    return {
        "customer_id": license.customer_id,
        "license": event_license(license, now),
        "previous_expires_at": iso(previous_expires_at),
    }


def installation_event(
    license: License, installation: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """`installation_activated` and `installation_deactivated`."""
    return {
        "customer_id": license.customer_id,
        "license": event_license(license, now),
        "installation": installation,
    }


def license_expiring(
    license: License, days_left: int, threshold: int, now: datetime
) -> dict[str, Any]:
    return {
        "customer_id": license.customer_id,
        "license": event_license(license, now),
        "days_left": days_left,
        "threshold": threshold,
    }


def license_suspended(license: License, now: datetime) -> dict[str, Any]:
    """`{license_id, customer_id, product: {code, name}, reason, license}`."""
    return {
        "license_id": license.license_id,
        "customer_id": license.customer_id,
        "product": product_ref(license.product),
        "reason": license.suspension_reason,
        "license": event_license(license, now),
    }


def license_resumed(license: License, now: datetime) -> dict[str, Any]:
    """`{license_id, customer_id, product: {code, name}, license}`."""
    return {
        "license_id": license.license_id,
        "customer_id": license.customer_id,
        "product": product_ref(license.product),
        "license": event_license(license, now),
    }


def license_features_changed(
    license: License, added: list[str], removed: list[str], changed_by: Actor
) -> dict[str, Any]:
    """`{customer_id, license_id, product: {code, name}, features: [{code, name}], added,
    removed, changed_by: {type, user_id?, email?}}` (added/removed: codes)."""
    product = license.product
    return {
        "customer_id": license.customer_id,
        "license_id": license.license_id,
        "product": product_ref(product),
        "features": features_view(product, feature_codes(license)),
        "added": sorted(added),
        "removed": sorted(removed),
        # the names of what was removed, for the email (the codes alone say little)
        "added_features": features_view(product, added),
        "removed_features": features_view(product, removed),
        "changed_by": changed_by.to_dict(),
    }


def seats_exhausted(
    license: License, machines: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    """`{customer_id, license_id, product: {code, name}, seats, machines: [{machine_name,
    expires_at, borrowed}], at}`: every seat of a floating license is in use."""
    return {
        "customer_id": license.customer_id,
        "license_id": license.license_id,
        "product": product_ref(license.product),
        "seats": license.seats,
        "machines": machines,
        "at": iso(now),
    }


def lease_revoked(license: License, lease: Lease, revoked_by: Actor) -> dict[str, Any]:
    """`{customer_id, license_id, lease_id, installation_id, machine_name, revoked_by:
    {type, user_id?, email?}}`."""
    return {
        "customer_id": license.customer_id,
        "license_id": license.license_id,
        "lease_id": lease.lease_id,
        "installation_id": lease.installation_id,
        "machine_name": lease.machine_name,
        "revoked_by": revoked_by.to_dict(),
    }


def payment_not_applied(
    receipt_number: str, customer_id: str, reason: str, message: str
) -> dict[str, Any]:
    """`{receipt_number, customer_id, reason (an error code), message}`: billing refunds."""
    return {
        "receipt_number": receipt_number,
        "customer_id": customer_id,
        "reason": reason,
        "message": message,
    }
