"""Emails from Jinja2 templates: a text and an HTML body per kind, in one MIME message.

Templates live in `templates/`: `<kind>.txt` and `<kind>.html`, extending `layout.txt` and
`layout.html`. Only `.html` templates are autoescaped; values come from other services and
from product software (machine names), so nothing in them is trusted as markup.

Money is shown one way, by `common.money.format_money` (`€2,450.00`, as the portal and the
receipts show it), from the integer minor units and currency of the event; days and moments
one way, by `common.timeutil.human_date` / `human_datetime` (`Dec 7, 2026`, `Dec 7, 2026,
09:00 UTC`, as the portal's receipt page writes them); products by their names
(`domain.product_label`), never by their codes.
"""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from common.money import format_money
from common.timeutil import human_date, human_datetime
from services.notify import domain

TEMPLATES = Path(__file__).parent / "templates"


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
    environment.filters["date"] = human_date
    environment.filters["moment"] = human_datetime
    environment.filters["product"] = domain.product_label
    environment.globals["money"] = format_money
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
    if "license_id" in data and kind in LICENSE_STATUS_KINDS:
        values["license_url"] = domain.license_url(portal_url, data["license_id"])
        values["product_label"] = domain.license_product(data)
    if kind == "license_features_changed":
        values["license_url"] = domain.license_url(portal_url, data["license_id"])
        values["product_label"] = domain.license_product(data)
        values.update(features_context(data))
    if kind == "seats_exhausted":
        values.update(seats_context(data, portal_url))
    if "days_left" in data:
        values["expires_phrase"] = domain.expires_in(data["days_left"])
    payment = data.get("payment")
    if payment is not None:
        values["payment_facts"] = payment_facts(payment, data.get("purchase"))
    recurring = data.get("recurring_payment")
    if recurring is not None:
        values["recurring_facts"] = recurring_facts(recurring)
        values["recurring_product"] = domain.product_label(recurring["product"], "your license")
    if kind == "payment_failed":
        due = data if data.get("amount") is not None else recurring
        values["amount_due"] = format_money(due["amount"], due["currency"])
        values["decline_reason"] = domain.decline_reason(data.get("reason"))
        values["customer_must_act"] = data.get("reason") in domain.CUSTOMER_MUST_ACT
    if kind in USER_KINDS:
        # the role the user has now: the invited role, or the new one
        role = data.get("new_role") or data["user"]["role"]
        values["role_label"] = domain.role_label(role)
        values["role_abilities"] = domain.role_abilities(role)
        values["old_role_label"] = (
            domain.role_label(data["old_role"]) if data.get("old_role") else ""
        )
        values["inviter"] = domain.inviter(data.get("invited_by"))
        values["acted_by"] = domain.acted_by(data.get("changed_by") or data.get("disabled_by"))
    # the notices users choose say so, and where to turn them off
    values["notice_setting"] = NOTICE_SETTINGS.get(domain.NOTICES.get(kind, ""), "")
    if kind == "payment_refunded":
        values["refund_facts"] = refund_facts(data)
        values["refunded_amount"] = format_money(data["amount"], data["currency"])
        values["refund_reason"] = domain.refund_reason(data["reason"])
    if kind in domain.DISPUTE_KINDS:
        values.update(dispute_context(data, portal_url))
    return values


LICENSE_STATUS_KINDS = frozenset({"license_suspended", "license_resumed"})
USER_KINDS = frozenset({"user_invited", "user_role_changed", "user_disabled"})
# notice -> its name in the portal's notification settings
NOTICE_SETTINGS = {
    "installation_activated": "New activations",
    "license_expiring": "Licenses expiring",
    "receipts": "Receipts",
    "payment_failed": "Failed payments",
    "seats_exhausted": "All seats of a floating license are in use",
}


def seats_context(data: dict[str, Any], portal_url: str) -> dict[str, Any]:
    """A `seats_exhausted` email's news, its holders as rows (machine, "until …" or
    "borrowed until …"), how many more hold one, and its links."""
    holders, more = domain.seat_holders(data["machines"])
    rows = [
        (
            holder["machine_name"],
            ("borrowed until " if holder["borrowed"] else "until ")
            + human_datetime(holder["expires_at"]),
        )
        for holder in holders
    ]
    return {
        "product_label": domain.product_label(data["product"], ""),
        "seats_news": domain.seats_in_use(
            data["seats"],
            domain.product_label(data["product"], domain.license_label(data["license_id"])),
        ),
        "holder_rows": rows,
        "more_holders": more,
        "license_url": domain.license_url(portal_url, data["license_id"]),
        "buy_url": domain.buy_url(portal_url),
    }


def features_context(data: dict[str, Any]) -> dict[str, Any]:
    """A feature change in names: `features_change` ("added Steel design; removed
    Dynamic analysis") and `feature_list`, what the license holds now ("" for none)."""
    known = (data["features"], data["added_features"], data["removed_features"])
    added = domain.feature_names(data["added"], *known)
    removed = domain.feature_names(data["removed"], *known)
    now = domain.feature_names([item["code"] for item in data["features"]], *known)
    return {
        "features_change": domain.features_change(added, removed),
        "feature_list": ", ".join(now),
    }


def license_facts(license_: dict[str, Any]) -> list[tuple[str, str]]:
    """The label/value rows every license email shows (the HTML twin of license_facts.txt)."""
    expires = license_["expires_at"]
    return [
        ("Product", license_["product"]["name"]),
        ("License ID", license_["license_id"]),
        ("Seats", str(license_["seats"])),
        ("Expires", human_date(expires) if expires else "never (perpetual license)"),
    ]


def _card(brand: str | None, last4: str | None) -> str | None:
    return f"{brand.title()} ending in {last4}" if brand and last4 else None


def _period(start: datetime | None, end: datetime | None) -> str | None:
    return f"{human_date(start)} to {human_date(end)}" if start and end else None


def payment_facts(
    payment: dict[str, Any], purchase: dict[str, Any] | None = None
) -> list[tuple[str, str]]:
    """The label/value rows of a receipt email: what its receipt page shows.

    The period is the receipt's own (`payment.period_*`); an event that does not carry it
    falls back to the purchase's.
    """
    rows = [
        ("Receipt", payment["receipt_number"]),
        ("Date", human_date(payment["paid_at"])),
        ("Item", payment["description"] or domain.product_label(payment["product"], "")),
        ("Amount", format_money(payment["amount"], payment["currency"])),
    ]
    period = _period(payment["period_start"], payment["period_end"])
    if period is None and purchase is not None:
        period = _period(purchase["period_start"], purchase["period_end"])
    if period is not None:
        rows.append(("Period", period))
    card = _card(payment["card_brand"], payment["card_last4"])
    if card is not None:
        rows.append(("Paid with", card))
    return [(label, value) for label, value in rows if value]


def recurring_facts(recurring: dict[str, Any]) -> list[tuple[str, str]]:
    """The label/value rows of an email about a recurring payment."""
    rows = [
        ("Product", domain.product_label(recurring["product"], "")),
        ("License ID", recurring["license_id"]),
        ("Amount", format_money(recurring["amount"], recurring["currency"])),
        ("Renews", f"every {recurring['interval']}"),
        ("Next charge", human_date(recurring["next_charge_at"])),
        ("Card", _card(recurring["card_brand"], recurring["card_last4"])),
    ]
    return [(label, value) for label, value in rows if value]


def refund_facts(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The label/value rows of a refund email."""
    rows = [
        ("Receipt", data["receipt_number"]),
        ("Item", data["description"] or domain.product_label(data["product"], "")),
        ("Paid on", human_date(data["paid_at"])),
        ("Refunded", format_money(data["amount"], data["currency"])),
        ("Refunded on", human_date(data["refunded_at"])),
        ("To the card", _card(data["card_brand"], data["card_last4"])),
    ]
    return [(label, value) for label, value in rows if value]


def dispute_context(data: dict[str, Any], portal_url: str) -> dict[str, Any]:
    """A dispute's email: what was bought (`disputed_item`, a name), the amount, its facts
    rows (the bank's reason in words), and the license's link when it names one."""
    item = domain.disputed_item(data)
    amount = format_money(data["amount"], data["currency"])
    rows = [
        ("Receipt", data["receipt_number"]),
        ("Item", item),
        ("Amount", amount),
        ("License ID", data["license_id"]),
        ("Reason", domain.dispute_reason(data["reason"])),
    ]
    license_id = data["license_id"]
    return {
        "disputed_item": item,
        "disputed_amount": amount,
        "dispute_won": data.get("status") == domain.DISPUTE_WON,
        "dispute_facts": [(label, value) for label, value in rows if value],
        "license_url": domain.license_url(portal_url, license_id) if license_id else "",
    }


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
    message["Message-ID"] = domain.message_id(claim.event_id, claim.kind, sender, claim.user_id)
    # RFC 3834: an automatic message; out-of-office replies should not answer it
    message["Auto-Submitted"] = "auto-generated"
    message["X-License-Portal-Kind"] = claim.kind
    # 8bit keeps links whole and readable in a saved .eml (quoted-printable would fold them)
    message.set_content(text, cte="8bit")
    message.add_alternative(html, subtype="html")
    return message
