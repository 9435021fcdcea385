"""Money integrity end to end: the real gateway over HTTP, `portalctl` as a process, every
service a `nameko run` process on the real bus and PostgreSQL, real SMTP.

Charged once whatever the bus does (purchases while every connection of the suite's vhost is
closed again and again, counted per request in billing's books and the provider's ledger);
a re-sent purchase answers its receipt, a reused key with another body is refused; nothing
is sold that cannot be delivered (a plan for an unknown product is refused; a payment that
licensing cannot apply is refunded, its recurring payment ended and the customer emailed,
also when staff archive the product during purchases); an archived plan leaves the catalog
while its recurring payment goes on; every identifier variant reaches the same object and
never a second recurring payment; resume and card change; payment history pages.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from eventlet.greenpool import GreenPool

from tests.support.blips import (
    BillingBooks,
    ConnectionBlips,
    close_all_connections,
    portalctl_batch,
    redelivered,
    settle,
    vhost_of,
    wait_until,
)
from tests.support.smtp_sink import text_body
from tests.support.suite import ROOT, client_at

pytestmark = pytest.mark.e2e

PASSWORD = "Ledger-Harbour-73"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
DECLINED = {**CARD, "number": "4000000000000002"}
MASTERCARD = {**CARD, "number": "5555555555554444"}
# purchases during the blips; each by its own company, so counting is per request
BLIP_PURCHASES = 40
PURCHASE_SPACING = 0.2  # seconds between their starts
PURCHASES_PER_BLIP = 4  # ... and one more close after every four: ten closes at least
RACE_COMPANIES = 64  # purchases racing a product archive: enough to outlast the command (its
# interpreter starts in 2-6 s on a busy 2-core machine; the stream stops 3 purchases after it)
RENEWALS_TIMEOUT = ["--timeout", "60"]  # a renewal pass charges every due recurring payment


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def books(suite) -> BillingBooks:
    return BillingBooks(suite.env["BILLING_DATABASE_URL"])


def new_product(suite, name: str = "Money Integrity CAD") -> str:
    code = f"MI-{uuid.uuid4().hex[:8].upper()}"
    return suite.portalctl("product", "create", "--code", code, "--name", name)["code"]


def new_plan(suite, product: str, amount: str = "19.50", interval: str = "month") -> str:
    code = f"{product}-{interval[0]}-{uuid.uuid4().hex[:4]}"
    return suite.portalctl(
        "plan", "create", "--code", code, "--product", product,
        "--amount", amount, "--currency", "EUR", "--interval", interval,
    )["code"]  # fmt: skip


@pytest.fixture(scope="module")
def yearly_plan(suite) -> str:
    """A yearly plan: the renewal passes of this module (a month ahead) never charge it."""
    return new_plan(suite, new_product(suite), amount="120.00", interval="year")


def company_args(label: str) -> list[str]:
    email = f"{label}.{uuid.uuid4().hex[:10]}@example.test"
    return [
        "company", "create", "--name", f"Money {label}", "--contact-name", "Ada",
        "--email", email, "--password", PASSWORD,
    ]  # fmt: skip


def new_customers(suite, count: int, label: str = "mi") -> list[tuple[dict, str]]:
    """`count` companies (one portalctl process) and a session each, each logged in from a
    loopback address of its own (the gateway and its throttles see separate clients)."""
    companies = portalctl_batch(suite, [company_args(label) for _ in range(count)])

    def login(company: dict) -> tuple[dict, str]:
        return company, client_at(suite.url).login(company["contact_email"], PASSWORD)

    return list(GreenPool(4).imap(login, companies))


def new_customer(suite, label: str = "mi") -> tuple[dict, str]:
    company = suite.portalctl(*company_args(label))
    return company, suite.api.login(company["contact_email"], PASSWORD)


def buy(
    api, token: str, plan: str, card: dict = CARD, seats: int = 1, headers=None,
    timeout: float = 15, **extra,
):  # fmt: skip
    body = {"plan": plan, "seats": seats, "card": card, **extra}
    return api.post("/api/v1/purchases", json=body, token=token, headers=headers, timeout=timeout)


def payments_of(api, token: str) -> list[dict]:
    return api.get("/api/v1/payments?limit=200", token=token).json()["payments"]


def recurring_of(api, token: str) -> list[dict]:
    return api.get("/api/v1/recurring-payments", token=token).json()["recurring_payments"]


def licenses_of(api, token: str) -> list[dict]:
    return api.get("/api/v1/licenses", token=token).json()["licenses"]


def linked_recurring_payment(api, token: str, timeout: float = 15.0) -> dict:
    """The company's one recurring payment once billing knows its license (it learns it from
    licensing's event a moment after the purchase; a renewal pass waits for it)."""

    def linked():
        [recurring] = recurring_of(api, token)
        return recurring if recurring["license_id"] else None

    return wait_until(linked, timeout, "the recurring payment names its license")


def day_after(timestamp: str) -> str:
    return (datetime.fromisoformat(timestamp).date() + timedelta(days=1)).isoformat()


def error_code(response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def mail_text(message) -> str:
    return f"{message['Subject']}\n{text_body(message)}"


# --- 1. charged once, whatever the bus does --------------------------------------------------


def test_purchases_during_connection_blips_are_each_charged_at_most_once(suite, books, yearly_plan):
    customers = new_customers(suite, BLIP_PURCHASES, "blip")
    answers: dict[str, object] = {}

    def purchase(customer: tuple[dict, str]) -> None:
        company, token = customer
        api = client_at(suite.url)  # no Idempotency-Key: the gateway makes one per request
        try:
            answers[company["customer_id"]] = buy(api, token, yearly_plan, timeout=30)
        except Exception as exc:  # a broken reply is a finding: kept
            answers[company["customer_id"]] = exc

    pool = GreenPool(8)
    with ConnectionBlips(vhost_of(suite.env["AMQP_URI"])) as blips:
        blips.wait_rounds(1)  # the first close lands before the first purchase
        for index, customer in enumerate(customers):
            pool.spawn_n(purchase, customer)
            if index % PURCHASES_PER_BLIP == PURCHASES_PER_BLIP - 1:
                # closes land in every step of a purchase, however slow the machine is
                blips.wait_rounds(blips.rounds + 1)
            else:
                time.sleep(PURCHASE_SPACING)
        pool.waitall()
    assert not blips.errors, blips.errors
    statuses = {
        cid: getattr(answer, "status_code", repr(answer)) for cid, answer in answers.items()
    }
    print(f"{blips.hits}/{blips.rounds} blips closed {blips.closed} connections; {statuses}")
    # the blips happened: connections were closed again and again while purchases ran
    assert blips.rounds >= BLIP_PURCHASES // PURCHASES_PER_BLIP and blips.hits >= 8, (
        blips.rounds,
        blips.hits,
        blips.closed,
    )
    assert set(statuses.values()) <= {201, 503}, statuses  # never a 500, never a broken reply
    settle(suite)
    vhost = vhost_of(suite.env["AMQP_URI"])
    print(f"billing's RPC requests delivered again: {redelivered(vhost, 'rpc-billing')}")

    for company, token in customers:
        cid = company["customer_id"]
        api = client_at(suite.url)
        counted = books.of(cid)
        assert counted.payments <= 1 and counted.provider_charges <= 1, (cid, counted)
        assert counted.payments == counted.provider_charges, (cid, counted)
        if statuses[cid] == 201:
            assert counted.payments == 1, (cid, counted)
            [payment] = payments_of(api, token)
            assert payment["receipt_number"] == answers[cid].json()["payment"]["receipt_number"]
        assert len(recurring_of(api, token)) == counted.payments, cid
        if counted.payments:  # a payment becomes a license, also after the blips
            wait_until(lambda a=api, t=token: licenses_of(a, t), 30, f"{cid}'s license")
        assert len(licenses_of(api, token)) == counted.payments, cid
    assert list(statuses.values()).count(201) >= 1, statuses


def test_a_purchase_resent_with_its_key_after_a_blip_answers_the_same_receipt(
    suite, books, yearly_plan
):
    [(company, token), (neighbour, neighbours_token)] = new_customers(suite, 2, "resend")
    api = client_at(suite.url)
    key = {"Idempotency-Key": f"order-{uuid.uuid4().hex}"}
    first = buy(api, token, yearly_plan, headers=key)
    assert first.status_code == 201, first.text

    assert close_all_connections(vhost_of(suite.env["AMQP_URI"])) > 0
    settle(suite)

    again = buy(api, token, yearly_plan, headers=key)
    assert again.status_code == 201, again.text
    assert again.json()["payment"]["receipt_number"] == first.json()["payment"]["receipt_number"]
    other = buy(api, token, yearly_plan, seats=2, headers=key)
    assert other.status_code == 422, other.text
    assert error_code(other) == "idempotency_key_reused"
    counted = books.of(company["customer_id"])
    assert (counted.payments, counted.provider_charges) == (1, 1), counted
    assert len(payments_of(api, token)) == 1

    # keys are per company: another company's same key is another purchase
    theirs = buy(client_at(suite.url), neighbours_token, yearly_plan, headers=key)
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["payment"]["receipt_number"] != first.json()["payment"]["receipt_number"]
    counted = books.of(neighbour["customer_id"])
    assert (counted.payments, counted.provider_charges) == (1, 1), counted


# --- 2. nothing is sold that cannot be delivered ---------------------------------------------


def test_a_plan_for_an_unknown_product_is_refused(suite, api):
    code = f"nope-plan-{uuid.uuid4().hex[:6]}"
    result = suite.portalctl(
        "plan", "create", "--code", code, "--product", f"NOPE-{uuid.uuid4().hex[:6]}",
        "--amount", "10.00", "--currency", "EUR", "--interval", "month", check=False,
    )  # fmt: skip
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "product_not_found" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert code not in [plan["code"] for plan in suite.portalctl("plan", "list", "--all")]
    _, token = new_customer(suite, "nope")
    catalog = api.get("/api/v1/catalog", token=token).json()["products"]
    assert code not in [plan["code"] for product in catalog for plan in product["plans"]]


# --- 3. a payment licensing cannot apply is refunded and emailed -----------------------------


def test_a_renewal_of_a_suspended_license_is_refunded_and_emailed_and_renewal_goes_on(
    suite, books, smtp_sink
):
    plan = new_plan(suite, new_product(suite, "Refund CAD"), amount="19.50")
    company, token = new_customer(suite, "refund")
    api = client_at(suite.url)
    first = buy(api, token, plan, seats=2)
    assert first.status_code == 201, first.text
    bought = first.json()["payment"]
    recurring = linked_recurring_payment(api, token)
    license_id = recurring["license_id"]

    suspended = suite.portalctl("license", "suspend", license_id, "--reason", "Audit pending")
    assert suspended["status"] == "suspended"
    report = suite.portalctl(
        "billing", "run-renewals", "--as-of", day_after(bought["period_end"]), *RENEWALS_TIMEOUT
    )
    assert report["succeeded"] >= 1, report
    started = time.monotonic()

    def refunded_renewal():
        renewals = [
            p for p in payments_of(api, token) if p["receipt_number"] != bought["receipt_number"]
        ]
        return renewals[0] if renewals and renewals[0]["status"] == "refunded" else None

    renewal = wait_until(refunded_renewal, 60, "the renewal payment refunded")
    assert renewal["amount"] == 3900 and renewal["refunded_at"], renewal
    assert renewal["refund_reason"], renewal
    [after] = [
        p for p in payments_of(api, token) if p["receipt_number"] == bought["receipt_number"]
    ]
    assert after["status"] == "paid"

    # a suspension is lifted some day: the automatic renewal stays, for the next period
    [state] = recurring_of(api, token)
    assert state["status"] == "active" and state["cancelled_by"] is None, state
    counted = books.of(company["customer_id"])
    assert (counted.payments, counted.provider_charges, counted.provider_refunds) == (2, 2, 1)

    email = company["contact_email"]
    message = smtp_sink.wait_for(
        lambda m: "refund" in mail_text(m).lower() and "€39.00" in text_body(m),
        to=email,
        timeout=max(1.0, 60 - (time.monotonic() - started)),
    )
    assert "Traceback" not in text_body(message)

    listed = suite.portalctl("payment", "list", "--status", "refunded")
    assert renewal["receipt_number"] in [p["receipt_number"] for p in listed], listed
    assert {p["status"] for p in listed} == {"refunded"}, listed


def test_purchases_racing_a_product_archive_are_licensed_refunded_or_refused(suite, books):
    product = new_product(suite, "Race CAD")
    plan = new_plan(suite, product, amount="50.00", interval="year")
    customers = new_customers(suite, RACE_COMPANIES, "race")
    answers: dict[str, object] = {}

    def purchase(customer: tuple[dict, str]) -> None:
        company, token = customer
        answers[company["customer_id"]] = buy(client_at(suite.url), token, plan, timeout=30)

    archive = subprocess.Popen(
        [sys.executable, "-m", "portalctl", "product", "archive", product, "--json"],
        cwd=ROOT,
        env=suite.env_of("staff"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # a stream of purchases from before the archive lands (portalctl takes a second to
    # start) until three purchases after it has been answered
    pool, after = GreenPool(len(customers)), 0
    time.sleep(0.5)
    for index, customer in enumerate(customers):
        pool.spawn_n(purchase, customer)
        after += archive.poll() is not None
        if after == 3:
            customers = customers[: index + 1]
            break
        time.sleep(0.15)
    pool.waitall()
    out, err = archive.communicate(timeout=60)
    assert archive.returncode == 0, err
    assert after == 3, "the archive took longer than the purchases: raise RACE_COMPANIES"
    outcomes: dict[str, str] = {}

    for company, token in customers:
        cid = company["customer_id"]
        answer = answers[cid]
        api = client_at(suite.url)
        if answer.status_code != 201:  # refused before any charge
            assert (answer.status_code, error_code(answer)) in {
                (409, "product_archived"),
                (404, "plan_not_found"),
                (422, "validation_error"),
            }, answer.text
            counted = books.of(cid)
            assert (counted.payments, counted.provider_charges) == (0, 0), (cid, counted)
            outcomes[cid] = f"refused {answer.status_code}"
            continue

        def outcome(api=api, token=token):  # licensed, or refunded (its recurring ended)
            if licenses_of(api, token):
                return "licensed"
            [payment] = payments_of(api, token)
            if payment["status"] == "refunded":
                return "refunded"
            return None

        settled = wait_until(outcome, 60, f"{cid}'s payment licensed or refunded")
        counted = books.of(cid)
        assert (counted.payments, counted.provider_charges) == (1, 1), (cid, counted)
        if settled == "refunded":
            assert counted.provider_refunds == 1, (cid, counted)
            [recurring] = recurring_of(api, token)
            assert recurring["status"] == "cancelled", recurring
        outcomes[cid] = settled
    print(f"purchases racing the archive: {outcomes}")
    assert suite.portalctl("product", "show", product)["active"] is False


# --- 4. archive instead of delete -------------------------------------------------------------


def test_an_archived_plan_leaves_the_catalog_and_its_recurring_payment_goes_on(suite, books):
    plan = new_plan(suite, new_product(suite, "Archive CAD"), amount="30.00")
    company, token = new_customer(suite, "archive")
    api = client_at(suite.url)
    first = buy(api, token, plan)
    assert first.status_code == 201, first.text
    bought = first.json()["payment"]
    recurring = linked_recurring_payment(api, token)

    archived = suite.portalctl("plan", "archive", plan.upper())
    assert archived["code"] == plan
    catalog = api.get("/api/v1/catalog", token=token).json()["products"]
    assert plan not in [item["code"] for product in catalog for item in product["plans"]]
    refused = buy(api, token, plan)
    assert refused.status_code in (404, 422), refused.text
    [still] = recurring_of(api, token)
    assert still["status"] == "active" and still["id"] == recurring["id"]

    report = suite.portalctl(
        "billing", "run-renewals", "--as-of", day_after(bought["period_end"]), *RENEWALS_TIMEOUT
    )
    assert report["succeeded"] >= 1, report
    renewal, original = payments_of(api, token)
    assert original["receipt_number"] == bought["receipt_number"]
    assert renewal["period_start"] == bought["period_end"] and renewal["amount"] == 3000
    path = f"/api/v1/licenses/{recurring['license_id']}"
    wait_until(
        lambda: api.get(path, token=token).json()["expires_at"] == renewal["period_end"],
        30,
        "the license extended by the renewal",
    )
    assert payments_of(api, token)[0]["status"] == "paid"
    [renewed] = recurring_of(api, token)
    assert renewed["status"] == "active" and renewed["next_charge_at"] == renewal["period_end"]
    counted = books.of(company["customer_id"])
    assert (counted.payments, counted.provider_charges, counted.provider_refunds) == (2, 2, 0)


# --- 5. one canonical form for every identifier -----------------------------------------------


def test_every_identifier_variant_reaches_the_same_object(suite, books):
    product = new_product(suite, "Variant CAD")  # created upper case, answered lower case
    plan_code = f"VAR-{uuid.uuid4().hex[:6].upper()}"
    plan = suite.portalctl(
        "plan", "create", "--code", f"  {plan_code}  ", "--product", f" {product.upper()} ",
        "--amount", "25.00", "--currency", "EUR", "--interval", "month",
    )  # fmt: skip
    assert plan["code"] == plan_code.lower()
    company, token = new_customer(suite, "variant")
    cid = company["customer_id"]
    api = client_at(suite.url)

    first = buy(api, token, f" {plan_code} ")  # the plan code in the body: any case, spaces
    assert first.status_code == 201, first.text
    bought = first.json()["payment"]
    recurring = linked_recurring_payment(api, token)
    license_id = recurring["license_id"]
    assert license_id == license_id.strip().upper()

    for variant in (license_id, license_id.lower(), f" {license_id.lower()} "):
        found = api.get(f"/api/v1/licenses/{quote(variant)}", token=token)
        assert found.status_code == 200, (variant, found.text)
        assert found.json()["license_id"] == license_id

    renewal = buy(api, token, plan["code"], license_id=f" {license_id.lower()} ")
    assert renewal.status_code == 201, renewal.text
    renewed = renewal.json()
    assert renewed["payment"]["license_id"] == license_id
    assert renewed["payment"]["period_start"] == bought["period_end"]
    [only] = recurring_of(api, token)  # never a second recurring payment
    assert only["id"] == recurring["id"] and only["license_id"] == license_id
    assert only["next_charge_at"] == renewed["payment"]["period_end"]
    assert renewed["recurring_payment"]["id"] == recurring["id"]
    assert renewed["recurring_payment"]["next_charge_at"] == renewed["payment"]["period_end"]
    assert books.of(cid).provider_charges == 2

    issued = suite.portalctl(
        "license", "issue", "--customer", f" {cid.lower()} ", "--product", f" {product.upper()} ",
        "--seats", "1",
    )  # fmt: skip
    assert issued["customer_id"] == cid and issued["product"]["code"] == product
    assert issued["license_id"] in [item["license_id"] for item in licenses_of(api, token)]
    for variant in (f" {cid.lower()} ", f" {company['contact_email'].upper()} "):
        assert suite.portalctl("company", "show", variant)["customer_id"] == cid, variant
    assert suite.portalctl("license", "show", f" {license_id.lower()} ")["license_id"] == license_id
    assert suite.portalctl("product", "show", f" {product.upper()} ")["code"] == product
    listed = suite.portalctl("plan", "list")
    assert [p["code"] for p in listed].count(plan_code.lower()) == 1


# --- 6. recurring payments a customer controls ------------------------------------------------


def test_resume_and_card_change_through_http_are_emailed(suite, smtp_sink):
    plan = new_plan(suite, new_product(suite, "Control CAD"), amount="15.00")
    company, token = new_customer(suite, "control")
    email = company["contact_email"]
    api = client_at(suite.url)
    assert buy(api, token, plan).status_code == 201
    [recurring] = recurring_of(api, token)
    assert recurring["card_last4"] == "4242"
    path = f"/api/v1/recurring-payments/{recurring['id']}"

    cancelled = api.post(f"{path}/cancel", token=token)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    resumed = api.post(f"{path}/resume", token=token)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "active"
    [listed] = recurring_of(api, token)
    assert listed["status"] == "active"
    smtp_sink.wait_for(lambda m: "resum" in mail_text(m).lower(), to=email, timeout=20)

    declined = api.put(f"{path}/card", json={"card": DECLINED}, token=token)
    assert declined.status_code == 402, declined.text
    assert error_code(declined) == "card_declined"
    [unchanged] = recurring_of(api, token)
    assert unchanged["card_last4"] == "4242" and unchanged["status"] == "active"

    changed = api.put(f"{path}/card", json={"card": MASTERCARD}, token=token)
    assert changed.status_code == 200, changed.text
    assert changed.json()["card_last4"] == "4444" and changed.json()["id"] == recurring["id"]
    [listed] = recurring_of(api, token)
    assert listed["card_last4"] == "4444" and listed["status"] == "active"
    smtp_sink.wait_for(lambda m: "4444" in text_body(m), to=email, timeout=20)


# --- 7. payment history pages ------------------------------------------------------------------


def test_payment_history_pages_through_with_next_before(suite, yearly_plan):
    _, token = new_customer(suite, "pages")
    api = client_at(suite.url)
    receipts = []
    for _ in range(3):
        response = buy(api, token, yearly_plan)
        assert response.status_code == 201, response.text
        receipts.append(response.json()["payment"]["receipt_number"])

    first = api.get("/api/v1/payments?limit=2", token=token)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [p["receipt_number"] for p in page["payments"]] == receipts[:0:-1]
    assert page["next_before"] == receipts[1]
    second = api.get(f"/api/v1/payments?limit=2&before={page['next_before']}", token=token).json()
    assert [p["receipt_number"] for p in second["payments"]] == receipts[:1]
    assert second["next_before"] is None
    for bad in ("limit=0", "limit=201", "limit=two"):
        response = api.get(f"/api/v1/payments?{bad}", token=token)
        assert response.status_code == 422, (bad, response.text)
