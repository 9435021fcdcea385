"""Finding 2 (and the issue's "no secret at rest in clear"): after the journeys that handle
secrets, no table of any service holds one in clear.

The journeys: a company created without a password sets it from the emailed set-up link,
logs in, forgets it and resets it from the emailed link, logs in again, buys with a card,
activates a machine with the license's activation password and another with the company
password, and validates both certificates. Then every text, JSON and byte column of every
table of every service's PostgreSQL database is searched for each secret those journeys
handled in clear: session tokens, set-up and reset tokens (taken from the emails), both
passwords, the card number (with and without spaces), its CVC and the activation password
(shown to the owner, stored encrypted). A failure names each table.column and what it holds.
"""

from __future__ import annotations

import re
import uuid
from email.message import EmailMessage

import psycopg2
import pytest
from psycopg2 import sql

from tests.support.smtp_sink import SmtpSink, text_body
from tests.support.suite import SERVICES, Api, Suite

pytestmark = pytest.mark.e2e

COMPANY_PASSWORD = f"Ochre-Kestrel-{uuid.uuid4().hex[:8]}"
NEW_PASSWORD = f"Saffron-Gondola-{uuid.uuid4().hex[:8]}"
CARD_NUMBER = "4242424242424242"
# four digits, with a 0 and a 1, so no license ID group (digits 2-9 and letters) can be it
CVC = "9107"
CARD = {"number": CARD_NUMBER, "exp_month": 12, "exp_year": 2031, "cvc": CVC}
LINK = re.compile(r"https?://\S+#token=([A-Za-z0-9_\-]+)")
# the columns that can hold text: text, JSON, bytes, and arrays of them
SEARCHED_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea", "ARRAY")


def token_in(message: EmailMessage) -> str:
    found = LINK.search(text_body(message))
    assert found, text_body(message)
    return found.group(1)


def mail_to(sink: SmtpSink, address: str, subject_part: str) -> EmailMessage:
    return sink.wait_for(lambda m: subject_part in (m["Subject"] or ""), to=address, timeout=20)


def confirm(api: Api, token: str, password: str) -> None:
    response = api.post(
        "/api/v1/password-resets/confirm", json={"token": token, "new_password": password}
    )
    assert response.status_code == 204, response.text


def run_the_journeys(suite: Suite, api: Api, smtp_sink: SmtpSink) -> dict[str, str]:
    """Every secret the journeys handled in clear, by what it is."""
    email = f"at-rest.{uuid.uuid4().hex[:10]}@example.test"
    company = suite.portalctl(
        "company", "create", "--name", "Rest Ltd", "--contact-name", "Ada", "--email", email
    )
    setup_token = token_in(mail_to(smtp_sink, email, "Welcome"))
    confirm(api, setup_token, COMPANY_PASSWORD)
    first_session = api.login(company["customer_id"], COMPANY_PASSWORD)

    accepted = api.post("/api/v1/password-resets", json={"login": email})
    assert accepted.status_code == 202, accepted.text
    reset_token = token_in(mail_to(smtp_sink, email, "eset"))
    confirm(api, reset_token, NEW_PASSWORD)
    session = api.login(email, NEW_PASSWORD)

    code = f"rest{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "Rest CAD")
    plan = suite.portalctl(
        "plan", "create", "--code", f"{code}-m", "--product", code,
        "--amount", "4900", "--currency", "EUR", "--interval", "month",
    )  # fmt: skip
    bought = api.post(
        "/api/v1/purchases", json={"plan": plan["code"], "seats": 3, "card": CARD}, token=session
    )
    assert bought.status_code == 201, bought.text
    assert bought.json()["license_status"] == "issued", bought.text
    license_id = bought.json()["license"]["license_id"]
    mail_to(smtp_sink, email, bought.json()["payment"]["receipt_number"])
    detail = api.get(f"/api/v1/licenses/{license_id}", token=session)
    activation_password = detail.json()["activation_password"]

    for installation, password in (("rest-1", activation_password), ("rest-2", NEW_PASSWORD)):
        activated = api.post(
            "/api/v1/activations",
            json={
                "license_id": license_id,
                "password": password,
                "installation_id": installation,
                "machine_name": installation.upper(),
            },
        )
        assert activated.status_code == 201, activated.text
        validated = api.post(
            "/api/v1/validations", json={"certificate": activated.json()["certificate"]}
        )
        assert validated.json()["valid"] is True, validated.text

    return {
        "the first session token": first_session,
        "the session token": session,
        "the set-up token": setup_token,
        "the reset token": reset_token,
        "the company password": COMPANY_PASSWORD,
        "the new password": NEW_PASSWORD,
        "the card number": CARD_NUMBER,
        "the card number with spaces": " ".join(re.findall("....", CARD_NUMBER)),
        "the CVC": CVC,
        "the activation password": activation_password,
    }


def holds(value: str, secret: str) -> bool:
    """Whether `value` holds `secret`; a short one (the CVC) only as a whole word, so that
    it is not found inside an ID or a longer number."""
    if len(secret) >= 8:
        return secret in value
    return re.search(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", value) is not None


def secrets_in(database_url: str, secrets: dict[str, str]) -> list[str]:
    """`<table>.<column> holds <what>` for each secret found in clear in the database."""
    found = []
    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.table_schema, c.table_name, c.column_name, c.data_type"
                " FROM information_schema.columns c JOIN information_schema.tables t"
                " USING (table_schema, table_name)"
                " WHERE t.table_type = 'BASE TABLE'"
                " AND c.table_schema NOT IN ('pg_catalog', 'information_schema')"
                " AND c.data_type = ANY(%s)"
                " ORDER BY 1, 2, 3",
                (list(SEARCHED_TYPES),),
            )
            columns = cursor.fetchall()
            assert columns, f"no table to search in {database_url}"
            for schema, table, column, data_type in columns:
                # bytes as escaped text: printable ASCII stays as it is
                value = (
                    sql.SQL("encode({}, 'escape')") if data_type == "bytea" else sql.SQL("{}::text")
                ).format(sql.Identifier(column))
                matches = sql.SQL(" OR ").join(
                    sql.SQL("strpos({}, {}) > 0").format(value, sql.Literal(secret))
                    for secret in secrets.values()
                )
                cursor.execute(
                    sql.SQL("SELECT {} FROM {}.{} WHERE {}").format(
                        value, sql.Identifier(schema), sql.Identifier(table), matches
                    )
                )
                values = [row[0] for row in cursor.fetchall()]
                name = table if schema == "public" else f"{schema}.{table}"
                found += [
                    f"{name}.{column} holds {what}"
                    for what, secret in secrets.items()
                    if any(holds(text, secret) for text in values)
                ]
    finally:
        connection.close()
    return found


def test_no_token_password_or_card_data_is_stored_in_clear(
    suite: Suite, api: Api, smtp_sink: SmtpSink
) -> None:
    secrets = run_the_journeys(suite, api, smtp_sink)
    found = [
        f"{service}: {row}"
        for service in SERVICES
        for row in secrets_in(suite.env[f"{service.upper()}_DATABASE_URL"], secrets)
    ]
    assert not found, "secrets stored in clear:\n" + "\n".join(found)
