"""The product's side: credential checks with throttling, activation, deactivation, validation.

An attempt runs in at most two transactions. The first (`open_gate`) locks the license row
(or, for an unknown license ID, an advisory lock on it), refuses while the caller's address
must wait (its failures on this license, and on any license: `domain.throttle`), and
compares the license's own activation password. When that matches, the
activation happens in that same transaction (the hot path). Otherwise a failure is recorded
and committed *before* the company-wide password goes to auth over RPC (no row lock is held
across a call to another service), so concurrent guesses never outrun the limit; a success
takes it back (`admit`, or `take_back` when the work then fails). `authorize` runs the whole
attempt through the unit of work, writing the step's audit facts (common/audit.py) in the
step's transaction.

Every history row names who acted (`actor`): the product for its own activations and
deactivations, a portal user, staff or the system for a seat freed from outside.

An offline activation (a request file carried to the portal, offline.py) takes its seat
through the same step as an online one (`activate`, under the license row lock), with
`source: "offline"` and the hash of the response's deactivation secret on the installation;
the proof carrying that secret frees the seat once (`deactivate_offline`). The secret is
derived from the request (crypto.OfflineSecrets), so the same request uploaded twice makes
the same secret (the machine's response still works) and is never stored.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from common import audit
from common.audit import PRODUCT, Actor
from common.errors import PortalError
from common.timeutil import iso
from common.unit_of_work import Outcome, UnitOfWork
from common.validation import Facts, answer, code_of, facts_to_wire, needs_refusal_facts
from services.licensing import domain, offline, views
from services.licensing.crypto import OfflineSecrets, PasswordBox
from services.licensing.exceptions import (
    FloatingLicense,
    InstallationNotFound,
    InvalidCredentials,
    InvalidProof,
    InvalidRequest,
    LicenseExpired,
    LicenseSuspended,
    NoSeatsAvailable,
    TooManyAttempts,
    WrongProduct,
)
from services.licensing.models import HistoryEvent, Installation, Lease, License
from services.licensing.repository import LicensingRepository
from services.licensing.use_cases.licenses import find_license

SeatFacts = tuple[int, int | None]  # (seats in use, row id of this installation if active)
# the work an activation password unlocks: `(repo, locked license, seat facts) -> Outcome`
Step = Callable[[LicensingRepository, License, SeatFacts | None], Outcome]
# auth's `verify_company_password(customer_id, password, client_address) -> bool`, which
# counts the company password's failures (here or at login: one counter) and may refuse
VerifyCompanyPassword = Callable[[str, str, str | None], bool]


@dataclass
class Gate:
    """The first step's verdict: the locked license when its password matched (with the
    seat facts when an installation was named), else what to ask auth (`customer_id`, None
    for an unknown license) and the failure to take back."""

    license: License | None = None
    customer_id: str | None = None
    failure_id: int | None = None
    seats: SeatFacts | None = None

    @property
    def authorized(self) -> bool:
        return self.license is not None and self.failure_id is None


def open_gate(
    repo: LicensingRepository,
    box: PasswordBox,
    license_id: str,
    password: str,
    now: datetime,
    installation_id: str | None = None,
    client_address: str | None = None,
) -> Gate:
    key = domain.normalize_license_id(license_id)
    address = domain.address_key(client_address)
    since = now - domain.FAILURE_WINDOW
    license = repo.license(key, lock=True)
    if license is None:
        repo.lock_attempts(key)
    # a statement *after* the lock: it sees the failures of attempts that held it before
    # (one issued with the lock would count from before the wait, and let guesses through).
    # The address's failures on other licenses are not serialised by this lock: concurrent
    # guesses there may each see the count before the others' (a bounded overshoot, as
    # every further failure doubles the wait).
    on_key, anywhere, seats = repo.attempt_facts(
        key, address, since, license.id if license else None, installation_id
    )
    # the times are read only when a counter is past its free failures (an attack, or a
    # customer who mistyped a lot): below that, the counts alone allow the attempt
    on_key_due = on_key >= domain.FREE_FAILURES_PER_LICENSE
    anywhere_due = anywhere >= domain.FREE_FAILURES_PER_ADDRESS
    if on_key_due or anywhere_due:
        decision = domain.throttle(
            repo.failures(address, since, key) if on_key_due else [],
            repo.failures(address, since) if anywhere_due else [],
            now,
        )
        if not decision.allowed:
            raise TooManyAttempts(details={"retry_after": decision.retry_after})
    if license is not None and domain.activation_password_matches(
        box.decrypt(license.activation_password), password
    ):
        return Gate(license=license, seats=seats)
    failure_id = repo.record_failure(key, address, now)
    return Gate(customer_id=license.customer_id if license else None, failure_id=failure_id)


def admit(repo: LicensingRepository, failure_id: int | None, license_id: str) -> License | None:
    """The company password was right: forget the failure, lock the license for the work."""
    take_back(repo, failure_id)
    return repo.license(domain.normalize_license_id(license_id), lock=True)


def take_back(repo: LicensingRepository, failure_id: int | None) -> Outcome:
    """The password was right after all: the failure recorded for it does not count."""
    if failure_id is not None:
        repo.forget_failure(failure_id)
    return Outcome()


def authorize(
    uow: UnitOfWork[LicensingRepository],
    verify_company_password: VerifyCompanyPassword,
    box: PasswordBox,
    license_id: str,
    password: str,
    now: datetime,
    step: Step,
    installation_id: str | None = None,
    client_address: str | None = None,
) -> Any:
    """Run `step` under the license row lock once the password is right; its result.

    The license's own activation password is checked in the same transaction as the step
    (with the seat facts of `installation_id`); the company-wide one is asked of auth
    between two transactions, with `client_address` (auth throttles that password). A
    refusal that the step recorded is raised after its commit.
    """
    with uow.begin() as work:
        gate = open_gate(work.repo, box, license_id, password, now, installation_id, client_address)
        if gate.authorized:
            outcome = step(work.repo, gate.license, gate.seats)
            work.stage_outcome(outcome)
    if not gate.authorized:
        try:
            # an unknown license costs auth the same dummy hash: no timing difference
            ok = verify_company_password(gate.customer_id or "", password, client_address)
        except PortalError as error:
            # auth down: the attempt was never judged. Refused by auth's throttle: the
            # activation password was judged wrong, and that failure still counts here.
            if error.code != TooManyAttempts.code:
                uow.run(take_back, gate.failure_id)
            raise
        if not ok or gate.customer_id is None:
            raise InvalidCredentials()
        try:
            with uow.begin() as work:
                license = admit(work.repo, gate.failure_id, license_id)
                outcome = step(work.repo, license, None)
                work.stage_outcome(outcome)
        except PortalError:
            uow.run(take_back, gate.failure_id)  # no failure to count
            raise
    if outcome.error is not None:
        raise outcome.error
    return outcome.result


def history_event(
    license_pk: int,
    type_: str,
    now: datetime,
    installation_id: str,
    machine_name: str | None,
    source: str,
    actor: Actor,
    reason: str | None = None,
) -> HistoryEvent:
    """A history row of the license `license_pk` (an installation's or a lease's), naming
    who acted."""
    return HistoryEvent(
        license_pk=license_pk,
        type=type_,
        at=now,
        installation_id=installation_id,
        machine_name=machine_name,
        source=source,
        reason=reason,
        actor_type=actor.type,
        actor_user_id=actor.user_id,
        actor_email=actor.email,
    )


def record_refusal(
    repo: LicensingRepository,
    license: License,
    type_: str,
    data: dict[str, Any],
    reason: str,
    actor: Actor,
    now: datetime,
    source: str,
) -> None:
    """History `type_` (an activation or a check-out refused) of the machine that `data`
    names, for `reason` (the error's code), written with the commit."""
    repo.add_later(
        history_event(
            license.id,
            type_,
            now,
            data["installation_id"],
            data["machine_name"],
            source,
            actor,
            reason,
        )
    )


def refuse_other_product(
    repo: LicensingRepository,
    license: License,
    type_: str,
    data: dict[str, Any],
    actor: Actor,
    now: datetime,
    source: str,
) -> Outcome | None:
    """The refusal of a product's call that names (`data["product"]`) another product than
    the license's, recorded like the other refusals and before any seat is looked at; None
    when it names the license's product or none.

    Without it a kit configured for another product took a seat, then found its
    certificate useless (WRONG_PRODUCT), and the seat stayed taken.
    """
    requested = data.get("product")
    if not domain.other_product(license.product.code, requested):
        return None
    record_refusal(repo, license, type_, data, WrongProduct.code, actor, now, source)
    product = license.product
    return Outcome(
        error=WrongProduct(
            f"License {license.license_id} is for {product.name} ({product.code}), not "
            f"{requested}.",
            details={
                "license_id": license.license_id,
                "product": product.code,
                "requested": requested,
            },
        )
    )


def activate(
    repo: LicensingRepository,
    license: License,
    data: dict[str, Any],
    now: datetime,
    seats: SeatFacts | None = None,
    actor: Actor = PRODUCT,
    source: str = "product",
    offline_secret_hash: str | None = None,
    offline_nonce: str | None = None,
) -> Outcome:
    """Activate on a machine; the caller holds the license row lock.

    Result: `{"activation": {...}, "claims": {...}, "created": bool}`. A refusal (expired,
    suspended, no seat) is recorded in history and returned as `Outcome.error`, to be raised
    after commit. A new installation is `installation_activated` in the audit trail (a
    re-activation takes no new seat and is history only); an offline one (`source:
    "offline"`) is `offline_activation` each time, as each issues a new response.

    `offline_secret_hash` is stored on the installation (None, as online: a proof of an
    earlier offline response no longer frees the seat); `offline_nonce` (the request's)
    goes into the certificate's claims with `source: "offline"`.

    A floating license is `FloatingLicense`, raised at once (its machines check out leases,
    `leases.checkout`): nothing to record. Naming another product (`data["product"]`) is
    refused first, as `WrongProduct` (`refuse_other_product`).
    """
    refused = refuse_other_product(
        repo, license, domain.ACTIVATION_REFUSED, data, actor, now, source
    )
    if refused is not None:
        return refused
    if license.model == domain.FLOATING:
        raise FloatingLicense(details={"license_id": license.license_id})
    status = domain.license_status(license.expires_at, license.suspended_at, now)
    if status == domain.SUSPENDED:
        record_refusal(
            repo,
            license,
            domain.ACTIVATION_REFUSED,
            data,
            LicenseSuspended.code,
            actor,
            now,
            source,
        )
        return Outcome(error=LicenseSuspended(details={"license_id": license.license_id}))
    if status == domain.EXPIRED:
        record_refusal(
            repo, license, domain.ACTIVATION_REFUSED, data, LicenseExpired.code, actor, now, source
        )
        return Outcome(
            error=LicenseExpired(
                details={
                    "license_id": license.license_id,
                    "expires_at": iso(license.expires_at),
                }
            )
        )
    in_use, current_pk = seats or repo.seat_facts(license.id, data["installation_id"])
    events = []
    if current_pk is not None:
        current = repo.touch_installation(
            current_pk, data["machine_name"], now, offline_secret_hash
        )
        history_type, created = domain.REACTIVATED, False
    elif not domain.has_free_seat(license.seats, in_use):
        record_refusal(
            repo,
            license,
            domain.ACTIVATION_REFUSED,
            data,
            NoSeatsAvailable.code,
            actor,
            now,
            source,
        )
        return Outcome(
            error=NoSeatsAvailable(
                details={
                    "license_id": license.license_id,
                    "seats": license.seats,
                    "machines": repo.machines_in_use(license.id),
                }
            )
        )
    else:
        current = Installation(
            license_pk=license.id,
            installation_id=data["installation_id"],
            machine_name=data["machine_name"],
            status=domain.INSTALLATION_ACTIVE,
            activated_at=now,
            last_seen_at=now,
            offline_secret_hash=offline_secret_hash,
        )
        repo.insert(current)
        history_type, created = domain.ACTIVATED, True
    repo.insert(
        history_event(
            license.id,
            history_type,
            now,
            current.installation_id,
            current.machine_name,
            source,
            actor,
        )
    )
    view = views.installation_view(current)
    facts = []
    if created:
        # after the answer: it only makes notify send an email, and changes no verdict
        events.append(("installation_activated", views.installation_event(license, view, now)))
    if source == domain.OFFLINE:
        facts.append(machine_fact(license, actor, "offline_activation", now, current))
    elif created:
        facts.append(machine_fact(license, actor, "installation_activated", now, current))
    claims = domain.certificate_claims(
        license_id=license.license_id,
        customer_id=license.customer_id,
        product_code=license.product.code,
        product_name=license.product.name,
        seats=license.seats,
        expires_at=license.expires_at,
        installation_id=current.installation_id,
        machine_name=current.machine_name,
        activated_at=current.activated_at,
        now=now,
        jti=secrets.token_hex(8),
        features=views.feature_codes(license),
        offline_nonce=offline_nonce,
    )
    offline_source = source if source == domain.OFFLINE else None
    activation = views.activation_view(license, view, status, offline_source)
    result = {"activation": activation, "claims": claims, "created": created}
    return Outcome(result, audit=facts, later=events)


def activate_offline(
    repo: LicensingRepository,
    offline_secrets: OfflineSecrets,
    license_id: str,
    customer_id: str | None,
    request_text: Any,
    actor: Actor,
    now: datetime,
) -> Outcome:
    """An activation request file → the activation, as `activate` makes it, with what the
    response file needs: `{"activation", "claims", "created", "nonce", "issued_at"}`. The
    deactivation secret is derived from the request (`offline_secrets`): only its hash is
    kept (on the installation), and the entrypoint derives it again for the response, so
    neither the database nor the request ledger ever holds it.

    `InvalidRequest` (malformed, or for another license or product), `LicenseNotFound`
    (missing, or another company's); refusals as online, recorded with source offline.
    """
    # the license first: another company's is not found, whatever the file holds
    license = find_license(repo, license_id, customer_id, lock=True)
    try:
        request = offline.parse_request(request_text)
    except offline.FileProblem as problem:
        raise InvalidRequest(problem.problem, details=problem.details()) from None
    problem = offline.request_problem(request, license.license_id, license.product.code)
    if problem is not None:
        raise InvalidRequest(problem.problem, details=problem.details())
    secret = offline_secrets.secret(license.license_id, request.installation_id, request.nonce)
    data = {"installation_id": request.installation_id, "machine_name": request.machine_name}
    outcome = activate(
        repo,
        license,
        data,
        now,
        None,
        actor,
        domain.OFFLINE,
        offline.secret_hash(secret),
        request.nonce,
    )
    if outcome.error is None:
        outcome.result.update(nonce=request.nonce, issued_at=iso(now))
    return outcome


def deactivate_offline(
    repo: LicensingRepository,
    license_id: str,
    customer_id: str | None,
    proof_text: Any,
    actor: Actor,
    now: datetime,
) -> Outcome:
    """A deactivation proof file → the installation, deactivated (`deactivated_by:
    "offline"`). Valid once: the installation must be active with the hash of the proof's
    secret, which is cleared. `InvalidProof` (malformed, forged, reused, foreign),
    `LicenseNotFound`."""
    license = find_license(repo, license_id, customer_id, lock=True)
    try:
        proof = offline.parse_proof(proof_text)
    except offline.FileProblem as problem:
        raise InvalidProof(problem.problem, details=problem.details()) from None
    if proof.license_id != license.license_id:
        message = f"This proof is for license {proof.license_id}, not {license.license_id}."
        raise InvalidProof(message, details={"problem": message, "field": "license_id"})
    installation = repo.latest_installation(license.id, proof.installation_id)
    if installation is None or installation.status != domain.INSTALLATION_ACTIVE:
        message = (
            "No active installation of this license has this ID: the proof was used "
            "already, or it belongs to another license."
        )
        raise InvalidProof(message, details={"problem": message, "field": "installation_id"})
    if not offline.secret_matches(installation.offline_secret_hash, proof.secret):
        message = (
            "The proof does not match the installation's latest offline activation (forged, "
            "used already, or of an earlier response)."
        )
        raise InvalidProof(message, details={"problem": message, "field": "secret"})
    installation.offline_secret_hash = None
    return deactivate(repo, license, proof.installation_id, domain.OFFLINE, actor, now)


def machine_fact(
    license: License,
    actor: Actor,
    action: str,
    at: datetime,
    machine: Installation | Lease,
    **details: Any,
) -> audit.AuditEntry:
    """The audit trail's entry of `action` on a machine of `license`, an installation or a
    lease (whose `lease_id` comes in `details`, before the machine's)."""
    return audit.entry(
        license.customer_id,
        actor,
        action,
        ("license", license.license_id),
        at,
        **details,
        installation_id=machine.installation_id,
        machine_name=machine.machine_name,
    )


def deactivate(
    repo: LicensingRepository,
    license: License,
    installation_id: str,
    source: str,
    actor: Actor,
    now: datetime,
) -> Outcome:
    """Free the seat of an active installation (the license row is locked by the caller).

    Deactivating an installation that is no longer active answers it again, unchanged (and
    records nothing).
    """
    installation = repo.latest_installation(license.id, installation_id)
    if installation is None:
        raise InstallationNotFound(details={"installation_id": installation_id})
    if installation.status != domain.INSTALLATION_ACTIVE:
        return Outcome(views.installation_view(installation))
    installation.status = domain.INSTALLATION_DEACTIVATED
    installation.deactivated_at = now
    installation.deactivated_by = source
    repo.add(
        history_event(
            license.id,
            domain.DEACTIVATED,
            now,
            installation.installation_id,
            installation.machine_name,
            source,
            actor,
        )
    )
    view = views.installation_view(installation)
    fact = machine_fact(license, actor, "installation_deactivated", now, installation)
    fact.details["source"] = source
    return Outcome(
        view,
        [("installation_deactivated", views.installation_event(license, view, now))],
        audit=[fact],
    )


def deactivate_installation(
    repo: LicensingRepository,
    license_id: str,
    customer_id: str | None,
    installation_id: str,
    source: str,
    actor: Actor,
    now: datetime,
) -> Outcome:
    """The portal or staff free a seat (the machine is dead, lost or stolen)."""
    license = find_license(repo, license_id, customer_id, lock=True)
    return deactivate(repo, license, installation_id, source, actor, now)


def read_facts(
    repo: LicensingRepository, license_id: str, installation_id: str, now: datetime, full: bool
) -> Facts | None:
    """The validation facts of `installation_id` on `license_id` (None: no such license);
    who and when of a deactivation and the suspension reason are read by a second query,
    only when an answer may show them (`full`: whenever they apply, for a read model that
    keeps the facts; else only for a DEACTIVATED or SUSPENDED answer at `now`).

    An active installation's `last_seen_at` older than domain.LAST_SEEN_RESOLUTION becomes
    now (`repo.mark_seen`, guarded and idempotent, so the read's retry may run it again);
    fresher, reading writes nothing at all."""
    row = repo.validation_facts(license_id, installation_id)
    if row is None:
        return None
    expires_at, suspended_at, installation_pk, last_seen_at, features = row
    facts = Facts(
        expires_at=expires_at,
        suspended_at=suspended_at,
        features=tuple(features),
        active=installation_pk is not None,
        last_seen_at=last_seen_at,
    )
    if installation_pk is not None and domain.last_seen_due(last_seen_at, now):
        repo.mark_seen(installation_pk, now)
        facts = replace(facts, last_seen_at=now)
    refused = code_of(facts, now) in (domain.CODE_DEACTIVATED, domain.CODE_SUSPENDED)
    if needs_refusal_facts(facts) and (full or refused):
        deactivated_at, deactivated_by, reason = repo.refusal_facts(license_id, installation_id)
        facts = replace(
            facts,
            suspension_reason=reason,
            deactivated_at=None if facts.active else deactivated_at,
            deactivated_by=None if facts.active else deactivated_by,
        )
    return facts


def validate(repo: LicensingRepository, claims: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A verified certificate's claims → `{valid, code, license_id, installation_id,
    expires_at, features, deactivated_at, deactivated_by, suspended_at, suspension_reason}`
    as of now (the license may since have been extended, suspended, …): `read_facts`, then
    the answer the gateway's read model gives from the same facts (common/validation.py)."""
    license_id = claims.get("license_id")
    installation_id = claims.get("installation_id")
    facts = None
    if isinstance(license_id, str) and isinstance(installation_id, str):
        facts = read_facts(repo, license_id, installation_id, now, full=False)
    # the features as of now (a removed one stops working at the next online check); the
    # answer holds them only when VALID
    return answer(facts, license_id, installation_id, now)


def validation_facts(
    repo: LicensingRepository, license_id: str, installation_id: str, now: datetime
) -> dict[str, Any] | None:
    """For the gateway's read model: `read_facts` in full, as JSON (`facts_to_wire`)."""
    return facts_to_wire(read_facts(repo, license_id, installation_id, now, full=True))


def mark_seen(repo: LicensingRepository, seen: list[tuple[str, str]], now: datetime) -> int:
    """The gateway saw these (license_id, installation_id) validate: each active one's
    `last_seen_at` becomes now unless fresher (guarded: idempotent); → how many were active."""
    active = 0
    for license_id, installation_id in seen:
        row = repo.validation_facts(license_id, installation_id)
        if row is not None and row[2] is not None:
            active += 1
            if domain.last_seen_due(row[3], now):
                repo.mark_seen(row[2], now)
    return active
