"""Staff's tools end to end: the real `portalctl` (a process) against the running suite.

What a support person does: create a product with an upper-case code and a plan priced
`120.00`, archive the plan (it leaves the catalog at once, its recurring payments go on),
issue, extend, suspend with a reason and resume licenses, correct a company, re-send its
invitation, look it up by email, list payments. Every guardrail refuses without `--force`
in one line that names the fix, and passes with it; nothing fails with a traceback.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.smtp_sink import free_port, text_body
from tests.support.suite import ROOT

pytestmark = pytest.mark.e2e

PASSWORD = "Juniper-Compass-58"
CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
LINK = re.compile(r"https?://\S+/reset-password#token=([A-Za-z0-9_\-]+)")


# --- helpers ---------------------------------------------------------------------------------


def refused(result: subprocess.CompletedProcess, code: str) -> str:
    """The one line a refused command printed: non-zero, the code, no traceback, no output."""
    assert result.returncode != 0, result.stdout
    assert result.stdout == ""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{code}:" in lines[0], lines[0]
    return lines[0]


def new_company(suite, password: str | None = PASSWORD, name: str = "Acme Staff Tools") -> dict:
    email = f"staff.{uuid.uuid4().hex[:10]}@example.test"
    args = ["company", "create", "--name", name, "--contact-name", "Ada", "--email", email]
    if password:
        args += ["--password", password]
    return suite.portalctl(*args)


def new_product(suite, name: str = "CAD Pro Staff") -> str:
    """A product created with an upper-case code; its canonical (lower-case) code."""
    code = f"CAD-PRO-{uuid.uuid4().hex[:8].upper()}"
    created = suite.portalctl("product", "create", "--code", code, "--name", name)
    assert created["code"] == code.lower() and created["name"] == name
    return created["code"]


def issue(suite, customer_id: str, product: str, *more: str, check: bool = True):
    return suite.portalctl(
        "license", "issue", "--customer", customer_id, "--product", product, "--seats", "2",
        *more, check=check,
    )  # fmt: skip


def licenses_of(suite, customer_id: str) -> list[dict]:
    return suite.portalctl("license", "list", "--customer", customer_id)


def message_ids(sink, email: str) -> set[str]:
    return {str(message["Message-ID"]) for message in sink.messages(email)}


def new_mail(sink, email: str, seen: set[str], timeout: float = 20) -> EmailMessage:
    """The first message to `email` that is not among `seen` (the Message-IDs before)."""
    return sink.wait_for(
        lambda message: str(message["Message-ID"]) not in seen, to=email, timeout=timeout
    )


def catalog_plans(api, token: str) -> set[str]:
    catalog = api.get("/api/v1/catalog", token=token).json()
    return {plan["code"] for product in catalog["products"] for plan in product["plans"]}


def future(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


# --- products and plans ----------------------------------------------------------------------


def test_an_upper_case_product_code_names_one_product_in_any_case(suite, api):
    product = new_product(suite)
    assert suite.portalctl("product", "show", product.upper())["code"] == product
    company = new_company(suite)

    # the customer ID in lower case and the code in upper case reach the same objects
    license = issue(suite, f" {company['customer_id'].lower()} ", product.upper())
    assert license["product"]["code"] == product
    token = api.login(company["contact_email"], PASSWORD)
    [listed] = api.get("/api/v1/licenses", token=token).json()["licenses"]
    assert listed["license_id"] == license["license_id"]
    shown = suite.portalctl("license", "show", license["license_id"].lower())
    assert shown["license_id"] == license["license_id"]

    duplicate = suite.portalctl(
        "product", "create", "--code", product.upper(), "--name", "Again", check=False
    )
    assert "--all" in refused(duplicate, "product_exists")


def test_a_plan_for_an_unknown_product_is_refused(suite):
    code = f"ghost-{uuid.uuid4().hex[:8]}"
    failed = suite.portalctl(
        "plan", "create", "--code", f"{code}-m", "--product", code, "--amount", "49.00",
        "--currency", "EUR", "--interval", "month", check=False,
    )  # fmt: skip
    assert "portalctl product create" in refused(failed, "product_not_found")
    plans = suite.portalctl("plan", "list", "--all")
    assert f"{code}-m" not in {plan["code"] for plan in plans}


def test_amounts_are_typed_with_the_currencys_decimals_or_in_minor_units(suite):
    product = new_product(suite)
    plan = suite.portalctl(
        "plan", "create", "--code", f"{product.upper()}-Y", "--product", product.upper(),
        "--amount", "120.00", "--currency", "EUR", "--interval", "year",
    )  # fmt: skip
    assert (plan["code"], plan["amount"], plan["price"]) == (f"{product}-y", 12000, "€120.00")

    company = new_company(suite)
    args = ["payment", "record-offline", "--customer", company["customer_id"].lower()]
    paid = suite.portalctl(
        *args, "--amount", "120.00", "--currency", "EUR", "--description", "Phone order"
    )
    assert (paid["amount"], paid["currency"]) == (12000, "EUR")
    minor = suite.portalctl(*args, "--amount", "12000", "--currency", "EUR", "--description", "x")
    assert minor["amount"] == 12000
    yen = suite.portalctl(*args, "--amount", "5000", "--currency", "JPY", "--description", "y")
    assert (yen["amount"], yen["currency"]) == (5000, "JPY")

    for amount, currency in (("1.005", "EUR"), ("5000.5", "JPY"), ("12,00", "EUR")):
        failed = suite.portalctl(
            *args, "--amount", amount, "--currency", currency, "--description", "z", check=False
        )
        assert "e.g. 120.00" in refused(failed, "invalid_amount")

    # and the staff list finds them, newest first, a page at a time
    listed = suite.portalctl("payment", "list", "--customer", company["customer_id"].lower())
    assert [p["receipt_number"] for p in listed] == [
        yen["receipt_number"], minor["receipt_number"], paid["receipt_number"],
    ]  # fmt: skip
    first = suite.portalctl("payment", "list", "--customer", company["customer_id"], "--limit", "2")
    assert [p["receipt_number"] for p in first] == [yen["receipt_number"], minor["receipt_number"]]
    rest = suite.portalctl(
        "payment", "list", "--customer", company["customer_id"], "--limit", "2",
        "--before", minor["receipt_number"].lower(),
    )  # fmt: skip
    assert [p["receipt_number"] for p in rest] == [paid["receipt_number"]]
    paid_only = suite.portalctl(
        "payment", "list", "--customer", company["customer_id"], "--status", "paid"
    )
    assert len(paid_only) == 3 and {p["status"] for p in paid_only} == {"paid"}
    assert (
        suite.portalctl(
            "payment", "list", "--customer", company["customer_id"], "--status", "refunded"
        )
        == []
    )


def test_an_archived_plan_leaves_the_catalog_and_its_recurring_payment_goes_on(suite, api):
    product = new_product(suite)
    plan = suite.portalctl(
        "plan", "create", "--code", f"{product}-m", "--product", product, "--amount", "49.00",
        "--currency", "EUR", "--interval", "month",
    )["code"]  # fmt: skip
    company = new_company(suite)
    token = api.login(company["contact_email"], PASSWORD)
    assert plan in catalog_plans(api, token)
    bought = api.post(
        "/api/v1/purchases", json={"plan": plan, "seats": 1, "card": CARD}, token=token
    )
    assert bought.status_code == 201, bought.text

    archived = suite.portalctl("plan", "archive", plan.upper())
    assert (archived["code"], archived["active"]) == (plan, False)
    assert plan not in catalog_plans(api, token)
    assert plan not in {item["code"] for item in suite.portalctl("plan", "list")}
    assert plan in {item["code"] for item in suite.portalctl("plan", "list", "--all")}
    [recurring] = api.get("/api/v1/recurring-payments", token=token).json()["recurring_payments"]
    assert recurring["status"] == "active"
    again = api.post(
        "/api/v1/purchases", json={"plan": plan, "seats": 1, "card": CARD}, token=token
    )
    assert again.status_code == 422, again.text
    assert "plan" in again.json()["error"]["details"]["fields"]

    assert suite.portalctl("plan", "unarchive", plan)["active"] is True
    assert plan in catalog_plans(api, token)


def test_an_archived_product_is_off_sale_and_its_licenses_go_on(suite, api):
    product = new_product(suite)
    plan = suite.portalctl(
        "plan", "create", "--code", f"{product}-y", "--product", product, "--amount", "490",
        "--currency", "EUR", "--interval", "year",
    )["code"]  # fmt: skip
    company = new_company(suite)
    license = issue(suite, company["customer_id"], product, "--expires", future(365))
    token = api.login(company["contact_email"], PASSWORD)

    archived = suite.portalctl("product", "archive", product.upper())
    assert (archived["code"], archived["active"]) == (product, False)
    assert product not in {item["code"] for item in suite.portalctl("product", "list")}
    assert product in {item["code"] for item in suite.portalctl("product", "list", "--all")}
    assert plan not in catalog_plans(api, token)
    activated = api.post(
        "/api/v1/activations",
        json={
            "license_id": license["license_id"],
            "password": license["activation_password"],
            "installation_id": f"ws-{uuid.uuid4().hex[:8]}",
            "machine_name": "Still works",
        },
    )
    assert activated.status_code == 201, activated.text
    failed = issue(suite, company["customer_id"], product, check=False)
    assert "portalctl product unarchive" in refused(failed, "product_archived")
    forced = issue(suite, company["customer_id"], product, "--force")
    assert forced["product"]["code"] == product
    failed = suite.portalctl(
        "plan", "create", "--code", f"{product}-q", "--product", product, "--amount", "1.00",
        "--currency", "EUR", "--interval", "month", check=False,
    )  # fmt: skip
    refused(failed, "product_archived")

    assert suite.portalctl("product", "unarchive", product)["active"] is True
    assert plan in catalog_plans(api, token)


# --- the staff guardrails --------------------------------------------------------------------


def test_an_already_expired_license_is_issued_only_with_force(suite):
    product = new_product(suite)
    company = new_company(suite)
    failed = issue(suite, company["customer_id"], product, "--expires", "2020-01-01", check=False)
    assert "Pass --force" in refused(failed, "expires_in_past")
    assert licenses_of(suite, company["customer_id"]) == []

    forced = issue(suite, company["customer_id"], product, "--expires", "2020-01-01", "--force")
    assert forced["expires_at"].startswith("2020-01-01") and forced["status"] == "expired"
    assert [item["license_id"] for item in licenses_of(suite, company["customer_id"])] == [
        forced["license_id"]
    ]


def test_an_extension_to_an_earlier_date_needs_force(suite):
    product = new_product(suite)
    company = new_company(suite)
    license = issue(suite, company["customer_id"], product, "--expires", future(400))
    earlier = future(200)

    failed = suite.portalctl(
        "license", "extend", license["license_id"], "--until", earlier, check=False
    )
    assert "Pass --force" in refused(failed, "extension_shortens")
    shown = suite.portalctl("license", "show", license["license_id"])
    assert shown["expires_at"] == license["expires_at"]

    later = suite.portalctl("license", "extend", license["license_id"], "--until", future(500))
    assert later["expires_at"].startswith(future(500))
    forced = suite.portalctl(
        "license", "extend", license["license_id"].lower(), "--until", earlier, "--force"
    )
    assert forced["expires_at"].startswith(earlier)


def test_a_perpetual_license_gets_an_end_date_only_with_force(suite):
    product = new_product(suite)
    company = new_company(suite)
    license = issue(suite, company["customer_id"], product)
    assert license["expires_at"] is None

    failed = suite.portalctl(
        "license", "extend", license["license_id"], "--until", future(90), check=False
    )
    assert "Pass --force" in refused(failed, "license_is_perpetual")
    assert suite.portalctl("license", "show", license["license_id"])["expires_at"] is None

    forced = suite.portalctl(
        "license", "extend", license["license_id"], "--until", future(90), "--force"
    )
    assert forced["expires_at"].startswith(future(90))


# --- suspend and resume ----------------------------------------------------------------------


def test_a_suspension_with_a_reason_is_emailed_and_shown_then_lifted(suite, api, smtp_sink):
    product = new_product(suite, name="CAD Pro Suspendable")
    company = new_company(suite)
    email = company["contact_email"]
    license = issue(suite, company["customer_id"], product, "--expires", future(365))
    reason = f"Invoice INV-{uuid.uuid4().hex[:6]} is 60 days overdue"
    seen = message_ids(smtp_sink, email)

    suspended = suite.portalctl(
        "license", "suspend", license["license_id"].lower(), "--reason", reason
    )
    assert (suspended["status"], suspended["suspension_reason"]) == ("suspended", reason)
    assert suite.portalctl("license", "show", license["license_id"])["suspension_reason"] == reason
    token = api.login(email, PASSWORD)
    [listed] = api.get("/api/v1/licenses", token=token).json()["licenses"]
    assert (listed["status"], listed["suspension_reason"]) == ("suspended", reason)
    detail = api.get(f"/api/v1/licenses/{license['license_id']}", token=token).json()
    assert detail["suspension_reason"] == reason
    message = smtp_sink.wait_for(
        lambda m: str(m["Message-ID"]) not in seen and reason in text_body(m), to=email, timeout=20
    )
    assert "CAD Pro Suspendable" in text_body(message)

    seen = message_ids(smtp_sink, email)
    resumed = suite.portalctl("license", "resume", license["license_id"])
    assert (resumed["status"], resumed["suspension_reason"]) == ("active", None)
    [listed] = api.get("/api/v1/licenses", token=token).json()["licenses"]
    assert listed["suspension_reason"] is None
    resumed_mail = new_mail(smtp_sink, email, seen)
    assert reason not in text_body(resumed_mail)

    too_long = suite.portalctl(
        "license", "suspend", license["license_id"], "--reason", "x" * 501, check=False
    )
    assert too_long.returncode != 0 and "--reason" in too_long.stderr
    assert suite.portalctl("license", "show", license["license_id"])["status"] == "active"


def test_a_suspension_without_a_reason_still_works(suite):
    product = new_product(suite)
    company = new_company(suite)
    license = issue(suite, company["customer_id"], product)
    suspended = suite.portalctl("license", "suspend", license["license_id"])
    assert (suspended["status"], suspended["suspension_reason"]) == ("suspended", None)
    assert suite.portalctl("license", "resume", license["license_id"])["status"] == "active"


# --- companies -------------------------------------------------------------------------------


def test_a_company_is_found_by_customer_id_or_email_in_any_case(suite):
    company = new_company(suite)
    for key in (
        company["customer_id"],
        company["customer_id"].lower(),
        company["contact_email"],
        company["contact_email"].upper(),
    ):
        assert suite.portalctl("company", "show", key)["customer_id"] == company["customer_id"]
    missing = suite.portalctl("company", "show", f"nobody.{uuid.uuid4().hex}@x.test", check=False)
    assert "portalctl company find" in refused(missing, "company_not_found")


def test_a_company_is_corrected_by_staff(suite, api):
    company = new_company(suite)
    other = new_company(suite)
    email = f"new.{uuid.uuid4().hex[:10]}@example.test"
    updated = suite.portalctl(
        "company", "update", company["customer_id"].lower(), "--name", "Acme Renamed AG",
        "--contact-name", "Grace", "--email", email,
    )  # fmt: skip
    assert updated["customer_id"] == company["customer_id"]
    assert (updated["name"], updated["contact_name"], updated["contact_email"]) == (
        "Acme Renamed AG", "Grace", email,
    )  # fmt: skip
    assert suite.portalctl("company", "show", email)["name"] == "Acme Renamed AG"
    account = api.get("/api/v1/account", token=api.login(email, PASSWORD)).json()
    assert account["contact_email"] == email

    taken = suite.portalctl(
        "company", "update", company["customer_id"], "--email", other["contact_email"],
        check=False,
    )  # fmt: skip
    refused(taken, "email_taken")
    nothing = suite.portalctl("company", "update", company["customer_id"], check=False)
    refused(nothing, "nothing_to_change")
    unknown = suite.portalctl("company", "update", "C0000000", "--name", "X", check=False)
    refused(unknown, "company_not_found")


def test_an_invitation_is_sent_again_with_a_new_link(suite, api, smtp_sink):
    company = new_company(suite, password=None)
    email = company["contact_email"]
    first = smtp_sink.wait_for(lambda m: LINK.search(text_body(m)), to=email, timeout=20)
    old_token = LINK.search(text_body(first)).group(1)
    seen = message_ids(smtp_sink, email)

    sent = suite.portalctl("company", "resend-invite", company["customer_id"].lower())
    assert sent == {"customer_id": company["customer_id"], "contact_email": email, "sent": True}
    again = smtp_sink.wait_for(
        lambda m: str(m["Message-ID"]) not in seen and LINK.search(text_body(m)),
        to=email,
        timeout=20,
    )
    new_token = LINK.search(text_body(again)).group(1)
    assert new_token != old_token

    confirm = "/api/v1/password-resets/confirm"
    stale = api.post(confirm, json={"token": old_token, "new_password": PASSWORD})
    assert stale.status_code == 400 and stale.json()["error"]["code"] == "invalid_token"
    done = api.post(confirm, json={"token": new_token, "new_password": PASSWORD})
    assert done.status_code == 204, done.text
    api.login(email, PASSWORD)

    failed = suite.portalctl("company", "resend-invite", company["customer_id"], check=False)
    assert "Forgot password" in refused(failed, "password_already_set")


# --- the command line itself -----------------------------------------------------------------


def test_bad_usage_is_one_line_and_touches_nothing(suite):
    failed = suite.portalctl("license", "issue", "--customer", "C1", check=False)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert failed.stderr.count("\n") == 1 and "--help" in failed.stderr
    failed = suite.portalctl("payment", "list", "--limit", "0", check=False)
    assert failed.returncode == 2 and "--limit" in failed.stderr


def portalctl_with_uri(suite, uri: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portalctl", "product", "list", "--json"],
        cwd=ROOT,
        env={**suite.env_of("staff"), "AMQP_URI": uri},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_unreachable_or_refusing_bus_is_one_line_too(suite):
    failed = portalctl_with_uri(suite, f"amqp://staff:x@127.0.0.1:{free_port()}/")
    assert "Check that the services run" in refused(failed, "service_unavailable")

    staff = urlsplit(suite.env_of("staff")["AMQP_URI"])
    wrong = staff._replace(netloc=f"{staff.username}:wrong-password@{staff.hostname}:{staff.port}")
    failed = portalctl_with_uri(suite, urlunsplit(wrong))
    line = refused(failed, "bus_refused")
    assert "Check AMQP_URI" in line and "wrong-password" not in line
