"""Every email renders as text and HTML, with its links, and nothing from a payload as markup."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from markupsafe import escape

from common.timeutil import human_date, human_datetime
from services.notify import domain, rendering, schemas
from tests.unit.notify import payloads
from tests.unit.notify.payloads import PORTAL_URL

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
RECIPIENT = domain.Recipient(
    email="ada@acme.test", name="Ada Lovelace", company_name="Acme Engineering", customer_id="C7"
)


def _events() -> dict[str, dict]:
    return {
        "company_created": payloads.company_created("ada@acme.test"),
        "company_invited": payloads.company_invited("ada@acme.test"),
        "password_reset_requested": payloads.password_reset_requested("ada@acme.test"),
        "password_changed": payloads.password_changed("ada@acme.test"),
        **payloads.licensing_events("C7"),
        **payloads.billing_events("C7"),
        **payloads.user_events(),
    }


def _data(kind: str, payload: dict) -> dict:
    """The event as the delivery worker renders it: with the link auth made at send time."""
    data = schemas.load_event(kind, payload)
    request_id = domain.link_request(kind, data)
    if request_id is not None:
        data = domain.with_link(kind, data, payloads.link_for(request_id), data["expires_at"])
    return data


def _render(kind: str, payload: dict, recipient: domain.Recipient = RECIPIENT) -> tuple[str, str]:
    return rendering.render(kind, _data(kind, payload), recipient, PORTAL_URL)


@pytest.mark.parametrize("kind", sorted(domain.EVENT_SOURCES))
def test_every_email_renders_text_and_html(kind: str) -> None:
    payload = _events()[kind]
    text, html = _render(kind, payload)
    for body in (text, html):
        assert "Ada Lovelace" in body
        assert "License Portal" in body
        assert "The License Portal team" in body
        assert "{{" not in body and "{%" not in body
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert "<html" not in text
    # the subject is the HTML title too
    subject = domain.subject(kind, schemas.load_event(kind, payload))
    assert f"<title>{escape(subject)}</title>" in html


@pytest.mark.parametrize("kind", ["company_created", "company_invited", "password_reset_requested"])
def test_account_links_from_auth_are_in_both_bodies(kind: str) -> None:
    payload = _events()[kind]
    text, html = _render(kind, payload)
    link = payloads.link_for(payload["request_id"])
    assert link in text
    assert f'href="{link}"' in html


@pytest.mark.parametrize("kind", ["license_issued", "installation_activated", "license_expiring"])
def test_license_emails_link_to_the_license(kind: str) -> None:
    payload = _events()[kind]
    link = f"{PORTAL_URL}/licenses/{payload['license']['license_id']}"
    text, html = _render(kind, payload)
    assert link in text and f'href="{link}"' in html
    assert payload["license"]["license_id"] in text


def test_welcome_email_names_the_customer_id_and_the_link_lifetime() -> None:
    payload = payloads.company_created("ada@acme.test")
    text, html = _render("company_created", payload)
    for body in (text, html):
        assert payload["company"]["customer_id"] in body
        assert "valid for 7 days" in body
        assert "Welcome to License Portal" in body


def test_welcome_email_without_a_link_points_to_the_sign_in_page() -> None:
    payload = payloads.company_created("ada@acme.test", with_link=False)
    text, html = _render("company_created", payload)
    assert "reset-password" not in text and "reset-password" not in html
    assert f"Sign in at {PORTAL_URL}/" in text
    assert payload["company"]["customer_id"] in text


def test_reset_email_says_thirty_minutes_and_what_to_do_if_unasked() -> None:
    text, html = _render("password_reset_requested", payloads.password_reset_requested())
    for body in (text, html):
        assert "valid for 30 minutes" in body
        assert "If you did not ask for a password reset, you can safely ignore this email" in body


@pytest.mark.parametrize(
    ("how", "phrase"),
    [("reset", "using a password reset link"), ("change", "all other sessions")],
)
def test_password_changed_says_how_and_what_to_do(how: str, phrase: str) -> None:
    text, html = _render("password_changed", payloads.password_changed(how=how))
    for body in (text, html):
        assert phrase in body
        assert "If you did not" in body and "Forgot password" in body


def test_activation_email_names_the_machine() -> None:
    payload = payloads.installation_activated("C7", machine_name="DESIGN-PC-7")
    text, html = _render("installation_activated", payload)
    for body in (text, html):
        assert "DESIGN-PC-7" in body
        assert payload["installation"]["installation_id"] in body
        assert "deactivate the installation" in body


def test_expiry_and_extension_dates() -> None:
    text, _ = _render("license_extended", payloads.license_extended("C7"))
    assert "extended until Jan 31, 2028" in text and "Previously:  Jan 31, 2027" in text
    text, html = _render("license_expiring", payloads.license_expiring("C7", days_left=1))
    assert "expires tomorrow, on Jan 31, 2027" in text
    assert "expires tomorrow" in html


def test_a_perpetual_license_never_expires() -> None:
    text, html = _render("license_issued", payloads.license_issued("C7", expires_at=None))
    assert "never (perpetual license)" in text and "never (perpetual license)" in html


def test_html_escapes_everything_from_payloads() -> None:
    hostile = "<script>alert(1)</script>"
    payload = payloads.installation_activated("C7", machine_name=hostile)
    recipient = domain.Recipient("ada@acme.test", "Ada <b>", "Acme & <i>Sons</i>", "C7")
    text, html = _render("installation_activated", payload, recipient)
    assert hostile not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Ada &lt;b&gt;" in html and "Acme &amp; &lt;i&gt;Sons&lt;/i&gt;" in html
    # the text part is not HTML: it keeps the characters as they are
    assert hostile in text and "Acme & <i>Sons</i>" in text


def test_a_link_with_markup_characters_stays_one_attribute() -> None:
    payload = payloads.legacy_password_reset_requested()
    payload["reset_url"] = 'http://portal.test/reset-password#token=a"onmouseover="x&y'
    _, html = _render("password_reset_requested", payload)
    assert 'href="http://portal.test/reset-password#token=a&#34;onmouseover=&#34;x&amp;y"' in html


def test_dates_are_written_as_the_portal_writes_them() -> None:
    """The templates' `date` and `moment` are `common.timeutil`'s, the receipt page's too."""
    assert rendering._ENVIRONMENT.filters["date"] is human_date
    assert rendering._ENVIRONMENT.filters["moment"] is human_datetime
    template = rendering._ENVIRONMENT.from_string("{{ at | date }} / {{ at | moment }}")
    moment = datetime(2026, 3, 5, 7, 4, tzinfo=UTC)
    assert template.render(at=moment) == "Mar 5, 2026 / Mar 5, 2026, 07:04 UTC"


def test_compose_builds_a_multipart_message() -> None:
    payload = payloads.password_reset_requested("ada@acme.test")
    data = _data("password_reset_requested", payload)
    claim = domain.Claim(
        id=1,
        event_id=payload["event_id"],
        kind="password_reset_requested",
        subject=domain.subject("password_reset_requested", data),
        attempts=1,
        payload=payload,
        customer_id="C7",
    )
    message = rendering.compose(
        claim, data, RECIPIENT, "License Portal <portal@portal.test>", PORTAL_URL, NOW
    )
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "Reset your License Portal password"
    assert message["From"] == "License Portal <portal@portal.test>"
    assert message["To"].addresses[0].addr_spec == "ada@acme.test"
    assert message["To"].addresses[0].display_name == "Ada Lovelace"
    assert message["Message-ID"] == f"<{payload['event_id']}.password_reset_requested@portal.test>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] == "Sat, 28 Nov 2026 09:30:00 +0000"
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = payloads.link_for(payload["request_id"])
    assert link in plain and link in html


def test_a_contact_without_a_name_is_greeted_plainly() -> None:
    nameless = domain.Recipient("ops@acme.test", "", "Acme", "C7")
    text, html = _render("license_issued", payloads.license_issued("C7"), nameless)
    assert text.startswith("Hello,\n")
    assert ">Hello,</p>" in html


def test_a_saved_message_keeps_the_reset_link_whole_in_its_raw_text() -> None:
    """A new user opens the `.eml` under var/mail/ in an editor and copies the link."""
    payload = payloads.password_reset_requested("ada@acme.test")
    claim = domain.Claim(
        id=1,
        event_id=payload["event_id"],
        kind="password_reset_requested",
        subject="Reset your License Portal password",
        attempts=0,
        payload=payload,
        customer_id=None,
    )
    data = _data(claim.kind, payload)
    message = rendering.compose(claim, data, RECIPIENT, "portal@portal.test", PORTAL_URL, NOW)
    assert payloads.link_for(payload["request_id"]).encode() in message.as_bytes()


def test_a_feature_change_names_added_and_removed_modules() -> None:
    payload = payloads.license_features_changed("C7")
    text, html = _render("license_features_changed", payload)
    license_id = payload["license_id"]
    for body in (text, html):
        assert (
            f"Modules of license {license_id} for CAD Pro changed: added Steel design;"
            " removed Dynamic analysis." in body
        )
        assert "Your software sees the change at its next online check" in body
        assert f"{PORTAL_URL}/licenses/{license_id}" in body
    assert "Modules now: Steel design" in text
    # without the names of what was removed (an older licensing): the code stands in
    older = {**payload, "removed_features": [], "added": [], "features": []}
    text, html = _render("license_features_changed", older)
    assert f"Modules of license {license_id} for CAD Pro changed: removed dynamics." in text
    assert "Modules now: none" in text


def test_a_feature_change_that_changes_nothing_is_refused() -> None:
    payload = {**payloads.license_features_changed("C7"), "added": [], "removed": []}
    with pytest.raises(schemas.InvalidEvent):
        schemas.load_event("license_features_changed", payload)
