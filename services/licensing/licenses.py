"""License use cases for staff and the portal: each takes a repository and plain data.

The nameko service opens the transaction and publishes the resulting events after commit;
these functions only decide and write. A company asking about another company's license
gets `LicenseNotFound`, exactly as for a license that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from common.errors import PortalError
from common.timeutil import iso
from services.licensing import domain
from services.licensing.crypto import PasswordBox
from services.licensing.exceptions import (
    InstallationNotFound,
    LicenseNotFound,
    ProductExists,
    ProductNotFound,
)
from services.licensing.models import HistoryEvent, Installation, License, Product
from services.licensing.repository import LicensingRepository

Event = tuple[str, dict[str, Any]]


@dataclass
class Outcome:
    """What a use case returns: its result and the events to publish once committed."""

    result: Any = None
    events: list[Event] = field(default_factory=list)
    # an answer to give *after* the transaction commits (a refusal that history records)
    error: PortalError | None = None


# --- views ---------------------------------------------------------------------------------


def product_view(product: Product) -> dict[str, Any]:
    return {"code": product.code, "name": product.name}


def license_view(
    license: License, now: datetime, seats_in_use: int | None = None
) -> dict[str, Any]:
    """`{license_id, customer_id, product: {code, name}, seats, seats_in_use, expires_at,
    suspended_at, status, created_at}`."""
    view = {
        "license_id": license.license_id,
        "customer_id": license.customer_id,
        "product": product_view(license.product),
        "seats": license.seats,
        "expires_at": iso(license.expires_at),
        "suspended_at": iso(license.suspended_at),
        "status": domain.license_status(license.expires_at, license.suspended_at, now),
        "created_at": iso(license.created_at),
    }
    if seats_in_use is not None:
        view["seats_in_use"] = seats_in_use
    return view


def event_license(license: License, now: datetime) -> dict[str, Any]:
    """The license as events carry it: `{license_id, product, seats, expires_at, status}`."""
    view = license_view(license, now)
    keys = ("license_id", "product", "seats", "expires_at", "status")
    return {key: view[key] for key in keys}


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


def history_view(event: HistoryEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "type": event.type,
        "at": iso(event.at),
        "installation_id": event.installation_id,
        "machine_name": event.machine_name,
        "source": event.source,
        "reason": event.reason,
    }


# --- products ------------------------------------------------------------------------------


def create_product(repo: LicensingRepository, data: dict[str, Any], now: datetime) -> dict:
    if repo.product_by_code(data["code"]) is not None:
        raise ProductExists(details={"code": data["code"]})
    product = Product(code=data["code"], name=data["name"].strip(), created_at=now)
    try:
        with repo.session.begin_nested():
            repo.add(product)
    except IntegrityError as exc:  # a concurrent create won
        raise ProductExists(details={"code": data["code"]}) from exc
    return product_view(product)


# --- licenses ------------------------------------------------------------------------------


def issue_license(
    repo: LicensingRepository, box: PasswordBox, data: dict[str, Any], now: datetime
) -> Outcome:
    product = repo.product_by_code(data["product"])
    if product is None:
        raise ProductNotFound(details={"fields": {"product": ["Unknown product code."]}})
    license_id = domain.new_license_id()
    while repo.license_id_exists(license_id):
        license_id = domain.new_license_id()
    license = License(
        license_id=license_id,
        customer_id=data["customer_id"],
        product=product,
        seats=data["seats"],
        expires_at=data.get("expires_at"),
        activation_password=box.encrypt(domain.new_activation_password()),
        password_rotated_at=now,
        created_at=now,
    )
    repo.add(license)
    event = {"customer_id": license.customer_id, "license": event_license(license, now)}
    return Outcome(license_view(license, now, 0), [("license_issued", event)])


def find_license(
    repo: LicensingRepository, license_id: str, customer_id: str | None, lock: bool = False
) -> License:
    """The license, or `LicenseNotFound` when it is missing or belongs to someone else."""
    license = repo.license(domain.normalize_license_id(license_id), lock=lock)
    if license is None or (customer_id is not None and license.customer_id != customer_id):
        raise LicenseNotFound(details={"license_id": license_id})
    return license


def get_license(
    repo: LicensingRepository,
    box: PasswordBox,
    license_id: str,
    customer_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The license with its activation password and every installation (newest first)."""
    license = find_license(repo, license_id, customer_id)
    installations = repo.installations(license.id)
    in_use = sum(1 for item in installations if item.status == domain.INSTALLATION_ACTIVE)
    return {
        **license_view(license, now, in_use),
        "activation_password": box.decrypt(license.activation_password),
        "installations": [installation_view(item) for item in installations],
    }


def list_licenses(repo: LicensingRepository, customer_id: str, now: datetime) -> list[dict]:
    licenses = repo.licenses_of(customer_id)
    in_use = repo.seats_in_use([license.id for license in licenses])
    return [license_view(license, now, in_use.get(license.id, 0)) for license in licenses]


def list_installations(
    repo: LicensingRepository, license_id: str, customer_id: str | None
) -> list[dict[str, Any]]:
    license = find_license(repo, license_id, customer_id)
    return [installation_view(item) for item in repo.installations(license.id)]


def history(
    repo: LicensingRepository,
    license_id: str,
    customer_id: str | None,
    limit: int,
    before: int | None,
) -> dict[str, Any]:
    """One page, newest first; `next_before` continues with older events (None: no more)."""
    license = find_license(repo, license_id, customer_id)
    events = repo.history(license.id, limit + 1, before)
    page = events[:limit]
    more = len(events) > limit
    return {
        "events": [history_view(event) for event in page],
        "next_before": str(page[-1].id) if more and page else None,
    }


def rotate_activation_password(
    repo: LicensingRepository,
    box: PasswordBox,
    license_id: str,
    customer_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """A new activation password; the old one stops working with this commit."""
    license = find_license(repo, license_id, customer_id, lock=True)
    password = domain.new_activation_password()
    license.activation_password = box.encrypt(password)
    license.password_rotated_at = now
    return {"license_id": license.license_id, "activation_password": password}


def deactivate(
    repo: LicensingRepository,
    license: License,
    installation_id: str,
    source: str,
    now: datetime,
) -> Outcome:
    """Free the seat of an active installation (the license row is locked by the caller).

    Deactivating an installation that is no longer active answers it again, unchanged.
    """
    installation = repo.latest_installation(license.id, installation_id)
    if installation is None:
        raise InstallationNotFound(details={"installation_id": installation_id})
    if installation.status != domain.INSTALLATION_ACTIVE:
        return Outcome(installation_view(installation))
    installation.status = domain.INSTALLATION_DEACTIVATED
    installation.deactivated_at = now
    installation.deactivated_by = source
    repo.add(
        HistoryEvent(
            license_pk=license.id,
            type=domain.DEACTIVATED,
            at=now,
            installation_id=installation.installation_id,
            machine_name=installation.machine_name,
            source=source,
        )
    )
    view = installation_view(installation)
    event = {
        "customer_id": license.customer_id,
        "license": event_license(license, now),
        "installation": view,
    }
    return Outcome(view, [("installation_deactivated", event)])


def deactivate_installation(
    repo: LicensingRepository,
    license_id: str,
    customer_id: str | None,
    installation_id: str,
    source: str,
    now: datetime,
) -> Outcome:
    license = find_license(repo, license_id, customer_id, lock=True)
    return deactivate(repo, license, installation_id, source, now)


# --- staff ---------------------------------------------------------------------------------


def set_suspended(
    repo: LicensingRepository, license_id: str, suspended: bool, now: datetime
) -> dict[str, Any]:
    license = find_license(repo, license_id, None, lock=True)
    if suspended and license.suspended_at is None:
        license.suspended_at = now
    elif not suspended:
        license.suspended_at = None
    in_use = repo.seats_in_use([license.id]).get(license.id, 0)
    return license_view(license, now, in_use)


def extend(
    repo: LicensingRepository, license_id: str, expires_at: datetime, now: datetime
) -> Outcome:
    """Move the expiry (usually later); expiry notices start again for the new date."""
    license = find_license(repo, license_id, None, lock=True)
    previous = license.expires_at
    license.expires_at = expires_at
    in_use = repo.seats_in_use([license.id]).get(license.id, 0)
    event = {
        "customer_id": license.customer_id,
        "license": event_license(license, now),
        "previous_expires_at": iso(previous),
    }
    return Outcome(license_view(license, now, in_use), [("license_extended", event)])


def expiry_notices(repo: LicensingRepository, now: datetime) -> list[Event]:
    """`license_expiring` for each license a threshold newly applies to; each only once.

    The notice row is claimed with INSERT … ON CONFLICT DO NOTHING, so any number of
    instances scanning at once send each (license, expiry, threshold) exactly once.
    """
    horizon = now + max(domain.EXPIRY_THRESHOLDS) * domain.DAY
    events: list[Event] = []
    for license in repo.expiring(now, horizon):
        threshold = domain.due_threshold(license.expires_at, now)
        if threshold is None:
            continue
        if repo.claim_expiry_notice(license.id, license.expires_at, threshold, now):
            payload = {
                "customer_id": license.customer_id,
                "license": event_license(license, now),
                "days_left": domain.days_left(license.expires_at, now),
                "threshold": threshold,
            }
            events.append(("license_expiring", payload))
    return events
