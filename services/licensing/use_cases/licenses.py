"""License use cases for staff and the portal: issue, read, rotate, suspend, extend.

A company asking about another company's license gets `LicenseNotFound`, exactly as for a
license that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.unit_of_work import Outcome
from services.licensing import domain, views
from services.licensing.crypto import PasswordBox
from services.licensing.exceptions import LicenseNotFound, ProductNotFound
from services.licensing.models import License
from services.licensing.repository import LicensingRepository


def find_license(
    repo: LicensingRepository, license_id: str, customer_id: str | None, lock: bool = False
) -> License:
    """The license, or `LicenseNotFound` when it is missing or belongs to someone else."""
    license = repo.license(domain.normalize_license_id(license_id), lock=lock)
    if license is None or (customer_id is not None and license.customer_id != customer_id):
        raise LicenseNotFound(details={"license_id": license_id})
    return license


def issue_license(
    repo: LicensingRepository, box: PasswordBox, data: dict[str, Any], now: datetime
) -> Outcome:
    """`{customer_id, product, seats, expires_at}` → the license, and `license_issued`."""
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
    return Outcome(
        views.license_view(license, now, 0),
        [("license_issued", views.license_issued(license, now))],
    )


def get_license(
    repo: LicensingRepository,
    box: PasswordBox,
    license_id: str,
    customer_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The license with its activation password and every installation (newest first)."""
    license = find_license(repo, license_id, customer_id)
    password = box.decrypt(license.activation_password)
    return views.license_detail_view(license, now, repo.installations(license.id), password)


def list_licenses(
    repo: LicensingRepository, customer_id: str, now: datetime
) -> list[dict[str, Any]]:
    licenses = repo.licenses_of(customer_id)
    in_use = repo.seats_in_use([license.id for license in licenses])
    return [views.license_view(license, now, in_use.get(license.id, 0)) for license in licenses]


def list_installations(
    repo: LicensingRepository, license_id: str, customer_id: str | None
) -> list[dict[str, Any]]:
    license = find_license(repo, license_id, customer_id)
    return [views.installation_view(item) for item in repo.installations(license.id)]


def history(
    repo: LicensingRepository,
    license_id: str,
    customer_id: str | None,
    limit: int,
    before: int | None,
) -> dict[str, Any]:
    """One page, newest first; `next_before` continues with older events (None: no more)."""
    license = find_license(repo, license_id, customer_id)
    return views.history_page(repo.history(license.id, limit + 1, before), limit)


def rotate_activation_password(
    repo: LicensingRepository,
    box: PasswordBox,
    license_id: str,
    customer_id: str | None,
    now: datetime,
) -> Outcome:
    """A new activation password; the old one stops working with this commit."""
    license = find_license(repo, license_id, customer_id, lock=True)
    password = domain.new_activation_password()
    license.activation_password = box.encrypt(password)
    license.password_rotated_at = now
    return Outcome(views.password_view(license, password))


def set_suspended(
    repo: LicensingRepository, license_id: str, suspended: bool, now: datetime
) -> Outcome:
    """Staff: suspend (activations refused) or resume a license."""
    license = find_license(repo, license_id, None, lock=True)
    if suspended and license.suspended_at is None:
        license.suspended_at = now
    elif not suspended:
        license.suspended_at = None
    return Outcome(views.license_view(license, now, repo.seats_in_use_of(license.id)))


def extend(
    repo: LicensingRepository, license_id: str, expires_at: datetime, now: datetime
) -> Outcome:
    """Move the expiry (usually later); expiry notices start again for the new date."""
    license = find_license(repo, license_id, None, lock=True)
    previous = license.expires_at
    license.expires_at = expires_at
    return Outcome(
        views.license_view(license, now, repo.seats_in_use_of(license.id)),
        [("license_extended", views.license_extended(license, previous, now))],
    )
