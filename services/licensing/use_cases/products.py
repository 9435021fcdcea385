"""Products: the catalogue that licenses are issued for (staff), archived instead of deleted.

An archived product is off sale: no new license is issued for it (staff may force one), no
new purchase of it is applied, and billing's catalogue leaves it out. Its licenses go on
working: activation, validation, renewals and extensions never look at it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.unit_of_work import Outcome
from services.licensing import views
from services.licensing.exceptions import (
    FeatureExists,
    ProductArchived,
    ProductExists,
    ProductNotFound,
)
from services.licensing.models import Product, ProductFeature
from services.licensing.repository import LicensingRepository


def create_product(repo: LicensingRepository, data: dict[str, Any], now: datetime) -> Outcome:
    """`{"code", "name"}` → the product; `ProductExists` also when a concurrent create won."""
    product = Product(code=data["code"], name=data["name"].strip(), created_at=now)
    if not repo.add_unique(product):
        raise ProductExists(details={"code": data["code"]})
    return Outcome(views.product_view(product))


def find_product(
    repo: LicensingRepository, code: str, lock: bool = False, share: bool = False
) -> Product:
    """The product of a canonical code, or `ProductNotFound`."""
    product = repo.product_by_code(code, lock=lock, share=share)
    if product is None:
        raise ProductNotFound(details={"code": code, "fields": {"product": ["Unknown product."]}})
    return product


def product_on_sale(repo: LicensingRepository, code: str, force: bool = False) -> Product:
    """The product a new license is issued for: `ProductNotFound`, or `ProductArchived`
    unless `force`. Its row is share-locked, so an archive commits before this check or
    after the license, never in between."""
    product = find_product(repo, code, share=True)
    if product.archived_at is not None and not force:
        raise ProductArchived(details={"code": product.code})
    return product


def get_product(repo: LicensingRepository, code: str) -> dict[str, Any]:
    return views.product_view(find_product(repo, code))


def list_products(repo: LicensingRepository, include_archived: bool) -> list[dict[str, Any]]:
    return [views.product_view(product) for product in repo.products(include_archived)]


def set_archived(repo: LicensingRepository, code: str, archived: bool, now: datetime) -> Outcome:
    """Archive (off sale at once) or unarchive a product; again: the product unchanged."""
    product = find_product(repo, code, lock=True)
    if archived and product.archived_at is None:
        product.archived_at = now
    elif not archived:
        product.archived_at = None
    return Outcome(views.product_view(product))


def add_product_feature(
    repo: LicensingRepository, code: str, data: dict[str, Any], now: datetime
) -> Outcome:
    """Staff: `{"code": "steel", "name": "Steel design"}` → the product with its features;
    `FeatureExists` (also when a concurrent add won). An archived product may get one too:
    its licenses go on working, and staff may still grant them features."""
    product = find_product(repo, code)
    feature = ProductFeature(
        product_id=product.id, code=data["code"], name=data["name"].strip(), created_at=now
    )
    if not repo.add_unique(feature):
        raise FeatureExists(details={"product": product.code, "code": data["code"]})
    repo.reload(product, "features")
    return Outcome(views.product_view(product))
