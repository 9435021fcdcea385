"""Use cases of the mail queue: record an event as a pending email, deliver due emails, list.

Recording and sending are separate on purpose. The event handler only writes a row (in its
own transaction, idempotent by `event_id`) and lets the message be acked; the delivery
worker claims due rows, renders and sends outside any transaction, and records the outcome.
A crash between the two loses nothing: the row is still due, or its lease runs out.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from marshmallow import ValidationError

from common.clock import Now
from common.context import REQUEST_ID, current_request_id, set_request_id
from common.errors import PortalError
from common.parking import ERROR_MAX, event_id_of, parked_row
from services.notify import domain, rendering, schemas, views
from services.notify.exceptions import DeliveryError, InvalidEvent, ValuesRefused
from services.notify.mailers import Mailer
from services.notify.repository import NotifyRepository, Store

log = logging.getLogger(__name__)

# auth's error codes (part of its public contract): an unknown customer ID; a password
# request that is unknown, expired or closed (its password set meanwhile)
COMPANY_NOT_FOUND = "company_not_found"
INVALID_TOKEN = "invalid_token"  # noqa: S105 (an error code, not a secret)
NOT_STORABLE = " (payload not storable)"


class CompanyDirectory(Protocol):
    """What notify asks auth over RPC (a fake in unit tests): who a company's emails go to
    (`get_company`; `notice_recipients` for the notices users choose), and the set-up,
    reset or invitation link of a password request (`password_link`), asked for at send
    time so that no link is ever stored."""

    def get_company(self, customer_id: str) -> dict[str, Any]: ...

    def notice_recipients(self, customer_id: str, notice: str) -> list[dict[str, Any]]: ...

    def password_link(self, request_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Courier:
    """What delivering needs: the queue's store, the mailer, auth, the settings, a clock."""

    store: Store
    mailer: Mailer
    directory: CompanyDirectory
    options: domain.DeliveryOptions
    clock: Now


@dataclass(frozen=True)
class Recorded:
    """What `record` did: a new delivery (`delivery_id`), a duplicate (neither), or parked."""

    delivery_id: int | None = None
    parked: bool = False

    @property
    def duplicate(self) -> bool:
        return self.delivery_id is None and not self.parked


# --- recording ---------------------------------------------------------------------------


def accept(courier: Courier, source: str, kind: str, payload: Any) -> Recorded:
    """Record the email an event asks for, then try to send it at once.

    Only a failure to record leaves this function (the event goes back to the queue). Once
    the row is committed the event may be acked whatever happens: sending at once just saves
    the wait for the next timer tick, and the timer retries whatever this send did not finish.
    """
    recorded = record(courier.store, source, kind, payload, courier.clock.now())
    if recorded.delivery_id is not None:
        try:
            deliver_due(courier, only_id=recorded.delivery_id)
        except Exception:
            log.exception("immediate delivery of %s failed; the timer will retry", kind)
    return recorded


def record(store: Store, source: str, kind: str, payload: Any, now: datetime) -> Recorded:
    """Record the email an event asks for, once per `event_id`; park a payload that is unusable.

    Only database errors leave this function: they mean "try the message again later".
    """
    try:
        row = prepare(kind, payload)
    except Exception as exc:
        return _park(store, source, kind, payload, describe_invalid(exc), now)
    try:
        with store.repository() as repo:
            delivery_id = repo.add_delivery(source=source, now=now, **row)
    except ValuesRefused as exc:
        return _park(store, source, kind, payload, f"The database refused the payload: {exc}", now)
    if delivery_id is None:
        log.info("event %s (%s) was recorded before; nothing to do", row["event_id"], kind)
    return Recorded(delivery_id=delivery_id)


def prepare(kind: str, payload: Any) -> dict[str, Any]:
    """The delivery row of a valid event; `InvalidEvent` if no email can be made of it."""
    data = schemas.load_event(kind, payload)
    recipient = None
    if kind in domain.RECIPIENT_IN_PAYLOAD:
        recipient = domain.recipient_from_payload(data).email
    return {
        "event_id": data["event_id"],
        "kind": kind,
        "customer_id": domain.customer_id_of(kind, data),
        "recipient": recipient,
        "subject": domain.subject(kind, data),
        # the event as it came: the email is rendered from it at send time
        "payload": payload,
    }


def _park(
    store: Store, source: str, kind: str, payload: Any, error: str, now: datetime
) -> Recorded:
    try:
        with store.repository() as repo:
            # the reset links in a payload are credentials: they are not kept
            repo.park(parked_row(source, kind, domain.redact(payload), error, now))
    except ValuesRefused:
        # even the raw payload cannot be stored: keep the reason, drop the payload
        reason = error[: ERROR_MAX - len(NOT_STORABLE)] + NOT_STORABLE
        with store.repository() as repo:
            repo.park(parked_row(source, kind, None, reason, now))
    log.warning("parked a %s.%s event (event_id %s): %s", source, kind, event_id_of(payload), error)
    return Recorded(parked=True)


def describe_invalid(exc: Exception) -> str:
    """Why a payload was parked, naming the fields (marshmallow never echoes their values)."""
    if isinstance(exc, InvalidEvent):
        fields = exc.details.get("fields")
        text = exc.message
        if fields:
            text = f"{text} {'; '.join(_flatten(fields))}"
    else:
        text = f"Cannot read the payload: {type(exc).__name__}"
    return text[:ERROR_MAX]


def _flatten(messages: Any, prefix: str = "") -> list[str]:
    if isinstance(messages, dict):
        lines = []
        for key, value in messages.items():
            lines.extend(_flatten(value, f"{prefix}{key}."))
        return lines
    if isinstance(messages, list) and all(isinstance(item, str) for item in messages):
        return [f"{prefix.rstrip('.') or 'payload'}: {' '.join(messages)}"]
    return [f"{prefix.rstrip('.') or 'payload'}: {messages}"]


# --- delivering --------------------------------------------------------------------------


def deliver_due(
    courier: Courier, *, only_id: int | None = None, limit: int = 100
) -> list[domain.DeliveryResult]:
    """Claim and deliver due emails one at a time, up to `limit` (or just `only_id`, and
    the deliveries a notice's row was split into).

    One claim per transaction keeps every lease as long as one send, not a batch. The pass
    stops at the first failure of the mail server or of auth: the rest would most likely
    fail the same way (each after a timeout), and the next pass comes soon. The recipients
    of a split notice are tried each in turn: one refused address stops nobody else's email.
    """
    results: list[domain.DeliveryResult] = []
    targets = [only_id] if only_id is not None else []
    while len(results) < limit:
        if only_id is not None and not targets:
            break
        target = targets.pop(0) if targets else None
        with courier.store.repository() as repo:
            claim = repo.claim_next(courier.clock.now(), courier.options.lease, target)
        if claim is None:
            if target is not None:
                continue  # another worker has it, or it is not due
            break
        result = deliver(courier, claim)
        results.append(result)
        if only_id is not None:
            targets.extend(result.deliveries)
        elif result.halts_pass:
            break
    return results


def deliver(courier: Courier, claim: domain.Claim) -> domain.DeliveryResult:
    """Attempt one claimed delivery and record the outcome (sent, retry later, or failed);
    a notice's own row is split instead, into one delivery per recipient (`done`).

    Its log lines carry the request ID of the event that asked for the email, whoever sends
    it (the event's handler, or the timer for a retry or a notice's recipients)."""
    worker_request_id = current_request_id()
    event_request_id = claim.payload.get(REQUEST_ID) if isinstance(claim.payload, dict) else None
    set_request_id(event_request_id or worker_request_id)
    try:
        return _deliver(courier, claim)
    finally:
        set_request_id(worker_request_id)


def _deliver(courier: Courier, claim: domain.Claim) -> domain.DeliveryResult:
    now = courier.clock.now()
    try:
        result = split(courier, claim, now) if claim.splits else attempt(courier, claim, now)
    except Exception as exc:
        log.exception("delivery %s (%s): unexpected error", claim.id, claim.kind)
        result = domain.retry(
            claim.attempts,
            now,
            f"Unexpected error: {type(exc).__name__}",
            courier.options.retry_base,
        )
    with courier.store.repository() as repo:
        finished_at = courier.clock.now()
        recorded = repo.finish(claim, result, finished_at)
        if recorded and result.status == domain.DONE:
            # in the transaction that closes the notice's row: both happen, or neither
            added = repo.add_notice_deliveries(claim, result.recipients, finished_at)
            result = dataclasses.replace(result, deliveries=tuple(added))
    _log_result(claim, result, recorded)
    return result


def split(courier: Courier, claim: domain.Claim, now: datetime) -> domain.DeliveryResult:
    """Whom a notice goes to: the users auth names for it now (`notice_recipients`).

    Asked when the email is due, not when the event came: a user who turned the notice off
    meanwhile gets nothing. Nobody is a fine answer: the notice is done, nothing is sent.
    """
    options = courier.options
    notice = domain.NOTICES[claim.kind]
    try:
        company = courier.directory.get_company(claim.customer_id)
        answer = courier.directory.notice_recipients(claim.customer_id, notice)
    except PortalError as exc:
        if exc.code == COMPANY_NOT_FOUND:
            return domain.fail(
                f"No company with customer ID {claim.customer_id} ({COMPANY_NOT_FOUND}):"
                " there is nobody to send this email to."
            )
        return domain.retry(
            claim.attempts,
            now,
            f"Cannot look up the recipients: auth answered {exc.code}.",
            options.retry_base,
            halts_pass=True,
        )
    try:
        users = schemas.NoticeRecipient(many=True).load(answer)
        recipients = domain.notice_recipients(users, company)
    except (ValidationError, ValueError, TypeError):
        return domain.retry(
            claim.attempts,
            now,
            f"auth's notice_recipients answer for {notice} is unusable.",
            options.retry_base,
        )
    return domain.split(recipients)


def attempt(courier: Courier, claim: domain.Claim, now: datetime) -> domain.DeliveryResult:
    """Render and send one claimed email; what became of it."""
    options = courier.options
    data = schemas.load_event(claim.kind, claim.payload)  # it was valid when recorded
    if domain.link_expired(claim.kind, data, now):
        return domain.fail("The reset link expired before the email could be sent.")
    try:
        recipient = resolve_recipient(claim, data, courier.directory)
    except PortalError as exc:
        if exc.code == COMPANY_NOT_FOUND:
            return domain.fail(
                f"No company with customer ID {claim.customer_id} ({COMPANY_NOT_FOUND}):"
                " there is nobody to send this email to."
            )
        # auth down or failing: the company is probably fine, so try again later
        return domain.retry(
            claim.attempts,
            now,
            f"Cannot look up the recipient: auth answered {exc.code}.",
            options.retry_base,
            halts_pass=True,
        )
    except ValueError as exc:
        return domain.retry(
            claim.attempts, now, f"Cannot use the recipient: {exc}.", options.retry_base
        )
    request_id = domain.link_request(claim.kind, data)
    if request_id is not None:
        try:
            link = schemas.PasswordLink().load(courier.directory.password_link(request_id))
        except PortalError as exc:
            if exc.code == INVALID_TOKEN:
                return domain.fail(
                    "The link was used, replaced or expired before the email could be sent"
                    f" ({INVALID_TOKEN})."
                )
            return domain.retry(
                claim.attempts,
                now,
                f"Cannot get the link: auth answered {exc.code}.",
                options.retry_base,
                halts_pass=True,
            )
        # only in this message: the link is never written to the deliveries table
        data = domain.with_link(claim.kind, data, link["url"], link["expires_at"])
    message = rendering.compose(claim, data, recipient, options.sender, options.portal_url, now)
    try:
        courier.mailer.send(message)
    except DeliveryError as exc:
        return domain.retry(
            claim.attempts,
            now,
            str(exc),
            options.retry_base,
            recipient=recipient.email,
            halts_pass=True,
        )
    return domain.sent(recipient.email)


def resolve_recipient(
    claim: domain.Claim, data: dict[str, Any], directory: CompanyDirectory
) -> domain.Recipient:
    """From the payload for auth's events; recorded at the split for a notice's recipient;
    from auth, at send time, for the others (the company's contact)."""
    if claim.user_id:
        return domain.recipient_of_notice(claim.payload[domain.RECIPIENT_KEY])
    if claim.kind in domain.RECIPIENT_IN_PAYLOAD:
        return domain.recipient_from_payload(data)
    return domain.recipient_from_company(directory.get_company(claim.customer_id))


def _log_result(claim: domain.Claim, result: domain.DeliveryResult, recorded: bool) -> None:
    if not recorded:
        log.warning(
            "delivery %s (%s): the claim's lease ran out before attempt %d finished; "
            "the newer attempt's outcome stands",
            claim.id,
            claim.kind,
            claim.attempts,
        )
    elif result.status == domain.SENT:
        log.info("delivery %s (%s) sent to %s", claim.id, claim.kind, result.recipient)
    elif result.status == domain.DONE:
        log.info(
            "delivery %s (%s) split into %d deliveries, one per recipient of the notice",
            claim.id,
            claim.kind,
            len(result.recipients),
        )
    elif result.status == domain.FAILED:
        log.error("delivery %s (%s) failed for good: %s", claim.id, claim.kind, result.error)
    else:
        log.warning(
            "delivery %s (%s) attempt %d failed: %s; next attempt at %s",
            claim.id,
            claim.kind,
            claim.attempts,
            result.error,
            result.retry_at.isoformat(),
        )


# --- reading -----------------------------------------------------------------------------


def list_deliveries(repo: NotifyRepository, limit: int, recipient: str | None) -> list[dict]:
    """The most recent deliveries first (to `recipient` only, if given), as ops sees them."""
    return [views.delivery_view(delivery) for delivery in repo.deliveries(limit, recipient)]


def list_parked(repo: NotifyRepository, limit: int) -> list[dict]:
    """The most recently parked events first, without their payloads."""
    return [views.parked_view(parked) for parked in repo.parked(limit)]
