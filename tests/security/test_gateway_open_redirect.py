"""After logging in, the portal never sends the browser to another site (issue 11, finding 1).

A real login in headless Chromium with a `next` that a browser would read as another host:
tab, CR and LF (browsers drop them from a URL, so "/\\t/evil.example" is "//evil.example"),
backslashes (read as slashes), doubled slashes, absolute URLs, in plain and encoded forms.
Before the fix `/login?next=/%09/evil.example/x` landed on evil.example.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e

PASSWORD = "Winter-Orchard-42"
EVIL_NEXT = [
    "/%09/evil.example/x",
    "/%0D/evil.example/x",
    "/%0A/evil.example/x",
    "/%09%5Cevil.example/x",
    "/%5C%09evil.example/x",
    "%2F%09%2Fevil.example%2Fx",
    "/%0D%0A/evil.example/x",
    "/%5C/evil.example/x",
    "//evil.example/x",
    "%2F%2Fevil.example",
    "https://evil.example/x",
    "/%2509/evil.example/x",  # decoded once: "/%09/…", a path of the portal
]


@pytest.fixture(scope="module")
def company(suite):
    return suite.portalctl(
        "company", "create", "--name", "Redirect Test Ltd", "--contact-name", "Ada",
        "--email", f"redirect.{uuid.uuid4().hex[:10]}@example.test", "--password", PASSWORD,
    )  # fmt: skip


def log_in_from(ui, suite, company, next_value: str) -> str:
    """Log in on `/login?next=<next_value>`; the URL the browser goes on to."""
    ui.reset()
    ui.open("/login?next=" + next_value)
    ui.visible("#login")
    ui.fill("#login", company["customer_id"])
    ui.fill("#password", PASSWORD)
    ui.click("#login-form button[type=submit]")

    def left_the_login_page(_) -> str | bool:
        url = ui.driver.current_url
        parts = urlsplit(url)
        on_login = parts.netloc == urlsplit(suite.url).netloc and parts.path == "/login"
        return False if on_login else url

    return ui.wait(left_the_login_page, what="the browser to leave the login page")


def test_logging_in_never_leaves_the_portal(browser, suite, company):
    portal = urlsplit(suite.url).netloc
    for next_value in EVIL_NEXT:
        url = log_in_from(browser, suite, company, next_value)
        assert urlsplit(url).netloc == portal, (next_value, url)
    # a path of the portal is still where the login goes on to
    assert log_in_from(browser, suite, company, "/payments%3Fx%3D1") == f"{suite.url}/payments?x=1"
