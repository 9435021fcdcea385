"""Answers the gateway composes: billing's plans and recurring payments named with licensing's
product names, the catalog of what is on sale (each plan's features named by its product),
pages of payments, a purchase as the session's role may see it, licenses with how they renew,
and the size check of an offline activation's files.

Names are a nicety: while licensing cannot say within CATALOG_NAMES_TIMEOUT, the name billing
gave (or the product or feature code) stands in and the answer is still given.
"""

from __future__ import annotations

from typing import Any

import eventlet

from common import identifiers
from common.errors import PortalError
from gateway.schemas import OFFLINE_FILE_MAX, RenewalOut

CATALOG_NAMES_TIMEOUT = 2.0
# licensing owns the license list: billing has this long to say how they renew, else the
# list answers with `renewal: null`
RENEWALS_TIMEOUT = 2.0

# billing's recurring payment status → the license's renewal status, and which of several
# recurring payments of one license says how it renews (the live one before a cancelled one)
RENEWAL_STATUSES = {"active": "automatic", "past_due": "past_due", "cancelled": "cancelled"}
_RENEWAL_RANK = {"active": 0, "past_due": 1, "cancelled": 2}
# RenewalOut names the fields: dumping through it answers each one (null when not given)
_RENEWAL = RenewalOut()
NO_RENEWAL = _RENEWAL.dump({"status": "none"})


def product_views(licensing: Any, archived: bool = False) -> dict[str, dict[str, Any]] | None:
    """Product code → licensing's product view (`{code, name, active, features}`): the
    products on sale, or every product with `archived`. None when licensing cannot say."""
    try:
        with eventlet.Timeout(CATALOG_NAMES_TIMEOUT):
            if archived:
                products = licensing.list_products(include_archived=True)
            else:
                products = licensing.list_products()
    except (PortalError, eventlet.Timeout):
        return None
    return {
        identifiers.code(product["code"]): product
        for product in products
        if archived or product.get("active", True)
    }


def product_names(licensing: Any, archived: bool = False) -> dict[str, str] | None:
    """Product code → name from licensing: the products on sale, or every product with
    `archived` (a recurring payment of an archived product goes on, and keeps its name).
    None when licensing cannot say."""
    return names_of(product_views(licensing, archived))


def names_of(products: dict[str, dict[str, Any]] | None) -> dict[str, str] | None:
    """Product code → name of `product_views`' answer (None stays None)."""
    if products is None:
        return None
    return {code: product.get("name") or product["code"] for code, product in products.items()}


def feature_names_of(products: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, str]]:
    """Product code → {feature code → name} of `product_views`' answer (empty when
    licensing could not say, or its products name no features)."""
    return {
        code: {feature["code"]: feature.get("name") or feature["code"] for feature in features}
        for code, product in (products or {}).items()
        if (features := product.get("features"))
    }


def named_product(view: dict[str, Any], names: dict[str, str] | None) -> dict[str, Any]:
    """A billing view whose `product: {code}` gets its name: licensing's, else the one
    billing gave, else the code."""
    product = view["product"]
    code = product["code"]
    name = (names or {}).get(identifiers.code(code)) or product.get("name") or code
    return {**view, "product": {"code": code, "name": name}}


def catalog(
    plans: list[dict[str, Any]],
    on_sale: dict[str, str] | None,
    features: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Billing's plans grouped by product: `{products: [{code, name, plans: [...]}]}`.

    `on_sale` is licensing's products on sale (code → name): a plan of any other product is
    left out, whatever billing still thinks. None (licensing cannot say): billing's list
    stands, named by billing or by code. A plan's `features` (billing's codes) become
    `[{code, name}]`, named by `features` (product code → {feature code → name}), else by
    code.
    """
    products: dict[str, dict[str, Any]] = {}
    for plan in plans:
        if plan.get("active") is False:
            continue
        code = plan["product_code"]
        if on_sale is not None and identifiers.code(code) not in on_sale:
            continue
        named = (plan.get("product") or {}).get("name")
        name = (on_sale or {}).get(identifiers.code(code)) or named or code
        product = products.setdefault(code, {"code": code, "name": name, "plans": []})
        names = (features or {}).get(identifiers.code(code), {})
        granted = [
            {"code": feature, "name": names.get(feature, feature)}
            for feature in plan.get("features") or []
        ]
        product["plans"].append({**plan, "features": granted})
    return {"products": list(products.values())}


def payments_page(billing: Any, customer_id: str, limit: int, before: str | None) -> dict[str, Any]:
    """`{payments, next_before}`: up to `limit` payments older than the receipt `before`,
    newest first; `next_before` (the last receipt shown) while older ones exist, else null.

    A full page asks billing once more for one payment after it, so the last page says it is
    the last instead of leading to an empty one.
    """
    if before is not None:
        before = identifiers.receipt_number(before)
    found = billing.list_payments(customer_id, limit=limit, before=before)
    next_before = None
    if found and len(found) >= limit:
        last = found[-1]["receipt_number"]
        if billing.list_payments(customer_id, limit=1, before=last):
            next_before = last
    return {"payments": found, "next_before": next_before}


def purchase_for_role(answer: dict[str, Any], may_read_passwords: bool) -> dict[str, Any]:
    """A purchase answer as the session's role may see it: the license's
    `activation_password` (when licensing gave one) only for owners and license admins."""
    license = answer.get("license")
    if may_read_passwords or not license or "activation_password" not in license:
        return answer
    return {**answer, "license": {**license, "activation_password": None}}


def recurring_payments(billing: Any, customer_id: str) -> list[dict[str, Any]] | None:
    """Billing's recurring payments of the company, or None when billing cannot say within
    RENEWALS_TIMEOUT (the licenses are answered anyway)."""
    try:
        with eventlet.Timeout(RENEWALS_TIMEOUT):
            return billing.list_recurring_payments(customer_id)
    except (PortalError, eventlet.Timeout):
        return None


def renewal(license_id: str, recurring: list[dict[str, Any]], show_amount: bool) -> dict[str, Any]:
    """How the license renews (`RenewalOut`), from the company's recurring payments
    (`recurring`): the active or past-due one of it, else its cancelled one (the latest
    charge date first), else none. Its `next_charge_at`, `interval` and `plan` are billing's;
    `show_amount` false (a role that may not see billing): no amount or currency.

    >>> found = renewal("L-1", [{"id": "rp_1", "license_id": "L-1", "status": "active",
    ...     "next_charge_at": "2026-12-07T09:00:00+00:00", "amount": 24500,
    ...     "currency": "EUR", "interval": "year", "plan": "cad-pro-year"}], show_amount=False)
    >>> found["status"], found["interval"], found["plan"], found["amount"]
    ('automatic', 'year', 'cad-pro-year', None)
    """
    own = [
        item
        for item in recurring
        if item.get("license_id") == license_id and item.get("status") in RENEWAL_STATUSES
    ]
    if not own:
        return dict(NO_RENEWAL)
    own.sort(key=lambda item: str(item.get("next_charge_at") or ""), reverse=True)
    found = min(own, key=lambda item: _RENEWAL_RANK[item["status"]])
    hidden = {} if show_amount else {"amount": None, "currency": None}
    return _RENEWAL.dump(
        {
            **found,
            **hidden,
            "status": RENEWAL_STATUSES[found["status"]],
            "recurring_payment_id": found.get("id"),
        }
    )


def with_renewals(
    licenses: list[dict[str, Any]], recurring: list[dict[str, Any]] | None, show_amount: bool
) -> list[dict[str, Any]]:
    """The licenses, each with its `renewal` (null for all when billing could not say)."""
    return [
        {
            **license,
            "renewal": None
            if recurring is None
            else renewal(license["license_id"], recurring, show_amount),
        }
        for license in licenses
    ]


def offline_file(text: str, code: str, kind: str) -> str:
    """The text of an offline activation's file (`kind`: "request" or "proof") as sent, or
    422 `code` (`invalid_request` / `invalid_proof`) with `details.problem` when it is
    larger than OFFLINE_FILE_MAX bytes of UTF-8: no file the client kit writes comes near
    it, so licensing is not asked to parse one.

    >>> offline_file('{"type": "activation_request"}', "invalid_request", "request")
    '{"type": "activation_request"}'
    """
    size = len(text.encode("utf-8"))
    if size > OFFLINE_FILE_MAX:
        problem = (
            f"The {kind} file is {size} bytes; a {kind} file is at most {OFFLINE_FILE_MAX} "
            "bytes (16 KiB). Upload the file exactly as the product wrote it."
        )
        raise PortalError(
            f"This is not a valid {kind} file: {problem}",
            code=code,
            details={"problem": problem, "limit": OFFLINE_FILE_MAX},
        )
    return text
