"""Typed errors: one class per error code of the License Portal API, plus the client's own.

The server answers every error as `{"error": {"code", "message", "details"}}`; `from_response`
turns that into the matching `LicenseError` subclass, so product code can write
`except NoSeatsAvailable as exc: show(exc.machines)` instead of comparing strings.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .times import parse_time


class LicenseError(Exception):
    """Base of every error this package raises. `code` is the API's snake_case error code."""

    code = "license_error"
    default_message = "The license request failed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        self.code = code or self.code
        self.message = message or self.default_message
        self.details: dict[str, Any] = details if isinstance(details, dict) else {}
        self.status = status
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}

    def explain(self, portal: str | None) -> str | None:
        """The message a person at this machine needs (what happened, since when, what to
        do next), from the server's details and the `portal`'s URL; None: the server's own
        message says it."""
        return None


class InvalidCredentials(LicenseError):
    """Unknown license ID or wrong password (the server gives the same answer for both)."""

    code = "invalid_credentials"
    default_message = "The license ID or the password is wrong."


class SeatHolder(str):
    """A machine that holds a seat: its name (the string itself), and for a floating
    license's lease until when (`expires_at`) and whether it is `borrowed`.

    A plain `str` to code that only wants names (`", ".join(error.machines)`);
    `describe()` says it for a person: "CAD-WS-01 (until 2030-01-15 09:15 UTC)".
    """

    expires_at: datetime | None
    borrowed: bool

    def __new__(
        cls, name: str, expires_at: datetime | None = None, borrowed: bool = False
    ) -> SeatHolder:
        holder = super().__new__(cls, name)
        holder.expires_at = expires_at
        holder.borrowed = borrowed
        return holder

    @property
    def machine_name(self) -> str:
        return str(self)

    def describe(self) -> str:
        if self.expires_at is None:
            return str(self)
        return f"{self} ({'borrowed until' if self.borrowed else 'until'} {_when(self.expires_at)})"


class NoSeatsAvailable(LicenseError):
    """Every seat of the license is in use; `machines` names the machines that hold them
    (each a `SeatHolder`: a name that also knows until when it holds the seat)."""

    code = "no_seats_available"
    default_message = "Every seat of this license is in use."

    @property
    def machines(self) -> list[SeatHolder]:
        """The machines from the error's details, whichever shape the server sends."""
        details = self.details
        for key in ("machine_names", "machines", "installations", "active_installations"):
            value = details.get(key)
            if isinstance(value, list):
                holders = (_seat_holder(item) for item in value)
                return [holder for holder in holders if holder]
        return []

    def describe_machines(self) -> str:
        """ "CAD-WS-01 (until 2030-01-15 09:15 UTC), LAPTOP-3 (borrowed until …)"."""
        return ", ".join(holder.describe() for holder in self.machines)

    @property
    def seats(self) -> int | None:
        value = self.details.get("seats")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def explain(self, portal: str | None) -> str | None:
        """ "All 2 seats of license L-7KQX-M2PD are in use (on CAD-WS-01, LAPTOP-3): ask your
        administrator to free a seat in the portal (https://…)."."""
        if self.seats == 1:
            seats, verb = "The one seat", "is"
        elif self.seats:
            seats, verb = f"All {self.seats} seats", "are"
        else:
            seats, verb = "Every seat", "is"
        license_id = _license(self.details) or "this license"
        on = f" (on {self.describe_machines()})" if self.machines else ""
        return (
            f"{seats} of {license_id} {verb} in use{on}: ask your administrator to free a "
            f"seat in the portal{_at(portal)}."
        )


class LicenseExpired(LicenseError):
    code = "license_expired"
    default_message = "The license has expired."

    def explain(self, portal: str | None) -> str | None:
        expired = parse_time(self.details.get("expires_at"))
        since = f" on {_when(expired)}" if expired else ""
        return (
            f"{_sentence(_license(self.details) or 'this license')} expired{since}: renew it "
            f"in the portal{_at(portal)}, then try again."
        )


class LicenseSuspended(LicenseError):
    code = "license_suspended"
    default_message = "The license is suspended."

    def explain(self, portal: str | None) -> str | None:
        license_id = _sentence(_license(self.details) or "this license")
        return f"{license_id} is suspended: contact your vendor."


class WrongProduct(LicenseError):
    """The license is for another product than the one this kit is configured with; the
    server refused it before taking a seat. `product`: the license's product code."""

    code = "wrong_product"
    default_message = "This license is for another product."

    @property
    def product(self) -> str | None:
        value = self.details.get("product")
        return value if isinstance(value, str) else None

    def explain(self, portal: str | None) -> str | None:
        return (
            f"{self.message} No seat was taken: use a license of this product, or check "
            "the product code this program is configured with."
        )


class TooManyAttempts(LicenseError):
    """Too many failed attempts; `retry_after` is the number of seconds to wait (or None)."""

    code = "too_many_attempts"
    default_message = "Too many attempts; try again later."

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if retry_after is None:
            retry_after = _number(self.details.get("retry_after"))
        self.retry_after = retry_after


class NodeLockedLicense(LicenseError):
    """A lease was asked of a node-locked license: activate it instead."""

    code = "node_locked_license"
    default_message = "This license is node-locked: activate it instead."


class FloatingLicense(LicenseError):
    """An activation was asked of a floating license: check out a lease instead."""

    code = "floating_license"
    default_message = "This license is floating: check out a lease instead."


class BorrowNotAllowed(LicenseError):
    """The license does not lend a seat that long (or at all); `max_borrow_days` is its
    limit (0: no borrowing) and `latest` the latest end a borrow may have now."""

    code = "borrow_not_allowed"
    default_message = "This license does not allow borrowing a seat that long."

    @property
    def max_borrow_days(self) -> int | None:
        value = self.details.get("max_borrow_days")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def latest(self) -> datetime | None:
        return parse_time(self.details.get("latest"))


class LeaseExpired(LicenseError):
    """The lease ended. `reason` is `expired`, `revoked` or `checked_in` when the server
    says which: a lapsed lease may be checked out again (the kit's heartbeat does that by
    itself); a revoked or checked-in one was freed on purpose, and the kit leaves it lost."""

    code = "lease_expired"
    default_message = "The lease has ended; check out again."

    @property
    def lease_id(self) -> str | None:
        value = self.details.get("lease_id")
        return value if isinstance(value, str) else None

    @property
    def reason(self) -> str | None:
        value = self.details.get("reason")
        return value if isinstance(value, str) else None


class InvalidLeaseToken(LicenseError):
    """The server does not know this lease with this token (another process of this
    installation checked out since, which replaced the token)."""

    code = "invalid_lease_token"
    default_message = "The lease is unknown or its token was replaced."


class ValidationError(LicenseError):
    """The server rejected the request's fields; `fields` maps field names to messages."""

    code = "validation_error"
    default_message = "The request was not valid."

    @property
    def fields(self) -> dict[str, Any]:
        value = self.details.get("fields")
        return value if isinstance(value, dict) else {}


class ServiceUnavailable(LicenseError):
    """The licensing service cannot answer right now (503), after the configured retries."""

    code = "service_unavailable"
    default_message = "The licensing service is unavailable; try again later."

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class NetworkError(ServiceUnavailable):
    """The server could not be reached at all: DNS, refused connection, timeout, TLS."""

    code = "network_error"
    default_message = "The license server could not be reached."


class ProtocolError(LicenseError):
    """The server answered something this client does not understand (wrong URL, proxy page)."""

    code = "unexpected_response"
    default_message = "The license server gave an unexpected answer."


class InvalidCertificate(LicenseError):
    """A certificate the server sent does not verify against its signing keys."""

    code = "invalid_certificate"
    default_message = "The activation certificate does not verify."


class NotActivated(LicenseError):
    """This installation has no stored activation (activate first)."""

    code = "not_activated"
    default_message = "This installation is not activated."


class NotCheckedOut(NotActivated):
    """This installation holds no lease of a floating license (check out first)."""

    code = "not_checked_out"
    default_message = "This installation holds no lease."


class StorageError(LicenseError):
    """The data folder could not be read or written."""

    code = "storage_error"
    default_message = "The license data folder could not be read or written."


class OfflineFileError(LicenseError):
    """An offline activation file this installation cannot use (base of the next three)."""

    code = "offline_file_refused"
    default_message = "The offline activation file cannot be used on this machine."


class InvalidResponseFile(OfflineFileError):
    """The response file is malformed: not JSON, cut short, a field missing, mistyped or
    unknown. `details` has `problem` (in words) and, when one field is at fault, `field`."""

    code = "invalid_response"
    default_message = "The file is not a usable activation response."


class ResponseMismatch(OfflineFileError):
    """The response answers another request (another nonce, license, installation or
    product), or no request is pending on this machine."""

    code = "response_mismatch"
    default_message = "This response answers another request; make a new request on this machine."


class UntrustedResponse(OfflineFileError, InvalidCertificate):
    """The response's certificate does not verify against the keys this kit trusts (the
    pinned JWKS or the cached one; never a key that came with the file)."""

    code = "invalid_certificate"
    default_message = "The response's certificate does not verify."


class NotOfflineActivation(LicenseError):
    """An offline deactivation was asked for, but this installation was activated online (no
    deactivation secret to prove anything with)."""

    code = "not_offline_activation"
    default_message = (
        "This installation was activated online; release its seat with `license-client "
        "deactivate` (online) instead."
    )


ERRORS_BY_CODE: dict[str, type[LicenseError]] = {
    cls.code: cls
    for cls in (
        InvalidCredentials,
        NoSeatsAvailable,
        LicenseExpired,
        LicenseSuspended,
        TooManyAttempts,
        ValidationError,
        ServiceUnavailable,
        NodeLockedLicense,
        FloatingLicense,
        BorrowNotAllowed,
        LeaseExpired,
        InvalidLeaseToken,
        WrongProduct,
    )
}
# the gateway's other "bad input" codes mean the same thing to a product
ERRORS_BY_CODE.update({"bad_request": ValidationError, "invalid_json": ValidationError})


def from_response(
    status: int, body: Any, retry_after: float | None = None, portal: str | None = None
) -> LicenseError:
    """The error for an HTTP error answer: its envelope's code, else its status. Its message
    is the kit's explanation when it has one (`LicenseError.explain`, naming the `portal`),
    else the server's."""
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict) and isinstance(envelope.get("code"), str):
        code = envelope["code"]
        message = envelope.get("message") if isinstance(envelope.get("message"), str) else None
        details = envelope.get("details") if isinstance(envelope.get("details"), dict) else {}
        cls = ERRORS_BY_CODE.get(code)
        if cls is None:
            cls = ServiceUnavailable if status in (502, 503, 504) else LicenseError
        if issubclass(cls, (TooManyAttempts, ServiceUnavailable)):
            return cls(message, code=code, details=details, status=status, retry_after=retry_after)
        error = cls(message, code=code, details=details, status=status)
        explained = error.explain(portal)
        if explained:
            error.message = explained
            error.args = (explained,)
        return error
    if status in (502, 503, 504):
        return ServiceUnavailable(status=status, retry_after=retry_after)
    if status == 429:
        return TooManyAttempts(status=status, retry_after=retry_after)
    return ProtocolError(
        f"The license server answered HTTP {status} without an error body.", status=status
    )


def _license(details: dict[str, Any]) -> str | None:
    value = details.get("license_id")
    return f"license {value}" if isinstance(value, str) and value else None


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _at(portal: str | None) -> str:
    return f" ({portal})" if portal else ""


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _seat_holder(item: Any) -> SeatHolder | None:
    if isinstance(item, str):
        return SeatHolder(item) if item else None
    if isinstance(item, dict):
        name = item.get("machine_name") or item.get("name")
        if isinstance(name, str) and name:
            expires = parse_time(item.get("expires_at"))
            return SeatHolder(name, expires, item.get("borrowed") is True)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
