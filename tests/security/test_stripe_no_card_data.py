"""With Stripe as the payment provider the portal never holds card data: after purchases and a
card change paid with payment methods made as Stripe.js makes them (the card goes from the
browser to Stripe with the publishable key), a declined one, and a card number sent to the
portal anyway (refused: 422 `card_not_accepted`), neither the card number (with or without
spaces) nor its CVC is in any row of any table of the four services' databases, nor in any
log of any process of the suite.
"""

from __future__ import annotations

import re
import uuid

import psycopg2
import pytest
from psycopg2 import sql

from tests.support.stripe import StripeServer
from tests.support.suite import MODULES, SERVICES, Suite

pytestmark = pytest.mark.e2e

PASSWORD = f"Cobalt-Meadow-{uuid.uuid4().hex[:8]}"
CARD_NUMBER = "4242424242424242"
DECLINED_NUMBER = "4000000000000341"
# a CVC with a 0 and a 1 (no license ID group can be it), only ever sent to the portal in the
# refused attempt; Stripe's payment methods take three digits
RAW_CVC = "9107"
CVC = "907"


def card_data() -> dict[str, str]:
    spaced = " ".join(re.findall("....", CARD_NUMBER))
    return {
        "the card number": CARD_NUMBER,
        "the card number with spaces": spaced,
        "the declined card number": DECLINED_NUMBER,
        "the CVC sent to the portal": RAW_CVC,
    }


def holds(text: str, secret: str) -> bool:
    """Whether `text` holds `secret`; a short one (the CVC) only as a whole word, so that it is
    not found inside an ID or a longer number."""
    if len(secret) >= 8:
        return secret in text
    return re.search(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", text) is not None


def found_in_database(database_url: str, secrets: dict[str, str]) -> list[str]:
    """`<table> holds <what>` for each secret in any row of any table (each row as text, and
    byte columns both as PostgreSQL prints them and decoded)."""
    found = []
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
                " WHERE table_type = 'BASE TABLE'"
                " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
            tables = cursor.fetchall()
            assert tables, f"no table in {database_url}"
            for schema, table in tables:
                name = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
                cursor.execute(sql.SQL("SELECT t::text FROM {} t").format(name))
                rows = [row[0] for row in cursor.fetchall()]
                cursor.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
                    " AND table_name = %s AND data_type = 'bytea'",
                    (schema, table),
                )
                for (column,) in cursor.fetchall():
                    cursor.execute(
                        sql.SQL("SELECT encode({}, 'escape') FROM {}").format(
                            sql.Identifier(column), name
                        )
                    )
                    rows += [row[0] for row in cursor.fetchall() if row[0]]
                found += [
                    f"{table} holds {what}"
                    for what, secret in secrets.items()
                    if any(holds(row, secret) for row in rows if row)
                ]
    finally:
        connection.close()
    return found


def test_no_card_number_or_cvc_reaches_the_portal(
    stripe_suite: Suite, stripe_server: StripeServer
) -> None:
    suite, api = stripe_suite, stripe_suite.api
    email = f"no-card.{uuid.uuid4().hex[:10]}@example.test"
    suite.portalctl(
        "company", "create", "--name", "No Card Ltd", "--contact-name", "Ada",
        "--email", email, "--password", PASSWORD,
    )  # fmt: skip
    token = api.login(email, PASSWORD)
    code = f"nocard{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "No Card CAD")
    plan = suite.portalctl(
        "plan", "create", "--code", f"{code}-y", "--product", code,
        "--amount", "4900", "--currency", "EUR", "--interval", "year",
    )["code"]  # fmt: skip

    def method(number: str) -> str:
        return stripe_server.payment_method(number, cvc=CVC)

    bought = api.post(
        "/api/v1/purchases",
        json={"plan": plan, "seats": 1, "payment_method": method(CARD_NUMBER)},
        token=token,
    )
    assert bought.status_code == 201, bought.text
    declined = api.post(
        "/api/v1/purchases",
        json={"plan": plan, "seats": 1, "payment_method": method(DECLINED_NUMBER)},
        token=token,
    )
    assert declined.status_code == 402, declined.text
    [recurring] = api.get("/api/v1/recurring-payments", token=token).json()["recurring_payments"]
    changed = api.put(
        f"/api/v1/recurring-payments/{recurring['id']}/card",
        json={"payment_method": method(CARD_NUMBER)},
        token=token,
    )
    assert changed.status_code == 200, changed.text
    raw_card = {"number": CARD_NUMBER, "exp_month": 12, "exp_year": 2031, "cvc": RAW_CVC}
    refused = api.post(
        "/api/v1/purchases", json={"plan": plan, "seats": 1, "card": raw_card}, token=token
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "card_not_accepted"

    secrets = card_data()
    in_databases = [
        f"{service}: {row}"
        for service in SERVICES
        for row in found_in_database(suite.env[f"{service.upper()}_DATABASE_URL"], secrets)
    ]
    assert not in_databases, "card data stored:\n" + "\n".join(in_databases)
    in_logs = [
        f"{name} logs hold {what}"
        for name in MODULES
        for what, secret in secrets.items()
        if holds(suite.logs(name), secret)
    ]
    assert not in_logs, "card data logged:\n" + "\n".join(in_logs)
    # the payment went through Stripe, which alone saw the card
    assert bought.json()["payment"]["amount"] == 4900
