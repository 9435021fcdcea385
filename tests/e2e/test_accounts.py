"""Accounts end to end: the real gateway over HTTP, every service a process, real SMTP."""

from __future__ import annotations

import re
import uuid

import pytest

from common.events import SUBSCRIPTIONS, queue_for
from tests.support.bus import queue_depth, wait_for_queue_depth

pytestmark = pytest.mark.e2e

PASSWORD = "Winter-Orchard-42"
NEW_PASSWORD = "Harbour-Lantern-97"
LINK = re.compile(r"(https?://\S+/reset-password#token=[A-Za-z0-9_\-]+)")


def new_company(suite, password: str | None = PASSWORD) -> dict:
    email = f"Contact.{uuid.uuid4().hex[:10]}@Example.test"
    args = ["company", "create", "--name", "Acme Engineering", "--contact-name", "Ada"]
    args += ["--email", email]
    if password:
        args += ["--password", password]
    return suite.portalctl(*args)


def notify_queue(source: str, event_type: str) -> str:
    """The queue in which notify's handler of `source`'s `event_type` waits."""
    [row] = [row for row in SUBSCRIPTIONS if row[:3] == (source, event_type, "notify")]
    return queue_for(*row).name


def link_in(message) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    found = LINK.search(body)
    assert found, body
    return found.group(1)


def mail_to(sink, address: str, subject_part: str, timeout: float = 15):
    return sink.wait_for(
        lambda m: m["To"] and address.lower() in m["To"].lower() and subject_part in m["Subject"],
        timeout=timeout,
    )


def test_login_with_customer_id_or_email_in_any_case(api, suite):
    company = new_company(suite)
    for login in (
        company["customer_id"],
        company["customer_id"].lower(),
        company["contact_email"],
        company["contact_email"].upper(),
    ):
        response = api.post("/api/v1/sessions", json={"login": login, "password": PASSWORD})
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["company"]["customer_id"] == company["customer_id"]
        assert len(body["token"]) >= 32 and body["expires_at"]
        account = api.get("/api/v1/account", token=body["token"]).json()
        user = account.pop("user")
        assert account == {
            "customer_id": company["customer_id"],
            "name": "Acme Engineering",
            "contact_name": "Ada",
            "contact_email": company["contact_email"].lower(),
        }
        # the company-wide login is its contact's, who is always an owner
        assert (user["email"], user["role"]) == (company["contact_email"].lower(), "owner")
        assert body["user"] == user


def test_unknown_login_gets_exactly_the_answer_of_a_wrong_password(api, suite):
    company = new_company(suite)
    wrong = api.post(
        "/api/v1/sessions", json={"login": company["customer_id"], "password": "not it at all"}
    )
    unknown = api.post(
        "/api/v1/sessions", json={"login": "nobody@nowhere.test", "password": "not it at all"}
    )
    assert wrong.status_code == unknown.status_code == 401
    # the same answer but for each request's own ID
    assert without_request_id(wrong.json()) == without_request_id(unknown.json())
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    resets = [
        api.post("/api/v1/password-resets", json={"login": login})
        for login in (company["contact_email"], "nobody@nowhere.test")
    ]
    assert [r.status_code for r in resets] == [202, 202]
    assert resets[0].json() == resets[1].json()


def test_logout_ends_the_session(api, suite):
    company = new_company(suite)
    token = api.login(company["customer_id"], PASSWORD)
    assert api.get("/api/v1/account", token=token).status_code == 200
    assert api.delete("/api/v1/sessions/current", token=token).status_code == 204
    after = api.get("/api/v1/account", token=token)
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "unauthenticated"
    assert api.get("/api/v1/account").status_code == 401


def test_password_change_revokes_other_sessions(api, suite, smtp_sink):
    company = new_company(suite)
    here = api.login(company["contact_email"], PASSWORD)
    elsewhere = api.login(company["customer_id"], PASSWORD)
    wrong = api.put(
        "/api/v1/account/password",
        token=here,
        json={"current_password": "not the password", "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 401
    weak = api.put(
        "/api/v1/account/password",
        token=here,
        json={"current_password": PASSWORD, "new_password": "short"},
    )
    assert weak.status_code == 422
    assert "new_password" in weak.json()["error"]["details"]["fields"]
    changed = api.put(
        "/api/v1/account/password",
        token=here,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204, changed.text
    assert api.get("/api/v1/account", token=here).status_code == 200
    assert api.get("/api/v1/account", token=elsewhere).status_code == 401
    old = api.post("/api/v1/sessions", json={"login": company["customer_id"], "password": PASSWORD})
    assert old.status_code == 401
    assert api.login(company["customer_id"], NEW_PASSWORD)
    notice = mail_to(smtp_sink, company["contact_email"], "password")
    assert "changed" in notice.get_body(preferencelist=("plain",)).get_content().lower()


def test_forgotten_password_journey_from_the_emailed_link(api, suite, smtp_sink):
    company = new_company(suite)
    session = api.login(company["customer_id"], PASSWORD)
    accepted = api.post("/api/v1/password-resets", json={"login": company["contact_email"].upper()})
    assert accepted.status_code == 202
    message = mail_to(smtp_sink, company["contact_email"], "eset")
    link = link_in(message)
    assert link.startswith(suite.env["PORTAL_URL"] + "/reset-password#token=")
    page = api.http.get(suite.url + "/reset-password", timeout=10)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    token = link.split("#token=", 1)[1]

    confirmed = api.post(
        "/api/v1/password-resets/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert confirmed.status_code == 204, confirmed.text
    # a reset logs nobody in and ends every session
    assert api.get("/api/v1/account", token=session).status_code == 401
    reused = api.post(
        "/api/v1/password-resets/confirm", json={"token": token, "new_password": "Another-Pass-123"}
    )
    assert reused.status_code == 400
    assert reused.json()["error"]["code"] == "invalid_token"
    assert (
        api.post(
            "/api/v1/sessions", json={"login": company["customer_id"], "password": PASSWORD}
        ).status_code
        == 401
    )
    assert api.login(company["contact_email"], NEW_PASSWORD)
    notice = mail_to(smtp_sink, company["contact_email"], "password was changed")
    assert notice is not None


def test_reset_token_that_is_garbage_or_missing_is_refused(api):
    for token in ("x", "A" * 43, "é" * 20):
        response = api.post(
            "/api/v1/password-resets/confirm", json={"token": token, "new_password": NEW_PASSWORD}
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_token"


def test_company_created_without_password_sets_it_from_the_email(api, suite, smtp_sink):
    company = new_company(suite, password=None)
    assert company["has_password"] is False
    welcome = mail_to(smtp_sink, company["contact_email"], "Welcome")
    link = link_in(welcome)
    token = link.split("#token=", 1)[1]
    assert company["customer_id"] in welcome.get_body(preferencelist=("plain",)).get_content()
    response = api.post(
        "/api/v1/password-resets/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 204, response.text
    assert api.login(company["customer_id"], NEW_PASSWORD)


def test_failed_logins_are_throttled_per_login(api, suite):
    company = new_company(suite)
    other = new_company(suite)
    for attempt in range(5):
        login = company["customer_id"] if attempt % 2 else company["contact_email"]
        response = api.post("/api/v1/sessions", json={"login": login, "password": "wrong pass"})
        assert response.status_code == 401
    blocked = api.post(
        "/api/v1/sessions", json={"login": company["customer_id"], "password": PASSWORD}
    )
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "too_many_attempts"
    assert 0 < int(blocked.headers["Retry-After"]) <= 15 * 60
    # another company is not affected
    assert api.login(other["customer_id"], PASSWORD)


def test_staff_find_and_show_companies(suite):
    company = new_company(suite)
    found = suite.portalctl("company", "find", company["contact_email"])
    assert [c["customer_id"] for c in found] == [company["customer_id"]]
    shown = suite.portalctl("company", "show", company["customer_id"])
    assert shown["contact_email"] == company["contact_email"].lower()
    missing = suite.portalctl("company", "show", "C0000000", check=False)
    assert missing.returncode != 0
    assert "No company" in missing.stderr
    duplicate = suite.portalctl(
        "company",
        "create",
        "--name",
        "X",
        "--contact-name",
        "Y",
        "--email",
        company["contact_email"],
        check=False,
    )
    assert duplicate.returncode != 0 and "email" in duplicate.stderr


def test_openapi_and_health(api):
    spec = api.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in ("/api/v1/sessions", "/api/v1/password-resets/confirm", "/api/v1/account"):
        assert path in spec["paths"]
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json()["services"]) == {"auth", "licensing", "billing", "notify"}


def test_a_stopped_service_gives_503_fast_and_recovers(api, suite):
    suite.stop("auth")
    try:
        # the gateway's RPC timeout (3 s in this suite) answers; a hang would end in the
        # HTTP client's own, longer timeout as an exception instead of this 503
        response = api.post("/api/v1/sessions", json={"login": "someone", "password": "whatever1"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "service_unavailable"
        assert api.get("/readyz").status_code == 503
    finally:
        suite.start("auth")
        suite.wait_ready()


def test_emails_sent_while_notify_is_down_arrive_after_it_returns(api, suite, smtp_sink):
    company = new_company(suite)
    queue = notify_queue("auth", "password_reset_requested")
    suite.stop("notify")
    try:
        waiting = queue_depth(suite.env["AMQP_URI"], queue)
        assert (
            api.post("/api/v1/password-resets", json={"login": company["customer_id"]}).status_code
            == 202
        )
        # the request is waiting in notify's queue, so no mail can have come of it yet
        wait_for_queue_depth(suite.env["AMQP_URI"], queue, lambda depth: depth == waiting + 1)
        assert not [
            m
            for m in smtp_sink.messages()
            if company["contact_email"].lower() in m["To"].lower() and "eset" in m["Subject"]
        ]
    finally:
        suite.start("notify")
        suite.wait_ready()
    message = mail_to(smtp_sink, company["contact_email"], "eset", timeout=30)
    assert link_in(message)


def without_request_id(body: dict) -> dict:
    return {**body, "error": {k: v for k, v in body["error"].items() if k != "request_id"}}
