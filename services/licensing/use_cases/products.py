"""Products: the catalogue that licenses are issued for (staff)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.unit_of_work import Outcome
from services.licensing import views
from services.licensing.exceptions import ProductExists
from services.licensing.models import Product
from services.licensing.repository import LicensingRepository


def create_product(repo: LicensingRepository, data: dict[str, Any], now: datetime) -> Outcome:
    """`{"code", "name"}` → the product; `ProductExists` also when a concurrent create won."""
    product = Product(code=data["code"], name=data["name"].strip(), created_at=now)
    if not repo.add_unique(product):
        raise ProductExists(details={"code": data["code"]})
    return Outcome(views.product_view(product))


def list_products(repo: LicensingRepository) -> list[dict[str, Any]]:
    return [views.product_view(product) for product in repo.products()]
