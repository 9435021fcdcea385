"""Answers the gateway composes from more than one service: billing's plans and recurring
payments named with licensing's product names.

Names are a nicety: while licensing cannot say within CATALOG_NAMES_TIMEOUT, the product
code stands in for the name and the answer is still given.
"""

from __future__ import annotations

from typing import Any

import eventlet

from common.errors import PortalError

CATALOG_NAMES_TIMEOUT = 2.0


def product_names(licensing: Any) -> dict[str, str]:
    """Product code → name from licensing; empty (codes stand in) when it cannot say."""
    try:
        with eventlet.Timeout(CATALOG_NAMES_TIMEOUT):
            products = licensing.list_products()
    except (PortalError, eventlet.Timeout):
        return {}
    return {product["code"]: product["name"] or product["code"] for product in products}


def named_product(view: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A billing view whose `product: {code}` gets its name (the code when unknown)."""
    code = view["product"]["code"]
    return {**view, "product": {"code": code, "name": names.get(code, code)}}


def catalog(plans: list[dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """Billing's plans grouped by product: `{products: [{code, name, plans: [...]}]}`."""
    products: dict[str, dict[str, Any]] = {}
    for plan in plans:
        code = plan["product_code"]
        product = products.setdefault(
            code, {"code": code, "name": names.get(code, code), "plans": []}
        )
        product["plans"].append(plan)
    return {"products": list(products.values())}
