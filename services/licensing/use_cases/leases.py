"""Floating licenses: check-out, heartbeat, check-in, revocation, the lapse scan, usage.

A floating license has `seats` seats shared by whichever machines hold a *lease*: live
(status live) and not past its `expires_at`. Seat counts compare `expires_at` with now, so
a lease that stops heartbeating frees its seat at its expiry whether or not anything has
run since; marking it `expired` (history and audit `lease_expired`, at its expiry, by the
system) is bookkeeping that whoever gets there first does once: a check-out of its license,
or the scan (`expire_lapsed`).

A check-out is an activation's twin: the same credentials, throttle and company password
(`activations.authorize`), then `checkout` under the license row lock, so the count of live
leases and the insert that follows are one atomic step across every instance. It first
marks the license's lapsed leases expired with one UPDATE: a heartbeat racing it either
committed first (the UPDATE re-reads the row it waited for and finds it not lapsed) or
waits for it and then finds the lease expired (410). Either way, no lease is both counted
out and kept alive, and never more than `seats` leases are live at once. On PostgreSQL the
sweep and the count are one statement (`repo.sweep_and_count`), whose count reads the
snapshot from before the UPDATE's waits: when a lease it saw lapsed was not swept (a
heartbeat extended it, or a check-in or the scan ended it, meanwhile), the count is taken
again in a statement of its own, which sees that change. The installation's own live lease,
if the count found one, is then locked and read again (`repo.current_lease`): a check-in or
the scan locks only the lease row, so either may have ended it since the count. Still live,
it comes back with a new token; ended, the check-out takes a new lease (its seat was freed).
A new lease's ID is drawn again when taken, LEASE_ID_DRAWS times at most; any other unique
key taken is an error, never a reason to try again under the license row lock.

A heartbeat is the hot path: it never takes the license row lock and writes no history. On
PostgreSQL it is one statement, an UPDATE of the lease row conditional on its token, on it
being still live and on its license being valid, that returns what the certificate needs of
the license (`repository.beat`); only an unmatched one reads the lease again to say why.
Check-in and revocation end a lease at once.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from common import audit
from common.audit import SYSTEM, Actor
from common.timeutil import iso
from common.unit_of_work import Event, Outcome
from services.licensing import domain, views
from services.licensing.exceptions import (
    BorrowNotAllowed,
    InvalidLeaseToken,
    LeaseExpired,
    LeaseNotFound,
    LicenseExpired,
    LicenseSuspended,
    NodeLockedLicense,
    NoSeatsAvailable,
)
from services.licensing.models import Lease, License
from services.licensing.repository import LeaseFacts, LicensingRepository
from services.licensing.use_cases.activations import (
    history_event,
    machine_fact,
    record_refusal,
    refuse_other_product,
)
from services.licensing.use_cases.licenses import find_license

NO_SEAT_MESSAGE = (
    "Every seat of this floating license is in use; wait for a lease to end or check one in."
)
# `list_leases(include_ended=True)`: the most recent ended ones, after the live ones
ENDED_LEASES_SHOWN = 100
EXPIRY_BATCH = 200  # leases marked expired per transaction of the scan
LEASE_ID_DRAWS = 5  # a taken one is about 1 in 10^11: five in a row is a fault, not chance


class LeaseIdsExhausted(RuntimeError):
    """LEASE_ID_DRAWS lease IDs in a row were taken: something is wrong with the draw."""


def _record_expired(
    repo: LicensingRepository, license: License, lapsed: list[Lease]
) -> list[audit.AuditEntry]:
    """History `lease_expired` of each lease just marked expired (at its expiry, by the
    system); its audit facts are returned for the same transaction."""
    for lease in lapsed:
        repo.add_later(
            history_event(
                license.id,
                domain.LEASE_EXPIRED_EVENT,
                lease.expires_at,
                lease.installation_id,
                lease.machine_name,
                domain.SYSTEM_SOURCE,
                SYSTEM,
            )
        )
    return [
        machine_fact(
            license, SYSTEM, "lease_expired", lease.expires_at, lease, lease_id=lease.lease_id
        )
        for lease in lapsed
    ]


def _ended(lease: Lease, now: datetime) -> dict[str, Any]:
    """`LeaseExpired`'s details: `{lease_id, reason, ended_at}`."""
    return {
        "lease_id": lease.lease_id,
        "reason": domain.lease_status(lease.status, lease.expires_at, now),
        "ended_at": iso(domain.lease_ended_at(lease.status, lease.expires_at, lease.ended_at, now)),
    }


def _refuse_unless_active(
    license_id: str, expires_at: datetime | None, suspended_at: datetime | None, now: datetime
) -> None:
    """`LicenseSuspended` or `LicenseExpired` (a heartbeat leaves its lease untouched)."""
    status = domain.license_status(expires_at, suspended_at, now)
    if status == domain.SUSPENDED:
        raise LicenseSuspended(details={"license_id": license_id})
    if status == domain.EXPIRED:
        raise LicenseExpired(details={"license_id": license_id, "expires_at": iso(expires_at)})


def _claims(
    license_id: str,
    customer_id: str,
    product_code: str,
    product_name: str,
    seats: int,
    license_expires_at: datetime | None,
    features: list[str],
    lease: Lease,
    now: datetime,
) -> dict[str, Any]:
    """A lease certificate's claims (domain.lease_claims): exp is the lease's expiry."""
    base = domain.certificate_claims(
        license_id=license_id,
        customer_id=customer_id,
        product_code=product_code,
        product_name=product_name,
        seats=seats,
        expires_at=license_expires_at,
        installation_id=lease.installation_id,
        machine_name=lease.machine_name,
        activated_at=lease.started_at,
        now=now,
        jti=secrets.token_hex(8),
        features=features,
    )
    return domain.lease_claims(
        base, lease.lease_id, lease.expires_at, lease.borrowed_until is not None
    )


def _license_claims(license: License, lease: Lease, now: datetime) -> dict[str, Any]:
    return _claims(
        license.license_id,
        license.customer_id,
        license.product.code,
        license.product.name,
        license.seats,
        license.expires_at,
        views.feature_codes(license),
        lease,
        now,
    )


# --- check-out (under the license row lock: activations.authorize's step) -----------------


def checkout(
    repo: LicensingRepository, license: License, data: dict[str, Any], now: datetime, actor: Actor
) -> Outcome:
    """A machine takes a seat of a floating license; the caller holds the license row lock.

    Result: `{"lease": <lease view>, "lease_token", "claims", "created"}`. The installation's
    live lease, if it holds one, comes back with a new token and expiry (`created: false`,
    no history); otherwise a new lease if fewer than `seats` are live (`lease_checked_out`).
    A refusal for the license's state or for want of a seat is recorded (`lease_refused`)
    and returned as `Outcome.error`, to be raised after commit; the first refusal for want
    of a seat in a day also publishes `seats_exhausted`. `NodeLockedLicense` and
    `BorrowNotAllowed` are raised at once (nothing to record). Naming another product
    (`data["product"]`) is refused first, as an activation's is (`WrongProduct`).
    """
    refused = refuse_other_product(
        repo, license, domain.LEASE_REFUSED, data, actor, now, actor_source(actor)
    )
    if refused is not None:
        return refused
    if license.model != domain.FLOATING:
        raise NodeLockedLicense(details={"license_id": license.license_id})
    status = domain.license_status(license.expires_at, license.suspended_at, now)
    if status == domain.SUSPENDED:
        record_refusal(
            repo,
            license,
            domain.LEASE_REFUSED,
            data,
            LicenseSuspended.code,
            actor,
            now,
            actor_source(actor),
        )
        return Outcome(error=LicenseSuspended(details={"license_id": license.license_id}))
    if status == domain.EXPIRED:
        record_refusal(
            repo,
            license,
            domain.LEASE_REFUSED,
            data,
            LicenseExpired.code,
            actor,
            now,
            actor_source(actor),
        )
        details = {"license_id": license.license_id, "expires_at": iso(license.expires_at)}
        return Outcome(error=LicenseExpired(details=details))
    borrow_until = data.get("borrow_until")
    max_borrow_days = license.max_borrow_days or 0
    if borrow_until is not None and not domain.borrow_allowed(borrow_until, now, max_borrow_days):
        latest = domain.latest_borrow(now, max_borrow_days)
        raise BorrowNotAllowed(
            details={
                "max_borrow_days": max_borrow_days,
                "latest": iso(domain.capped(latest, license.expires_at)) if latest else None,
            }
        )
    lapsed, in_use, current = repo.sweep_and_count(license.id, data["installation_id"], now)
    facts = _record_expired(repo, license, lapsed)
    token = domain.new_lease_token()
    expires_at = domain.lease_expiry(
        now, license.lease_seconds or domain.LEASE_SECONDS_DEFAULT, license.expires_at, borrow_until
    )
    borrowed_until = expires_at if borrow_until is not None else None
    if current is not None and not domain.lease_is_live(current.status, current.expires_at, now):
        # a check-in or the scan ended it after the count (`repo.current_lease`): its seat is
        # free, and a new lease takes it
        current, in_use = None, in_use - 1
    if current is not None:
        # the same machine again (a restart, a lost token): its seat, a new token
        current.token_hash = domain.lease_token_hash(token)
        current.machine_name = data["machine_name"]
        current.expires_at = expires_at
        current.borrowed_until = borrowed_until
        current.last_heartbeat_at = now
        lease, created = current, False
    elif not domain.has_free_seat(license.seats, in_use):
        return _no_seat(repo, license, data, actor, now, facts)
    else:
        lease = _new_lease(repo, license, data, token, expires_at, borrowed_until, now)
        # a plain INSERT now rather than the session's flush at commit: less work while the
        # license row lock is held
        repo.insert(
            history_event(
                license.id,
                domain.LEASE_CHECKED_OUT,
                now,
                lease.installation_id,
                lease.machine_name,
                actor_source(actor),
                actor,
            )
        )
        in_use, created = in_use + 1, True
    repo.record_peak(license.id, now.date(), in_use)
    result = {
        "lease": views.lease_view(lease, license.license_id, now),
        "lease_token": token,
        "claims": _license_claims(license, lease, now),
        "created": created,
    }
    return Outcome(result, audit=facts)


def actor_source(actor: Actor) -> str:
    """The history `source` of a lease change by `actor` (product, portal, staff, system)."""
    return {"user": "portal", "staff": "staff", "system": domain.SYSTEM_SOURCE}.get(
        actor.type, "product"
    )


def _new_lease(
    repo: LicensingRepository,
    license: License,
    data: dict[str, Any],
    token: str,
    expires_at: datetime,
    borrowed_until: datetime | None,
    now: datetime,
) -> Lease:
    """Insert a new live lease; a lease ID already taken (about 1 in 10^11) draws another,
    up to LEASE_ID_DRAWS in all (`LeaseIdsExhausted`). Any other unique key taken raises
    (`repo.add_lease`)."""
    for _ in range(LEASE_ID_DRAWS):
        lease = Lease(
            lease_id=domain.new_lease_id(),
            license_pk=license.id,
            installation_id=data["installation_id"],
            machine_name=data["machine_name"],
            token_hash=domain.lease_token_hash(token),
            status=domain.LEASE_LIVE,
            started_at=now,
            expires_at=expires_at,
            last_heartbeat_at=now,
            borrowed_until=borrowed_until,
            ended_at=None,  # set, so the lease view reads no column back from the database
        )
        if repo.add_lease(lease):
            return lease
    raise LeaseIdsExhausted(f"{LEASE_ID_DRAWS} lease IDs drawn in a row were all taken")


def _no_seat(
    repo: LicensingRepository,
    license: License,
    data: dict[str, Any],
    actor: Actor,
    now: datetime,
    facts: list[audit.AuditEntry],
) -> Outcome:
    """Every seat is taken: the refusal, recorded, naming who holds the seats until when;
    `seats_exhausted` with it when the license has not told so in the last day (the column
    is set under the license row lock, so racing refusals tell it once)."""
    record_refusal(
        repo,
        license,
        domain.LEASE_REFUSED,
        data,
        NoSeatsAvailable.code,
        actor,
        now,
        actor_source(actor),
    )
    machines = [views.lease_machine(lease) for lease in repo.live_leases(license.id, now)]
    events: list[Event] = []
    if domain.seats_exhausted_due(license.seats_exhausted_notified_at, now):
        license.seats_exhausted_notified_at = now
        events.append(("seats_exhausted", views.seats_exhausted(license, machines, now)))
    error = NoSeatsAvailable(
        NO_SEAT_MESSAGE,
        details={"license_id": license.license_id, "seats": license.seats, "machines": machines},
    )
    return Outcome(events=events, error=error, audit=facts)


# --- the lease holder: heartbeat, check-in ------------------------------------------------


def _holder(repo: LicensingRepository, lease_id: str, token: str, lock: bool = False) -> LeaseFacts:
    """The lease whose token this is; `InvalidLeaseToken` for an unknown ID or a wrong token
    alike (both cost one query and a hash comparison)."""
    facts = repo.lease_facts(lease_id, lock=lock)
    stored = facts.lease.token_hash if facts is not None else "0" * 64
    if not domain.lease_token_matches(stored, token) or facts is None:
        raise InvalidLeaseToken()
    return facts


def heartbeat(repo: LicensingRepository, lease_id: str, token: str, now: datetime) -> Outcome:
    """The lease lives one more period: `{"lease", "claims"}` (its expiry `max(current, now
    + lease period)`, never past the license's). `InvalidLeaseToken`, `LicenseSuspended` /
    `LicenseExpired` (the lease untouched), `LeaseExpired` (ended or lapsed,
    `details.reason`).

    No license row lock and no history: one UPDATE of the lease row that matches only while
    the lease is live at `now` (`repo.beat`); a revocation or a check-out's sweep that got
    there first leaves it unmatched. Only then is the lease read again, to say why.
    """
    facts = repo.beat(lease_id, domain.lease_token_hash(token), now)
    if facts is None:
        _refuse_heartbeat(repo, lease_id, token, now)
        facts = repo.beat(lease_id, domain.lease_token_hash(token), now)  # it changed since
        if facts is None:
            _refuse_heartbeat(repo, lease_id, token, now)
            raise LeaseExpired(details={"lease_id": lease_id, "reason": None, "ended_at": None})
    lease = facts.lease
    claims = _claims(
        facts.license_id,
        facts.customer_id,
        facts.product_code,
        facts.product_name,
        facts.seats,
        facts.license_expires_at,
        facts.features,
        lease,
        now,
    )
    return Outcome({"lease": views.lease_view(lease, facts.license_id, now), "claims": claims})


def _refuse_heartbeat(repo: LicensingRepository, lease_id: str, token: str, now: datetime) -> None:
    """Raise why a heartbeat did not match: the token, the license's state, the lease's end.
    Returns when none of them applies any more (a license resumed in between)."""
    facts = _holder(repo, lease_id, token)
    _refuse_unless_active(facts.license_id, facts.license_expires_at, facts.suspended_at, now)
    lease = facts.lease
    repo.reload(lease)  # a sweep or revocation may have written it since it was read
    if not domain.lease_is_live(lease.status, lease.expires_at, now):
        raise LeaseExpired(details=_ended(lease, now))


def _end(
    repo: LicensingRepository, lease: Lease, status: str, type_: str, actor: Actor, now: datetime
) -> None:
    """The live `lease` ends now (`status`: checked in or revoked), its seat free at once;
    its history `type_` is written with the commit."""
    lease.status = status
    lease.ended_at = now
    repo.add_later(
        history_event(
            lease.license_pk,
            type_,
            now,
            lease.installation_id,
            lease.machine_name,
            actor_source(actor),
            actor,
        )
    )


def checkin(
    repo: LicensingRepository, lease_id: str, token: str, actor: Actor, now: datetime
) -> Outcome:
    """The machine gives its seat back: the lease view, `checked_in`; the seat is free at
    once (`lease_checked_in`). A lease that already ended answers unchanged."""
    facts = _holder(repo, lease_id, token, lock=True)
    lease = facts.lease
    if domain.lease_is_live(lease.status, lease.expires_at, now):
        _end(repo, lease, domain.LEASE_CHECKED_IN, domain.LEASE_CHECKED_IN_EVENT, actor, now)
    return Outcome(views.lease_view(lease, facts.license_id, now))


# --- the portal and staff -----------------------------------------------------------------


def revoke_lease(
    repo: LicensingRepository,
    license_id: str,
    customer_id: str | None,
    lease_id: str,
    actor: Actor,
    now: datetime,
) -> Outcome:
    """End a lease from outside (the machine is gone, or someone else needs the seat): the
    lease view, `revoked`; its next heartbeat gets `LeaseExpired` (reason revoked). Audited
    and published `lease_revoked`. A lease that already ended answers unchanged.
    `LicenseNotFound`, `LeaseNotFound`."""
    license = find_license(repo, license_id, customer_id, lock=True)
    lease = repo.lease_of(license.id, lease_id, lock=True)
    if lease is None:
        raise LeaseNotFound(details={"license_id": license.license_id, "lease_id": lease_id})
    if not domain.lease_is_live(lease.status, lease.expires_at, now):
        return Outcome(views.lease_view(lease, license.license_id, now))
    _end(repo, lease, domain.LEASE_REVOKED, domain.LEASE_REVOKED_EVENT, actor, now)
    return Outcome(
        views.lease_view(lease, license.license_id, now),
        [("lease_revoked", views.lease_revoked(license, lease, actor))],
        audit=[machine_fact(license, actor, "lease_revoked", now, lease, lease_id=lease.lease_id)],
    )


def list_leases(
    repo: LicensingRepository,
    license_id: str,
    customer_id: str | None,
    include_ended: bool,
    now: datetime,
) -> list[dict[str, Any]]:
    """The live leases, oldest first; with `include_ended`, then the most recent ended ones
    (at most ENDED_LEASES_SHOWN, the latest started first). `LicenseNotFound`."""
    license = find_license(repo, license_id, customer_id)
    leases = repo.live_leases(license.id, now)
    if include_ended:
        leases += repo.ended_leases(license.id, now, ENDED_LEASES_SHOWN)
    return [views.lease_view(lease, license.license_id, now) for lease in leases]


# --- validation, the scan -----------------------------------------------------------------


def validate(repo: LicensingRepository, claims: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A verified lease certificate's claims → `{valid, code, license_id, installation_id,
    expires_at, features, lease_id, lease_expires_at}` as of now: VALID while the lease is
    live and its license valid (domain.lease_validation_code); an unknown lease (or one of
    another license) is LEASE_EXPIRED."""
    lease_id = claims.get("lease_id")
    license_id = claims.get("license_id")
    facts = repo.lease_validation_facts(lease_id) if isinstance(lease_id, str) else None
    if facts is None or facts[3] != license_id:
        return views.lease_validation_view(
            domain.CODE_LEASE_EXPIRED,
            license_id,
            claims.get("installation_id"),
            None,
            [],
            lease_id if isinstance(lease_id, str) else None,
            None,
        )
    status, lease_expires_at, installation_id, _, expires_at, suspended_at, features = facts
    code = domain.lease_validation_code(
        domain.lease_is_live(status, lease_expires_at, now),
        domain.license_status(expires_at, suspended_at, now),
    )
    return views.lease_validation_view(
        code, license_id, installation_id, expires_at, features, lease_id, lease_expires_at
    )


def expire_lapsed(repo: LicensingRepository, now: datetime, limit: int = EXPIRY_BATCH) -> Outcome:
    """One batch of the scan: mark up to `limit` lapsed leases expired, with their history
    and audit `lease_expired`, once each however many instances scan → `{"expired": n}`."""
    lapsed = repo.expire_lapsed_batch(now, limit)
    licenses = repo.licenses_by_pk(sorted({lease.license_pk for lease in lapsed}))
    facts: list[audit.AuditEntry] = []
    for pk, license in licenses.items():
        facts += _record_expired(repo, license, [item for item in lapsed if item.license_pk == pk])
    return Outcome({"expired": len(lapsed)}, audit=facts)


def record_usage(repo: LicensingRepository, now: datetime) -> Outcome:
    """Today's peak of every license with live leases is at least what is live now (so a
    day whose leases all carried over from the day before has a record too)."""
    for license_pk, live in repo.licenses_with_live_leases(now).items():
        repo.record_peak(license_pk, now.date(), live)
    return Outcome()
