"""Email rules as plain Python: which email an event makes, subjects, retries and claims.

Who an email goes to: auth's events name their recipient (the user concerned, or the
company's contact for the events without a user); the preference notices (`NOTICES`) go to
every user who has that notice on, asked of auth (`notice_recipients`) when the email is
due: the event's own row is then *split* into one delivery per recipient (`user_id`), each
idempotent and retried on its own; every other email goes to the company's contact.

Delivery states: a row is `pending` until the worker claims it (`sending`, with a lease in
`next_attempt_at`), then `sent`, `failed` (never retried), or `pending` again with a
backed-off `next_attempt_at`. A `sending` row whose lease ran out is claimable again: its
worker died mid-send. `attempts` counts claims and doubles as a fencing token, so a worker
whose lease expired cannot overwrite the outcome of the worker that reclaimed the row.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any
from urllib.parse import quote

PRODUCT_NAME = "License Portal"

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
# a notice's own row once it was split into one delivery per recipient (maybe none)
DONE = "done"
RETRY = "retry"  # an outcome, not a stored status: the row goes back to pending
CLAIMABLE = (PENDING, SENDING)

DEFAULT_RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
# Longer than one SMTP conversation plus one auth lookup can take (see mailers.SMTP_TIMEOUT),
# so a slow send is not mistaken for a dead worker and sent twice.
DEFAULT_LEASE = timedelta(minutes=5)

MAX_ERROR_LENGTH = 500
MAX_SUBJECT_LENGTH = 200
REDACTED = "[redacted]"
# the field of the link that the email of a kind shows: auth's events name a password
# request, and the link (with a fresh token) is asked of auth when the email is sent
LINK_FIELDS = {
    "company_created": "set_password_url",
    "company_invited": "set_password_url",
    "password_reset_requested": "reset_url",
    "user_invited": "accept_url",
}
# payload keys whose values are credentials (links with single-use tokens): only events
# published before issue 11 carry them
SECRET_KEYS = frozenset(LINK_FIELDS.values())

# event type -> the service that publishes it; one email kind per event type
EVENT_SOURCES: dict[str, str] = {
    "company_created": "auth",
    "company_invited": "auth",
    "password_reset_requested": "auth",
    "password_changed": "auth",
    "user_invited": "auth",
    "user_role_changed": "auth",
    "user_disabled": "auth",
    "license_issued": "licensing",
    "license_extended": "licensing",
    "installation_activated": "licensing",
    "license_expiring": "licensing",
    "license_suspended": "licensing",
    "license_resumed": "licensing",
    "license_features_changed": "licensing",
    "seats_exhausted": "licensing",
    "payment_succeeded": "billing",
    "payment_failed": "billing",
    "payment_refunded": "billing",
    "recurring_payment_cancelled": "billing",
    "recurring_payment_resumed": "billing",
    "recurring_payment_card_changed": "billing",
    "offline_payment_recorded": "billing",
    "payment_disputed": "billing",
    "payment_dispute_closed": "billing",
}
# the kinds whose payload names the recipient; the others are looked up in auth at send time
RECIPIENT_IN_PAYLOAD = frozenset(kind for kind, src in EVENT_SOURCES.items() if src == "auth")

# email kind -> the notice (auth's notification preference) it is: these go to every active
# user who may receive the notice and has it on (`auth.notice_recipients`), not the contact
NOTICES: dict[str, str] = {
    "installation_activated": "installation_activated",
    "license_expiring": "license_expiring",
    "payment_succeeded": "receipts",
    "offline_payment_recorded": "receipts",
    "payment_refunded": "receipts",
    # a payment's dispute and its end: news of a receipt, to whoever gets the receipts
    "payment_disputed": "receipts",
    "payment_dispute_closed": "receipts",
    "payment_failed": "payment_failed",
    "seats_exhausted": "seats_exhausted",
}

# role -> how emails name it, and what it lets a user do (it completes "This role lets you
# …" and "As <role> you can …"; DESIGN §10)
ROLES: dict[str, tuple[str, str]] = {
    "owner": (
        "Owner",
        "do everything: view licenses and activation passwords, manage installations,"
        " payments and purchases, and manage the company's users and activity log",
    ),
    "license_admin": (
        "License admin",
        "view licenses and their activation passwords, manage installations (deactivate"
        " machines, activate offline) and rotate activation passwords",
    ),
    "billing": (
        "Billing",
        "view payments and receipts, manage recurring payments and buy or renew licenses",
    ),
    "viewer": (
        "Viewer",
        "view licenses, installations and their history, without activation passwords and"
        " without changing anything",
    ),
}
# where a notice's delivery keeps whom it goes to, beside the event in its payload
RECIPIENT_KEY = "notice_recipient"
STAFF = "staff"  # `invited_by`, `changed_by`, `disabled_by` when staff acted (portalctl)


@dataclass(frozen=True)
class Recipient:
    """Who an email goes to, and the company it is about."""

    email: str
    name: str
    company_name: str
    customer_id: str


@dataclass(frozen=True)
class Claim:
    """A delivery a worker has claimed: everything needed to send it and record the outcome."""

    id: int
    event_id: str
    kind: str
    subject: str
    attempts: int
    payload: dict[str, Any]
    customer_id: str | None
    # the user a notice's delivery goes to; "" for the event's own row
    user_id: str = ""
    source: str = ""
    # who it goes to, when the row knows it (a notice's delivery: recorded at the split)
    recipient: str | None = None

    @property
    def splits(self) -> bool:
        """Whether this is a notice's own row, to be split into one delivery per recipient."""
        return self.kind in NOTICES and not self.user_id


@dataclass(frozen=True)
class NoticeRecipient:
    """One user a notice goes to (`auth.notice_recipients`), with their company's name."""

    user_id: str
    email: str
    name: str
    company_name: str
    customer_id: str

    def to_dict(self) -> dict[str, str]:
        return {
            "user_id": self.user_id,
            "email": self.email,
            "name": self.name,
            "company_name": self.company_name,
            "customer_id": self.customer_id,
        }


@dataclass(frozen=True)
class DeliveryOptions:
    """The settings of the delivery worker (`dependencies.DeliverySettings` reads them)."""

    sender: str
    portal_url: str
    retry_base: timedelta = DEFAULT_RETRY_BASE
    lease: timedelta = DEFAULT_LEASE


@dataclass(frozen=True)
class DeliveryResult:
    """What became of one attempt: `sent`, `retry` (at `retry_at`) or `failed`."""

    status: str
    error: str | None = None
    retry_at: datetime | None = None
    recipient: str | None = None
    # the mail server or auth failed, not this message: the rest of the pass would fail too
    halts_pass: bool = False
    # a notice split (`DONE`): whom its deliveries go to, one each (maybe nobody), and the
    # ids of the rows recorded for them
    recipients: tuple[NoticeRecipient, ...] = ()
    deliveries: tuple[int, ...] = ()


# --- claims, leases and retries ----------------------------------------------------------


def is_due(status: str, next_attempt_at: datetime | None, now: datetime) -> bool:
    """Whether a worker may claim the row now (pending and due, or its lease ran out)."""
    return status in CLAIMABLE and next_attempt_at is not None and next_attempt_at <= now


def lease_until(now: datetime, lease: timedelta = DEFAULT_LEASE) -> datetime:
    """When a claim taken `now` may be taken over by another worker."""
    return now + lease


def retry_delay(
    attempts: int, base: timedelta = DEFAULT_RETRY_BASE, cap: timedelta = RETRY_CAP
) -> timedelta:
    """Exponential backoff after the `attempts`-th failed attempt: base, 2 base, 4 base, ... cap."""
    if attempts < 1:
        return timedelta(0)
    # in float seconds: a timedelta overflows long before the cap is reached with a big base
    seconds = base.total_seconds() * 2.0 ** min(attempts - 1, 64)
    return timedelta(seconds=min(seconds, cap.total_seconds()))


def retry_at(attempts: int, now: datetime, base: timedelta = DEFAULT_RETRY_BASE) -> datetime:
    return now + retry_delay(attempts, base)


def retry(
    attempts: int,
    now: datetime,
    error: str,
    base: timedelta = DEFAULT_RETRY_BASE,
    recipient: str | None = None,
    halts_pass: bool = False,
) -> DeliveryResult:
    when = retry_at(attempts, now, base)
    return DeliveryResult(RETRY, clean_error(error), when, recipient, halts_pass)


def fail(error: str, recipient: str | None = None) -> DeliveryResult:
    return DeliveryResult(FAILED, clean_error(error), None, recipient)


def sent(recipient: str) -> DeliveryResult:
    return DeliveryResult(SENT, None, None, recipient)


def split(recipients: tuple[NoticeRecipient, ...]) -> DeliveryResult:
    """A notice handed on: one delivery per recipient is recorded with this outcome."""
    return DeliveryResult(DONE, recipients=recipients)


def clean_error(error: str) -> str:
    """One line, bounded: `last_error` is for a human scanning a table."""
    return " ".join(str(error).split())[:MAX_ERROR_LENGTH]


# --- payloads ----------------------------------------------------------------------------


def redact(payload: Any) -> Any:
    """A copy of `payload` with the values of credential-bearing keys replaced, at any depth."""
    if isinstance(payload, dict):
        return {
            key: REDACTED if key in SECRET_KEYS and value is not None else redact(value)
            for key, value in payload.items()
        }
    if isinstance(payload, list):
        return [redact(item) for item in payload]
    return payload


def link_request(kind: str, data: dict[str, Any]) -> str | None:
    """The password request whose link the email of this event shows, if any."""
    return data.get("request_id") if kind in LINK_FIELDS else None


def with_link(kind: str, data: dict[str, Any], url: str, expires_at: datetime) -> dict[str, Any]:
    """A copy of the event's data with the link auth made for it (rendered, never stored)."""
    return {**data, LINK_FIELDS[kind]: url, "expires_at": expires_at}


def link_expired(kind: str, data: dict[str, Any], now: datetime) -> bool:
    """A reset email whose link has already expired is pointless: it is failed, not sent."""
    return kind == "password_reset_requested" and data["expires_at"] <= now


def recipient_from_payload(data: dict[str, Any]) -> Recipient:
    """The user an auth event is about (`user`), else the company's contact (older events)."""
    company = data["company"]
    user = data.get("user")
    if user:
        return Recipient(
            email=user["email"].strip().lower(),
            name=user["name"],
            company_name=company["name"],
            customer_id=company["customer_id"],
        )
    return Recipient(
        email=company["contact_email"].strip().lower(),
        name=company["contact_name"],
        company_name=company["name"],
        customer_id=company["customer_id"],
    )


def recipient_from_company(company: dict[str, Any]) -> Recipient:
    """The recipient from auth's `get_company` answer; `ValueError` if it has no email."""
    email = str(company.get("contact_email") or "").strip().lower()
    if "@" not in email:
        raise ValueError("the company has no usable contact email")
    return Recipient(
        email=email,
        name=str(company.get("contact_name") or company.get("name") or ""),
        company_name=str(company.get("name") or ""),
        customer_id=str(company.get("customer_id") or ""),
    )


def notice_recipients(
    users: list[dict[str, Any]], company: dict[str, Any]
) -> tuple[NoticeRecipient, ...]:
    """auth's `notice_recipients` answer as recipients, once per user and per address;
    `ValueError` if an entry has no user ID or no usable email (auth's contract broken)."""
    recipients: dict[str, NoticeRecipient] = {}
    seen: set[str] = set()
    for user in users:
        user_id = str(user.get("user_id") or "").strip()
        email = str(user.get("email") or "").strip().lower()
        if not user_id or "@" not in email:
            raise ValueError("auth named a notice recipient without a user ID or an email")
        if user_id in recipients or email in seen:
            continue
        seen.add(email)
        recipients[user_id] = NoticeRecipient(
            user_id=user_id,
            email=email,
            name=str(user.get("name") or ""),
            company_name=str(company.get("name") or ""),
            customer_id=str(company.get("customer_id") or ""),
        )
    return tuple(recipients.values())


def recipient_of_notice(recipient: dict[str, Any]) -> Recipient:
    """The recipient a notice's delivery recorded at the split (`NoticeRecipient.to_dict`)."""
    return Recipient(
        email=recipient["email"],
        name=recipient["name"],
        company_name=recipient["company_name"],
        customer_id=recipient["customer_id"],
    )


def customer_id_of(kind: str, data: dict[str, Any]) -> str:
    if kind in RECIPIENT_IN_PAYLOAD:
        return data["company"]["customer_id"]
    return data["customer_id"]


# --- what the email says -----------------------------------------------------------------


def clean_header_text(value: str, limit: int = MAX_SUBJECT_LENGTH) -> str:
    """Text safe for a header: no line breaks or control characters (no header injection)."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(value))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def product_name_of(product: dict[str, Any] | None) -> str | None:
    """The name of a product as an event carries it, or None: never its code (a producer
    that did not know the name may have put the code in its place).

    >>> product_name_of({"code": "cad-pro", "name": "CAD Pro"}), product_name_of({"code": "cad-pro",
    ...     "name": "cad-pro"})
    ('CAD Pro', None)
    """
    if not product:
        return None
    name = str(product.get("name") or "").strip()
    return name if name and name != product.get("code") else None


def product_label(product: dict[str, Any] | None, fallback: str = "your software") -> str:
    """What an email calls a product: its name; `fallback` when the event has none (a
    person never reads a product code).

    >>> product_label({"code": "cad-pro", "name": "CAD Pro"}), product_label({"code": "cad-pro"})
    ('CAD Pro', 'your software')
    """
    return product_name_of(product) or fallback


def license_label(license_id: str | None) -> str:
    """A license by its ID, for a sentence that has no product name: `"license L-7KQX-M2PD"`,
    or `"your license"`."""
    return f"license {license_id}" if license_id else "your license"


# the kinds about a recurring payment (`recurring_payment` in the payload)
RECURRING_KINDS = frozenset(
    {
        "payment_failed",
        "recurring_payment_cancelled",
        "recurring_payment_resumed",
        "recurring_payment_card_changed",
    }
)

# why billing refunded a payment (licensing's error codes), as the customer reads it
REFUND_REASONS = {
    "product_not_found": "the product you paid for is no longer available",
    "product_archived": "the product you paid for is no longer sold",
    "license_not_found": "the license to renew was not found in your account",
    "license_suspended": "the license to renew is suspended",
    # a refund made in the payment provider's dashboard (billing's webhooks)
    "refunded_by_provider": "our billing team made this refund",
}
REFUND_REASON_DEFAULT = "we could not deliver what you paid for"


def refund_reason(code: str | None) -> str:
    """`refund_reason("product_archived")` → `"the product you paid for is no longer sold"`;
    an unknown code gets the general reason, never the code itself."""
    return REFUND_REASONS.get(code or "", REFUND_REASON_DEFAULT)


# why an automatic renewal could not be charged (billing's decline code), as the customer
# reads it; the codes in CUSTOMER_MUST_ACT are not tried again: the customer has to act
DECLINE_REASONS = {
    "card_declined": "the card was declined",
    "insufficient_funds": "the card has insufficient funds",
    "expired_card": "the card has expired",
    "authentication_required": "your bank wants you to confirm this payment yourself, which "
    "an automatic renewal cannot do",
    "payment_method_unavailable": "the card saved for it can no longer be charged by our "
    "payment provider",
}
DECLINE_REASON_DEFAULT = "the card was declined"
CUSTOMER_MUST_ACT = frozenset({"authentication_required", "payment_method_unavailable"})


def decline_reason(code: str | None) -> str:
    """`decline_reason("insufficient_funds")` → `"the card has insufficient funds"`; an
    unknown code reads as a plain decline, never as the code."""
    return DECLINE_REASONS.get(code or "", DECLINE_REASON_DEFAULT)


# the kinds about a payment disputed at the customer's bank (a chargeback)
DISPUTE_KINDS = frozenset({"payment_disputed", "payment_dispute_closed"})
DISPUTE_WON, DISPUTE_LOST = "won", "lost"

# why the bank says the payment is disputed (Stripe's dispute reasons), as the customer reads it
DISPUTE_REASONS = {
    "bank_cannot_process": "Your bank could not process the payment",
    "credit_not_processed": "A refund or credit was expected and not received",
    "customer_initiated": "The card holder asked for the payment back",
    "debit_not_authorized": "The payment was not authorised",
    "duplicate": "The payment was charged twice",
    "fraudulent": "The card holder does not recognise the payment",
    "incorrect_account_details": "The account details were wrong",
    "insufficient_funds": "The account did not have enough funds",
    "product_not_received": "What was paid for was not received",
    "product_unacceptable": "What was paid for was not acceptable",
    "subscription_canceled": "The automatic renewal had been cancelled",
    "unrecognized": "The payment was not recognised",
}
DISPUTE_REASON_DEFAULT = "Not stated by the bank"


def dispute_reason(code: str | None) -> str:
    """`dispute_reason("duplicate")` → `"The payment was charged twice"`; an unknown code
    (or `general`) gets the general reason, never the code itself."""
    return DISPUTE_REASONS.get(code or "", DISPUTE_REASON_DEFAULT)


def disputed_item(data: dict[str, Any]) -> str:
    """What a dispute's email calls the purchase: the product's name, never its code.

    >>> disputed_item({"item": "CAD Pro", "product": None})
    'CAD Pro'
    >>> disputed_item({"item": None, "product": {"code": "cad-pro"}})
    'your purchase'
    """
    product = data.get("product") or {}
    item = data.get("item")
    if item and item != product.get("code"):
        return item
    return product_name_of(product) or "your purchase"


def dispute_subject(kind: str, data: dict[str, Any]) -> str:
    """The news of a dispute's email, by its receipt.

    >>> dispute_subject("payment_disputed", {"receipt_number": "R-2026-000123"})
    'Your payment R-2026-000123 is disputed at your bank'
    >>> dispute_subject("payment_dispute_closed", {"receipt_number": "R-1", "status": "won"})
    'Dispute of payment R-1 closed: the payment stands'
    """
    receipt = data["receipt_number"]
    if kind == "payment_disputed":
        return f"Your payment {receipt} is disputed at your bank"
    if data["status"] == DISPUTE_WON:
        return f"Dispute of payment {receipt} closed: the payment stands"
    return f"Dispute of payment {receipt} closed: the payment was reversed"


def license_product(data: dict[str, Any]) -> str:
    """The product of a suspended or resumed license's event, or "" when it names none."""
    license_ = data.get("license") or {}
    return product_label(data.get("product") or license_.get("product"), "")


def feature_names(codes: list[str], *known: list[dict[str, Any]]) -> list[str]:
    """What an email calls features: their names from `known` (`[{code, name}]` lists),
    the code of one no list names (a removed feature licensing no longer names).

    >>> feature_names(["dynamics", "steel"], [{"code": "steel", "name": "Steel design"}])
    ['dynamics', 'Steel design']
    """
    names = {item["code"]: item.get("name") for items in known for item in items}
    return [names.get(code) or code for code in codes]


def features_change(added: list[str], removed: list[str]) -> str:
    """The change in words, names already looked up (`feature_names`).

    >>> features_change(["Steel design"], ["Dynamic analysis"])
    'added Steel design; removed Dynamic analysis'
    >>> features_change([], ["Wind loads", "Dynamic analysis"])
    'removed Wind loads, Dynamic analysis'
    """
    parts = []
    if added:
        parts.append("added " + ", ".join(added))
    if removed:
        parts.append("removed " + ", ".join(removed))
    return "; ".join(parts) or "no change"


def subject(kind: str, data: dict[str, Any]) -> str:
    """The subject line of the email an event of `kind` makes."""
    if kind == "company_created":
        line = f"Welcome to {PRODUCT_NAME}"
    elif kind == "company_invited":
        line = f"Set your {PRODUCT_NAME} password"
    elif kind == "password_reset_requested":
        line = f"Reset your {PRODUCT_NAME} password"
    elif kind == "password_changed":
        line = f"Your {PRODUCT_NAME} password was changed"
    elif kind == "user_invited":
        company = data["company"]["name"]
        line = f"{inviter(data['invited_by'])} invited you to {company}'s license portal"
    elif kind == "user_role_changed":
        line = f"Your role at {data['company']['name']} is now {role_label(data['new_role'])}"
    elif kind == "user_disabled":
        line = f"Your access to {data['company']['name']}'s license portal was disabled"
    elif kind in ("payment_succeeded", "offline_payment_recorded"):
        line = f"Your receipt {data['payment']['receipt_number']}"
    elif kind == "payment_refunded":
        line = f"We refunded your payment {data['receipt_number']}"
    elif kind in DISPUTE_KINDS:
        line = dispute_subject(kind, data)
    elif kind in ("license_suspended", "license_resumed"):
        product = license_product(data)
        state = "is suspended" if kind == "license_suspended" else "is active again"
        line = f"Your {product + ' ' if product else ''}license {data['license_id']} {state}"
    elif kind == "license_features_changed":
        product = license_product(data)
        named = f"{product} license" if product else "license"
        line = f"Modules of your {named} {data['license_id']} changed"
    elif kind == "seats_exhausted":
        named = product_label(data["product"], license_label(data["license_id"]))
        line = seats_in_use(data["seats"], named)
    elif kind in RECURRING_KINDS:
        line = recurring_subject(kind, data)
    else:
        product = data["license"]["product"]["name"]
        if kind == "license_issued":
            line = f"Your new {product} license is ready"
        elif kind == "license_extended":
            line = f"Your {product} license has been extended"
        elif kind == "installation_activated":
            line = f"New activation on {data['installation']['machine_name']}"
        elif kind == "license_expiring":
            line = f"Your {product} license {expires_in(data['days_left'])}"
        else:
            raise ValueError(f"no email for events of type {kind!r}")
    return clean_header_text(line)


def recurring_subject(kind: str, data: dict[str, Any]) -> str:
    """The subject of an email about a recurring payment: by the product's name, else by
    the license (never a product code).

    >>> recurring = {"product": {"code": "cadpro"}, "license_id": "L-7KQX-M2PD"}
    >>> recurring_subject("recurring_payment_cancelled", {"recurring_payment": recurring})
    'Automatic renewal of license L-7KQX-M2PD cancelled'
    """
    recurring = data["recurring_payment"]
    name = product_name_of(recurring["product"])
    thing = name or license_label(recurring.get("license_id"))
    if kind == "payment_failed":
        payment = f"{name} renewal payment" if name else f"renewal payment for {thing}"
        if data["next_retry_at"] is None:
            return f"Action needed: the {payment} failed"
        return f"Your {payment} did not go through"
    if kind == "recurring_payment_cancelled":
        return f"Automatic renewal of {thing} cancelled"
    if kind == "recurring_payment_resumed":
        return f"Automatic renewal of {thing} resumed"
    return f"New card for the automatic renewal of {thing}"


def seats_in_use(seats: int, product: str) -> str:
    """The news of a `seats_exhausted` email: every seat of a floating license is taken.

    >>> seats_in_use(10, "CAD Pro"), seats_in_use(1, "CAD Pro")
    ('All 10 seats of CAD Pro are in use', 'The only seat of CAD Pro is in use')
    """
    if seats == 1:
        return f"The only seat of {product} is in use"
    return f"All {seats} seats of {product} are in use"


# a `seats_exhausted` email lists this many holders; a license of hundreds of seats says
# how many more there are instead of a page of machine names
MAX_HOLDERS_LISTED = 50


def seat_holders(
    machines: list[dict[str, Any]], limit: int = MAX_HOLDERS_LISTED
) -> tuple[list[dict[str, Any]], int]:
    """Who holds the seats, soonest free first (a borrowed seat is held to its end, a
    lease until its expiry unless its software keeps it alive), at most `limit` of them,
    and how many more there are.

    >>> holders, more = seat_holders(
    ...     [{"machine_name": "B", "expires_at": 2}, {"machine_name": "A", "expires_at": 1}], 1)
    >>> [holder["machine_name"] for holder in holders], more
    (['A'], 1)
    """
    ordered = sorted(machines, key=lambda item: (item["expires_at"], item["machine_name"]))
    return ordered[:limit], max(0, len(ordered) - limit)


def role_label(role: str) -> str:
    """`role_label("license_admin")` → `"License admin"`; an unknown role as it came."""
    return ROLES.get(role, (role, ""))[0]


def role_abilities(role: str) -> str:
    """What a role lets a user do, as the role-change email says it."""
    return ROLES.get(role, ("", "what your company's owners allow"))[1]


def inviter(invited_by: str | None) -> str:
    """Who an invitation names: the inviting user's email, or the portal's team for staff.

    >>> inviter("ada@acme.test"), inviter("staff")
    ('ada@acme.test', 'The License Portal team')
    """
    if not invited_by or invited_by == STAFF:
        return f"The {PRODUCT_NAME} team"
    return invited_by


def acted_by(actor: str | None) -> str:
    """Who changed a user's role or access: an owner (with their email) or staff.

    >>> acted_by("ada@acme.test"), acted_by("staff")
    ('an owner of the account (ada@acme.test)', "our support team, on your company's behalf")
    """
    if not actor or actor == STAFF:
        return "our support team, on your company's behalf"
    return f"an owner of the account ({actor})"


def expires_in(days_left: int) -> str:
    if days_left <= 0:
        return "expires today"
    if days_left == 1:
        return "expires tomorrow"
    return f"expires in {days_left} days"


def template_names(kind: str) -> tuple[str, str]:
    """The text and HTML templates of `kind`."""
    if kind not in EVENT_SOURCES:
        raise ValueError(f"no email for events of type {kind!r}")
    return f"{kind}.txt", f"{kind}.html"


def sign_in_url(portal_url: str) -> str:
    return f"{portal_url}/"


def license_url(portal_url: str, license_id: str) -> str:
    return f"{portal_url}/licenses/{quote(license_id, safe='')}"


def buy_url(portal_url: str) -> str:
    """The portal's page to buy a license (or renew one)."""
    return f"{portal_url}/buy"


_MESSAGE_ID_PART = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def message_id(event_id: str, kind: str, sender: str, user_id: str = "") -> str:
    """A Message-ID stable across retries, so a mail system can drop a duplicate send; one
    per recipient of a notice (`user_id`), so no two recipients' emails look like one."""
    local = event_id if _MESSAGE_ID_PART.match(event_id) else _digest(event_id)
    if user_id:
        local += "." + (user_id if _MESSAGE_ID_PART.match(user_id) else _digest(user_id))
    _, at, domain = parseaddr(sender)[1].rpartition("@")
    if not (at and _MESSAGE_ID_PART.match(domain)):
        domain = "license-portal.invalid"
    return f"<{local}.{kind}@{domain}>"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]
