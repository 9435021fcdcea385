"""Billing end to end: the real gateway over HTTP, every service a process, real SMTP.

Buy with a test card → receipt → license → recurring payment → emails; declined cards leave
nothing; cancel; another company sees nothing; offline receipts are emailed, not listed;
a renewal pass run twice charges once.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.e2e

PASSWORD = "Winter-Orchard-42"
CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}


@pytest.fixture(scope="module")
def shop(suite) -> dict:
    """A product with a monthly plan, both created by staff with portalctl."""
    code = f"cad{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "CAD Pro <Suite>")
    plan = suite.portalctl(
        "plan", "create", "--code", f"{code}-m", "--product", code,
        "--amount", "4900", "--currency", "EUR", "--interval", "month",
    )  # fmt: skip
    return {"product": code, "plan": plan["code"]}


def new_customer(suite, api) -> tuple[dict, str]:
    email = f"buyer.{uuid.uuid4().hex[:10]}@example.test"
    company = suite.portalctl(
        "company", "create", "--name", "Acme & Sons", "--contact-name", "Ada",
        "--email", email, "--password", PASSWORD,
    )  # fmt: skip
    return company, api.login(email, PASSWORD)


def buy(api, token: str, plan: str, card: dict = CARD, seats: int = 3, **extra):
    body = {"plan": plan, "seats": seats, "card": card, **extra}
    return api.post("/api/v1/purchases", json=body, token=token)


def linked_recurring_payment(api, token: str, timeout: float = 10.0) -> dict:
    """The company's one recurring payment once billing knows its license.

    Billing learns the license from licensing's `license_issued` event, a moment after the
    purchase answer (which waited for licensing): wait for that, never for a fixed time.
    """
    deadline = time.monotonic() + timeout
    while True:
        [recurring] = api.get("/api/v1/recurring-payments", token=token).json()[
            "recurring_payments"
        ]
        if recurring["license_id"] is not None or time.monotonic() > deadline:
            return recurring
        time.sleep(0.05)


def mail(smtp_sink, email: str, subject_part: str):
    return smtp_sink.wait_for(
        lambda m: m["To"] and email in m["To"].lower() and subject_part in m["Subject"],
        timeout=20,
    )


def test_buy_see_receipt_license_recurring_payment_and_emails(suite, api, shop, smtp_sink):
    company, token = new_customer(suite, api)
    catalog = api.get("/api/v1/catalog", token=token).json()
    [product] = [p for p in catalog["products"] if p["code"] == shop["product"]]
    assert product["name"] == "CAD Pro <Suite>"
    assert product["plans"][0]["price"] == "€49.00"

    response = buy(api, token, shop["plan"])
    assert response.status_code == 201, response.text
    body = response.json()
    payment = body["payment"]
    assert (payment["amount"], payment["currency"], payment["seats"]) == (14700, "EUR", 3)
    assert body["license_status"] == "issued", body
    license = body["license"]
    assert license["seats"] == 3 and license["expires_at"] == payment["period_end"]

    recurring = linked_recurring_payment(api, token)
    assert recurring["status"] == "active" and recurring["license_id"] == license["license_id"]
    [listed] = api.get("/api/v1/payments", token=token).json()["payments"]
    assert listed["receipt_number"] == payment["receipt_number"]
    assert listed["license_id"] == license["license_id"]
    receipt = api.get(f"/api/v1/payments/{payment['receipt_number']}/receipt", token=token)
    assert receipt.status_code == 200
    assert receipt.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in receipt.headers["Content-Security-Policy"]
    for part in (payment["receipt_number"], "€147.00", "4242", "Acme &amp; Sons", "Visa"):
        assert part in receipt.text
    assert "Acme & Sons" not in receipt.text  # escaped

    licenses = api.get("/api/v1/licenses", token=token).json()["licenses"]
    assert [item["license_id"] for item in licenses] == [license["license_id"]]
    assert recurring["next_charge_at"] == payment["period_end"]
    assert recurring["product"] == {"code": shop["product"], "name": "CAD Pro <Suite>"}

    email = company["contact_email"]
    receipt_mail = mail(smtp_sink, email, payment["receipt_number"])
    assert "€147.00" in receipt_mail.get_body(preferencelist=("plain",)).get_content()
    mail(smtp_sink, email, "license is ready")


@pytest.mark.parametrize(
    ("number", "code"),
    [("4000000000000002", "card_declined"), ("4000000000009995", "insufficient_funds")],
)
def test_a_declined_card_leaves_nothing(suite, api, shop, number, code):
    _, token = new_customer(suite, api)
    response = buy(api, token, shop["plan"], {**CARD, "number": number})
    assert response.status_code == 402, response.text
    assert response.json()["error"]["code"] == code
    assert api.get("/api/v1/payments", token=token).json() == {"payments": [], "next_before": None}
    assert api.get("/api/v1/recurring-payments", token=token).json() == {"recurring_payments": []}
    assert api.get("/api/v1/licenses", token=token).json()["licenses"] == []


def test_bad_cards_are_422_naming_the_field(suite, api, shop):
    _, token = new_customer(suite, api)
    last_month = datetime.now(UTC).replace(day=1) - timedelta(days=1)
    expired = {**CARD, "exp_month": last_month.month, "exp_year": last_month.year}
    for card, field in (({**CARD, "number": "4242424242424241"}, "number"), (expired, "exp_year")):
        response = buy(api, token, shop["plan"], card)
        assert response.status_code == 422, response.text
        assert field in response.json()["error"]["details"]["fields"]["card"]
    response = buy(api, token, shop["plan"], {**CARD, "cvc": 123})
    assert response.status_code == 422


def test_cancel_a_recurring_payment_and_strangers_get_404(suite, api, shop, smtp_sink):
    company, token = new_customer(suite, api)
    _, stranger = new_customer(suite, api)
    receipt = buy(api, token, shop["plan"]).json()["payment"]["receipt_number"]
    [recurring] = api.get("/api/v1/recurring-payments", token=token).json()["recurring_payments"]
    path = f"/api/v1/recurring-payments/{recurring['id']}/cancel"

    assert api.get(f"/api/v1/payments/{receipt}/receipt", token=stranger).status_code == 404
    assert api.post(path, token=stranger).status_code == 404
    assert api.get("/api/v1/payments", token=stranger).json() == {
        "payments": [],
        "next_before": None,
    }
    assert api.get(f"/api/v1/payments/{receipt}/receipt").status_code == 401

    response = api.post(path, token=token)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert api.post(path, token=token).json()["status"] == "cancelled"
    [after] = api.get("/api/v1/recurring-payments", token=token).json()["recurring_payments"]
    assert after["status"] == "cancelled"
    mail(smtp_sink, company["contact_email"], "Automatic renewal")


def test_offline_payment_is_emailed_and_not_listed(suite, api, smtp_sink):
    company, token = new_customer(suite, api)
    payment = suite.portalctl(
        "payment", "record-offline", "--customer", company["customer_id"],
        "--amount", "120000", "--currency", "eur", "--description", "CAD Pro, 10 seats, by phone",
    )  # fmt: skip
    assert payment["channel"] == "offline"
    message = mail(smtp_sink, company["contact_email"], payment["receipt_number"])
    assert "€1,200.00" in message.get_body(preferencelist=("plain",)).get_content()
    assert api.get("/api/v1/payments", token=token).json() == {"payments": [], "next_before": None}
    failed = suite.portalctl(
        "payment", "record-offline", "--customer", "C0000000", "--amount", "1",
        "--currency", "EUR", "--description", "x", check=False,
    )  # fmt: skip
    assert failed.returncode != 0 and "company_not_found" in failed.stderr


def test_a_renewal_pass_run_twice_charges_once(suite, api, shop):
    _, token = new_customer(suite, api)
    first = buy(api, token, shop["plan"]).json()
    assert first["license_status"] == "issued"
    assert linked_recurring_payment(api, token)["license_id"] == first["license"]["license_id"]
    due = datetime.fromisoformat(first["payment"]["period_end"]).date()
    as_of = (due + timedelta(days=1)).isoformat()
    once = suite.portalctl("billing", "run-renewals", "--as-of", as_of)
    twice = suite.portalctl("billing", "run-renewals", "--as-of", as_of)
    assert once["succeeded"] >= 1 and twice["charged"] == 0
    payments = api.get("/api/v1/payments", token=token).json()["payments"]
    assert len(payments) == 2
    assert payments[0]["period_start"] == first["payment"]["period_end"]
    [recurring] = api.get("/api/v1/recurring-payments", token=token).json()["recurring_payments"]
    assert recurring["next_charge_at"] == payments[0]["period_end"]


def test_the_demo_company_sees_its_history_and_next_charges(suite, api):
    seeded = suite.portalctl("demo")
    billing = seeded["billing"]
    assert "cadpro-yearly" in billing["plans"] and billing["payments"] >= 2
    assert billing["next_charges"], billing
    token = api.login(seeded["login"]["email"], seeded["password"])
    payments = api.get("/api/v1/payments", token=token).json()["payments"]
    assert len(payments) >= 2 and payments[0]["paid_at"] > payments[1]["paid_at"]
    [recurring] = api.get("/api/v1/recurring-payments", token=token).json()["recurring_payments"]
    assert recurring["status"] == "active" and recurring["next_charge_at"] > payments[0]["paid_at"]
    assert recurring["product"]["name"] == "CAD Pro"
    again = suite.portalctl("demo")["billing"]
    assert again["history_created"] is False and again["payments"] == billing["payments"]


def test_a_purchase_retried_with_its_idempotency_key_is_charged_once(suite, api, shop):
    _, token = new_customer(suite, api)
    body = {"plan": shop["plan"], "seats": 1, "card": CARD}
    headers = {"Idempotency-Key": f"order-{uuid.uuid4().hex}"}
    first = api.post("/api/v1/purchases", json=body, token=token, headers=headers)
    again = api.post("/api/v1/purchases", json=body, token=token, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["payment"] == first.json()["payment"]
    assert len(api.get("/api/v1/payments", token=token).json()["payments"]) == 1
    bad = api.post(
        "/api/v1/purchases", json=body, token=token, headers={"Idempotency-Key": "x" * 65}
    )
    assert bad.status_code == 422
