"""Payments, receipts, recurring payments, the catalog and purchases (DESIGN.md §4, B1-B3).

Every route acts for the company of the session: billing is always asked with that
company's customer ID, so another company's receipt or recurring payment is a 404.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import eventlet
from jinja2 import Environment, select_autoescape
from werkzeug.wrappers import Request, Response

from common import settings
from common.errors import PortalError
from gateway import schemas
from gateway.http import route
from gateway.routes.base import RouteGroup

log = logging.getLogger(__name__)

DEFAULT_LICENSE_WAIT_SECONDS = 5.0
LICENSE_POLL_SECONDS = 0.2
CATALOG_NAMES_TIMEOUT = 2.0

RECEIPT_HEADERS = {
    # the page has no script and loads nothing: inline styles only, for printing
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_RECEIPT = Environment(autoescape=select_autoescape(default=True)).from_string(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Receipt {{ r.receipt_number }}</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; color: #111; max-width: 46rem; margin: 2rem auto; }
  h1 { font-size: 1.4rem; margin: 0 0 1rem; }
  .parties { display: flex; justify-content: space-between; gap: 2rem; margin-bottom: 1.5rem; }
  table { width: 100%; border-collapse: collapse; margin: 1rem 0; }
  th, td { text-align: left; padding: .4rem .3rem; border-bottom: 1px solid #ccc; }
  td.num, th.num { text-align: right; white-space: nowrap; }
  .total td { font-weight: bold; border-bottom: none; }
  .muted { color: #555; }
  @media print { body { margin: 0; } }
</style>
</head>
<body>
<h1>Sales receipt {{ r.receipt_number }}</h1>
<div class="parties">
  <div><strong>From</strong><br>{{ r.vendor.name }}
    {% if r.vendor.address %}<br>{{ r.vendor.address }}{% endif %}
    {% if r.vendor.email %}<br>{{ r.vendor.email }}{% endif %}</div>
  <div><strong>To</strong><br>{{ company.name }}<br>{{ company.contact_name }}
    <br>{{ company.contact_email }}<br>Customer ID {{ company.customer_id }}</div>
</div>
<p>Paid on {{ r.paid_at[:10] }}{% if r.card_brand %} with {{ r.card_brand | title }}
  ending in {{ r.card_last4 }}{% endif %}.
  {% if r.license_id %}License {{ r.license_id }}.{% endif %}</p>
<table>
  <thead><tr><th>Item</th><th class="num">Seats</th><th>Period</th>
    <th class="num">Unit price</th><th class="num">Amount</th></tr></thead>
  <tbody>
  {% for line in r.lines %}
    <tr><td>{{ line.description }}</td>
      <td class="num">{{ line.seats if line.seats is not none else "" }}</td>
      <td>{% if line.period_start %}{{ line.period_start[:10] }} to
        {{ line.period_end[:10] }}{% endif %}</td>
      <td class="num">{{ line.unit_amount_formatted or "" }}</td>
      <td class="num">{{ line.amount_formatted }}</td></tr>
  {% endfor %}
  <tr class="total"><td colspan="4">Total paid</td>
    <td class="num">{{ r.amount_formatted }}</td></tr>
  </tbody>
</table>
<p class="muted">Status: {{ r.status }}. Keep this receipt for your records.</p>
</body>
</html>
"""
)


def license_wait_seconds() -> float:
    return settings.get_float("PURCHASE_LICENSE_WAIT_SECONDS", DEFAULT_LICENSE_WAIT_SECONDS)


def public_recurring(view: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    code = view["product"]["code"]
    keys = ("id", "license_id", "plan", "seats", "amount", "currency", "interval")
    keys += ("next_charge_at", "status", "card_brand", "card_last4")
    return {
        **{key: view.get(key) for key in keys},
        "product": {"code": code, "name": names.get(code, code)},
    }


def public_payment(view: dict[str, Any]) -> dict[str, Any]:
    keys = ("receipt_number", "paid_at", "amount", "currency", "amount_formatted")
    keys += ("description", "status", "license_id", "plan", "seats", "period_start")
    keys += ("period_end", "card_brand", "card_last4")
    return {key: view.get(key) for key in keys}


class BillingRoutes(RouteGroup):
    def product_names(self) -> dict[str, str]:
        """Product code → name from licensing; empty (codes stand in) when it cannot say."""
        try:
            with eventlet.Timeout(CATALOG_NAMES_TIMEOUT):
                found = self.licensing.list_products()
        except (PortalError, eventlet.Timeout):
            return {}
        if isinstance(found, dict):
            found = found.get("products", [])
        return {
            item["code"]: item.get("name") or item["code"]
            for item in found or []
            if isinstance(item, dict) and item.get("code")
        }

    @route(
        "GET",
        "/api/v1/payments",
        summary="Receipts of the company's portal purchases and renewals, newest first",
        response=schemas.PaymentList,
        auth="session",
        tags=["billing"],
    )
    def list_payments(self, request: Request) -> dict[str, Any]:
        """→ `{payments: [{receipt_number, paid_at, amount, currency, description, status,
        license_id, …}]}`; amounts in minor units. Offline purchases are not listed."""
        company = self.current_company(request)
        payments = self.billing.list_payments(company["customer_id"])
        return {"payments": [public_payment(payment) for payment in payments]}

    @route(
        "GET",
        "/api/v1/payments/<receipt_number>/receipt",
        summary="A receipt as a printable HTML page",
        auth="session",
        tags=["billing"],
        errors=["payment_not_found"],
        content_type="text/html",
    )
    def receipt(self, request: Request, receipt_number: str) -> Response:
        """→ `text/html`: vendor and customer, line items, seats, period, amount, card."""
        company = self.current_company(request)
        receipt = self.billing.get_receipt(receipt_number, company["customer_id"])
        response = Response(_RECEIPT.render(r=receipt, company=company), mimetype="text/html")
        response.headers.update(RECEIPT_HEADERS)
        return response

    @route(
        "GET",
        "/api/v1/recurring-payments",
        summary="What will be charged automatically, and when",
        response=schemas.RecurringPaymentList,
        auth="session",
        tags=["billing"],
    )
    def list_recurring_payments(self, request: Request) -> dict[str, Any]:
        """→ `{recurring_payments: [{id, license_id, product: {code, name}, amount, currency,
        interval, next_charge_at, status}]}`."""
        company = self.current_company(request)
        found = self.billing.list_recurring_payments(company["customer_id"])
        names = self.product_names() if found else {}
        return {"recurring_payments": [public_recurring(view, names) for view in found]}

    @route(
        "POST",
        "/api/v1/recurring-payments/<recurring_payment_id>/cancel",
        summary="Stop automatic charges; the license runs to its end",
        response=schemas.RecurringPaymentOut,
        auth="session",
        tags=["billing"],
        errors=["recurring_payment_not_found"],
    )
    def cancel_recurring_payment(
        self, request: Request, recurring_payment_id: str
    ) -> dict[str, Any]:
        """→ 200 the recurring payment with `"status": "cancelled"` (again: the same)."""
        company = self.current_company(request)
        view = self.billing.cancel_recurring_payment(recurring_payment_id, company["customer_id"])
        return public_recurring(view, self.product_names())

    @route(
        "GET",
        "/api/v1/catalog",
        summary="Products on sale and their plans, with prices",
        response=schemas.Catalog,
        auth="session",
        tags=["billing"],
    )
    def catalog(self, request: Request) -> dict[str, Any]:
        """→ `{products: [{code, name, plans: [{code, amount, currency, price, interval}]}]}`.

        Names come from licensing; while it is unavailable the product code stands in.
        """
        self.current_company(request)
        plans = self.billing.list_plans()
        names = self.product_names() if plans else {}
        products: dict[str, dict[str, Any]] = {}
        for plan in plans:
            code = plan["product_code"]
            product = products.setdefault(
                code, {"code": code, "name": names.get(code, code), "plans": []}
            )
            product["plans"].append(
                {key: plan[key] for key in ("code", "amount", "currency", "price", "interval")}
            )
        return {"products": list(products.values())}

    @route(
        "POST",
        "/api/v1/purchases",
        summary="Buy a plan (or renew a license) by card",
        body=schemas.PurchaseBody,
        response=schemas.PurchaseOut,
        status=201,
        auth="session",
        tags=["billing"],
        errors=["card_declined", "insufficient_funds", "payment_unconfirmed", "license_not_found"],
    )
    def purchase(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`{"plan": "cadpro-yearly", "seats": 5, "card": {"number": "4242424242424242",
        "exp_month": 12, "exp_year": 2030, "cvc": "123"}}` → 201 `{payment, license,
        license_status, recurring_payment}`; 402 `card_declined` / `insufficient_funds`.

        Licensing issues (or extends) the license when it hears of the payment; this waits
        for it up to PURCHASE_LICENSE_WAIT_SECONDS, then answers with `license: null` and
        `license_status: "pending"` (the license follows; the payment is final either way).

        Send an `Idempotency-Key` header (any unique string, ≤ 64 characters) to retry safely
        after a lost answer: the same key gets the same receipt or decline, never a second
        charge. Use a new key for a new attempt (e.g. with another card).
        """
        company = self.current_company(request)
        payload = {key: value for key, value in body.items() if value is not None}
        request_key = request.headers.get("Idempotency-Key")
        if request_key is not None:
            if not 0 < len(request_key) <= 64 or not request_key.isprintable():
                raise PortalError(
                    "Invalid value for: Idempotency-Key.",
                    code="validation_error",
                    details={"fields": {"Idempotency-Key": ["1 to 64 printable characters."]}},
                )
            payload["request_key"] = request_key
        result = self.billing.purchase(company["customer_id"], payload)
        payment = result["payment"]
        license = self.wait_for_license(payment["receipt_number"], company["customer_id"])
        if license is None:
            status = "pending"
        else:
            status = "extended" if body.get("license_id") else "issued"
        return {
            "payment": public_payment(payment),
            "license": license,
            "license_status": status,
            "recurring_payment": public_recurring(result["recurring_payment"], {}),
        }

    def wait_for_license(self, receipt_number: str, customer_id: str) -> dict[str, Any] | None:
        """The license licensing issued or extended for this receipt, if it is there in time."""
        deadline = time.monotonic() + license_wait_seconds()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                with eventlet.Timeout(remaining):
                    found = self.licensing.license_for_payment(receipt_number, customer_id)
                if found:
                    return found
            except eventlet.Timeout:
                return None
            except PortalError as exc:
                log.info("licensing cannot say yet about %s: %s", receipt_number, exc.code)
            eventlet.sleep(min(LICENSE_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
