"""Plans: the price of a product per seat and interval, on sale or archived.

Nothing is sold that cannot be delivered: a plan names a product licensing knows and sells
(the entrypoint asks licensing `get_product` and hands its answer here), and the catalog
lists a plan only while the plan is active and licensing still sells its product.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from common.unit_of_work import Outcome
from services.billing import domain
from services.billing.exceptions import (
    PlanExists,
    PlanNotFound,
    ProductArchived,
    unknown_feature,
)
from services.billing.models import Plan
from services.billing.repository import BillingRepository
from services.billing.views import plan_view


def product_on_sale(product: Mapping[str, Any]) -> bool:
    """Whether licensing sells `product` (`{code, name, active}`; no `active`: an older
    licensing, which sold every product it had)."""
    return bool(product.get("active", True))


def create_plan(
    repo: BillingRepository, data: dict[str, Any], product: Mapping[str, Any], now: datetime
) -> Outcome:
    """A new plan of `product` (licensing's answer), with its name, the features it grants
    and its license model (a floating one with its lease period and borrowing limit);
    `product_archived` for a product off sale, `unknown_feature` naming a code the
    product lacks, `plan_exists` if the code is taken (also by a concurrent create)."""
    if not product_on_sale(product):
        raise ProductArchived(details={"product_code": data["product_code"]})
    known = {str(feature["code"]) for feature in product.get("features") or []}
    missing = domain.unknown_features(data.get("features", []), known)
    if missing:
        raise unknown_feature(missing[0], data["product_code"])
    terms = domain.license_terms(
        data.get("model"), data.get("lease_seconds"), data.get("max_borrow_days")
    )
    values = {
        **data,
        "features": domain.feature_codes(data.get("features", [])),
        **terms.to_dict(),
    }
    plan = Plan(**values, product_name=product.get("name"), created_at=now)
    if not plan.active:
        plan.archived_at = now
    if repo.plan_by_code(data["code"]) is not None or not repo.add_unique(plan):
        raise PlanExists(details={"code": data["code"]})
    return Outcome(plan_view(plan))


def set_on_sale(repo: BillingRepository, code: str, on_sale: bool, now: datetime) -> Outcome:
    """Archive (`on_sale` false) or unarchive a plan: off (or back on) sale at once.

    Recurring payments of an archived plan go on: they keep their own price. Doing it
    twice changes nothing the second time.
    """
    plan = repo.plan_by_code(code, lock=True)
    if plan is None:
        raise PlanNotFound(details={"code": code})
    if plan.active != on_sale:
        plan.active = on_sale
        plan.archived_at = None if on_sale else now
    return Outcome(plan_view(plan))


def list_plans(
    repo: BillingRepository,
    include_inactive: bool,
    products: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Plans on sale: active, of a product in `products` (licensing's products by code) that
    licensing sells; with `include_inactive`, every plan (`products` not needed). Without
    `products` (licensing not answering), every active plan with its stored product name: a
    purchase still asks licensing for the product before charging.

    Product names come from `products` when given (licensing's current names).
    """
    views = []
    for plan in repo.plans(active_only=not include_inactive):
        view = plan_view(plan)
        product = products.get(plan.product_code) if products is not None else None
        known = products is not None
        if not include_inactive and known and (product is None or not product_on_sale(product)):
            continue
        if product is not None and product.get("name"):
            view["product"] = {"code": plan.product_code, "name": product["name"]}
        views.append(view)
    return views
