"""Emails from Jinja2 templates: a text and an HTML body per kind, in one MIME message.

Templates live in `templates/`: `<kind>.txt` and `<kind>.html`, extending `layout.txt` and
`layout.html`. Only `.html` templates are autoescaped; values come from other services and
from product software (machine names), so nothing in them is trusted as markup.
"""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from common.timeutil import as_utc
from services.notify import domain

TEMPLATES = Path(__file__).parent / "templates"


def format_date(value: datetime | None) -> str:
    """`28 November 2026`, in UTC: the day the portal shows too."""
    if value is None:
        return ""
    value = as_utc(value)
    return f"{value.day} {value:%B %Y}"


def format_moment(value: datetime | None) -> str:
    """`28 November 2026, 09:27 UTC`."""
    if value is None:
        return ""
    value = as_utc(value)
    return f"{format_date(value)}, {value:%H:%M} UTC"


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        # a typo in a template must fail the render (and retry), not send a blank
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["date"] = format_date
    environment.filters["moment"] = format_moment
    return environment


_ENVIRONMENT = _environment()


def context(
    kind: str, data: dict[str, Any], recipient: domain.Recipient, portal_url: str
) -> dict[str, Any]:
    """What every template sees: the event's fields plus the recipient and the links."""
    values = dict(data)
    values.update(
        kind=kind,
        subject=domain.subject(kind, data),
        product_name=domain.PRODUCT_NAME,
        recipient=recipient,
        portal_url=portal_url,
        sign_in_url=domain.sign_in_url(portal_url),
    )
    license_ = data.get("license")
    if license_ is not None:
        values["license_url"] = domain.license_url(portal_url, license_["license_id"])
        values["license_facts"] = license_facts(license_)
    if "days_left" in data:
        values["expires_phrase"] = domain.expires_in(data["days_left"])
    payment = data.get("payment")
    if payment is not None:
        values["payment_facts"] = payment_facts(payment)
    return values


def license_facts(license_: dict[str, Any]) -> list[tuple[str, str]]:
    """The label/value rows every license email shows (the HTML twin of license_facts.txt)."""
    expires = license_["expires_at"]
    return [
        ("Product", license_["product"]["name"]),
        ("License ID", license_["license_id"]),
        ("Seats", str(license_["seats"])),
        ("Expires", format_date(expires) if expires else "never (perpetual license)"),
    ]


def payment_facts(payment: dict[str, Any]) -> list[tuple[str, str]]:
    """The label/value rows of a receipt email (the HTML twin of payment_facts.txt)."""
    amount = payment["amount_formatted"] or (
        f"{payment['currency']} {payment['amount']} (minor units)"
    )
    rows = [
        ("Receipt", payment["receipt_number"]),
        ("Date", format_date(payment["paid_at"])),
        ("Item", payment["description"]),
        ("Amount", amount),
    ]
    if payment["card_brand"]:
        rows.append(
            ("Paid with", f"{payment['card_brand'].title()} ending in {payment['card_last4']}")
        )
    return rows


def render(
    kind: str, data: dict[str, Any], recipient: domain.Recipient, portal_url: str
) -> tuple[str, str]:
    """The text and HTML bodies of the email for an event of `kind`."""
    text_name, html_name = domain.template_names(kind)
    values = context(kind, data, recipient, portal_url)
    text = _ENVIRONMENT.get_template(text_name).render(values)
    html = _ENVIRONMENT.get_template(html_name).render(values)
    return text, html


def compose(
    claim: domain.Claim,
    data: dict[str, Any],
    recipient: domain.Recipient,
    sender: str,
    portal_url: str,
    now: datetime,
) -> EmailMessage:
    """The complete message for a claimed delivery: headers, a text part and an HTML part."""
    text, html = render(claim.kind, data, recipient, portal_url)
    message = EmailMessage()
    message["Subject"] = claim.subject
    message["From"] = sender
    message["To"] = Address(
        display_name=domain.clean_header_text(recipient.name, limit=100),
        addr_spec=recipient.email,
    )
    message["Date"] = format_datetime(now)
    message["Message-ID"] = domain.message_id(claim.event_id, claim.kind, sender)
    # RFC 3834: an automatic message; out-of-office replies should not answer it
    message["Auto-Submitted"] = "auto-generated"
    message["X-License-Portal-Kind"] = claim.kind
    # 8bit keeps links whole and readable in a saved .eml (quoted-printable would fold them)
    message.set_content(text, cte="8bit")
    message.add_alternative(html, subtype="html")
    return message
