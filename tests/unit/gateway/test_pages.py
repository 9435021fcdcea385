"""The portal's pages for each role: the nav and the header name only what the role may use,
the license page leaves out the password and the buttons a role cannot use, and a page the
role may not open answers 403 in the portal's layout."""

from __future__ import annotations

import re

import pytest

from gateway import pages, roles, sessions
from gateway.responses import PORTAL_CSP
from tests.unit.gateway.support import TOKEN, FakeAuth, make_request

BILLING_PAGES = ["/payments", "/recurring-payments", "/buy"]
NAV = {
    "owner": ["/licenses", *BILLING_PAGES, "/users", "/activity", "/account"],
    "license_admin": ["/licenses", "/account"],
    "billing": ["/licenses", *BILLING_PAGES, "/account"],
    "viewer": ["/licenses", "/account"],
}


def page(role: str, template: str = "licenses.html", **context):
    request = make_request("GET", "/x", token=None, cookies={sessions.SESSION_COOKIE: TOKEN})
    context.setdefault("title", "T")
    return pages.portal_page(FakeAuth(role=role), request, template, **context)


def nav_links(html: str) -> list[str]:
    nav = re.search(r'<nav class="mainnav".*?</nav>', html, re.S).group(0)
    return re.findall(r'href="([^"]+)"', nav)


@pytest.mark.parametrize("role", roles.ROLES)
def test_the_nav_shows_only_the_pages_of_the_role(role):
    response = page(role)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert nav_links(html) == NAV[role]
    assert f'data-role="{role}"' in html
    label = pages.ROLE_LABELS[role]
    assert f'<span class="role-tag" id="who-role">{label}</span>' in html
    assert "Ada" in html  # the user's name in the header
    assert "Acme &lt;b&gt;Evil&lt;/b&gt;" in html  # and the company's, escaped


@pytest.mark.parametrize("role", ["license_admin", "billing", "viewer"])
def test_a_page_beyond_the_role_is_a_403_page_that_says_why(role):
    response = page(role, "users.html", nav="users", roles=roles.OWNERS)
    html = response.get_data(as_text=True)
    assert response.status_code == 403
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == PORTAL_CSP
    label = pages.ROLE_LABELS[role]
    message = re.sub(r"\s+", " ", re.search(r'id="forbidden-message">(.*?)</p>', html, re.S)[1])
    assert message == (
        f"This page is not available for your role ({label}). Ask an owner of your account."
    )
    assert nav_links(html) == NAV[role]  # in the portal's layout, with the role's nav
    assert "users.js" not in html


def test_an_owner_gets_the_page():
    response = page("owner", "users.html", nav="users", roles=roles.OWNERS)
    assert response.status_code == 200
    assert "/static/users.js" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("role", "password", "renew"),
    [("owner", True, True), ("license_admin", True, False), ("billing", False, True),
     ("viewer", False, False)],
)  # fmt: skip
def test_the_license_page_leaves_out_what_the_role_cannot_do(role, password, renew):
    html = page(role, "license.html", license_id="L-7KQX-M2PD").get_data(as_text=True)
    assert ('id="activation-password"' in html) is password
    assert ('id="rotate"' in html) is password
    assert ('id="password-unavailable"' in html) is not password
    assert ('id="renew"' in html) is renew


@pytest.mark.parametrize("role", roles.ROLES)
def test_the_account_page_has_billing_details_only_for_billing_roles(role):
    html = page(role, "account.html").get_data(as_text=True)
    assert ('id="billing-form"' in html) is (role in roles.BILLING_USERS)
    assert 'id="notifications-form"' in html
    assert 'id="u-email">ada@acme.test<' in html


def test_public_pages_have_no_role():
    html = pages.public_page("accept-invitation.html", title="Accept").get_data(as_text=True)
    assert "data-role" not in html and "mainnav" not in html
    assert '<script type="module" src="/static/accept-invitation.js"></script>' in html


@pytest.mark.parametrize("role", roles.ROLES)
def test_the_license_page_has_the_floating_panels_hidden_until_the_license_says(role):
    # the page does not know the model: its script shows the panels of the license's model
    html = page(role, "license.html", license_id="L-7KQX-M2PD").get_data(as_text=True)
    for panel in ("leases-panel", "usage-panel"):
        tag = re.search(rf'<section [^>]*id="{panel}"[^>]*>', html)
        assert tag is not None and " hidden" in tag.group(0), panel
    installations = re.search(r'<section [^>]*id="installations-panel"[^>]*>', html).group(0)
    assert " hidden" not in installations
    assert 'id="usage-chart"' in html and 'id="leases"' in html
    # who may revoke is told how; the others whom to ask
    assert ("Revoke a lease to free its seat" in html) is (role in roles.LICENSE_ADMINS)
