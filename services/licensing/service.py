"""The licensing service: products, licenses, activations and activation certificates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nameko.rpc import rpc
from nameko.timer import timer

from common import outbox
from common.db import Database
from common.errors import PortalError, validation_error
from common.events import EventBus
from common.rpc import RpcClient
from common.schemas import load
from common.timers import configured_timer
from common.timeutil import utcnow
from services.licensing import activations, domain, licenses, payments, schemas
from services.licensing.crypto import BadSignature
from services.licensing.dependencies import LicensingKeys
from services.licensing.exceptions import InvalidCredentials
from services.licensing.licenses import Outcome
from services.licensing.models import EventOutbox, License
from services.licensing.repository import LicensingRepository

MIGRATIONS = Path(__file__).parent / "migrations"
EXPIRY_SCAN_DEFAULT_SECONDS = 3600.0


def _text(value: Any, name: str, max_length: int = 64) -> str:
    """A plain string argument of an RPC method, or `validation_error` naming it."""
    if not isinstance(value, str) or not 0 < len(value) <= max_length or "\x00" in value:
        raise validation_error({name: [f"Expected a string of 1 to {max_length} characters."]})
    return value


def _customer(value: Any) -> str | None:
    return None if value is None else _text(value, "customer_id", 32)


class LicensingService(payments.PaymentHandlers):
    name = "licensing"

    db = Database("licensing", MIGRATIONS)
    events = EventBus()
    keys = LicensingKeys()
    auth = RpcClient("auth")

    def _publish(self, outcome: Outcome, staged: list) -> Outcome:
        """After the commit: publish the staged events, then raise a refusal if there was one."""
        outbox.flush(self.db, EventOutbox, self.events, staged)
        if outcome.error is not None:
            raise outcome.error
        return outcome

    def _run(self, use_case: Callable[..., Outcome], *args: Any) -> Outcome:
        """Run a use case in one transaction with its events staged, then publish them."""
        with self.db.transaction() as session:
            outcome = use_case(LicensingRepository(session), *args)
            staged = outbox.stage(session, EventOutbox, outcome.events)
        return self._publish(outcome, staged)

    def _read(self, use_case: Callable[..., Any], *args: Any) -> Any:
        with self.db.transaction() as session:
            return use_case(LicensingRepository(session), *args)

    @rpc
    def ping(self) -> dict[str, str]:
        """Readiness: `{"service": "licensing", "status": "ok"}` once the database answers."""
        self.db.ping()
        return {"service": self.name, "status": "ok"}

    # --- products and licenses (staff, portal) ------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def create_product(self, payload: dict[str, Any]) -> dict[str, Any]:
        """`{"code": "cadpro", "name": "CAD Pro"}` → `{"code", "name"}`; `product_exists`."""
        data = load(schemas.CreateProduct(), payload)
        return self._read(licenses.create_product, data, utcnow())

    @rpc(expected_exceptions=PortalError)
    def list_products(self) -> list[dict[str, Any]]:
        """→ `[{"code": "cadpro", "name": "CAD Pro"}, ...]`, by code."""
        with self.db.transaction() as session:
            return [licenses.product_view(p) for p in LicensingRepository(session).products()]

    @rpc(expected_exceptions=PortalError)
    def issue_license(self, payload: dict[str, Any]) -> dict[str, Any]:
        """`{"customer_id": "C4829113", "product": "cadpro", "seats": 5,
        "expires_at": "2027-12-31" | ISO date-time | null}` → the license (publishes
        `license_issued`). A date means through the end of that day (UTC); null: perpetual.

        → `{"license_id": "L-7KQX-M2PD", "customer_id", "product": {"code", "name"}, "seats",
        "seats_in_use": 0, "expires_at", "suspended_at": null, "status": "active",
        "created_at"}`; `product_not_found`, `company_not_found` (asked of auth).
        """
        data = load(schemas.IssueLicense(), payload)
        self.auth.get_company(data["customer_id"])
        return self._run(licenses.issue_license, self.keys.box, data, utcnow()).result

    @rpc(expected_exceptions=PortalError)
    def get_license(self, license_id: str, customer_id: str | None = None) -> dict[str, Any]:
        """`"L-7KQX-M2PD"` (, `"C4829113"`) → the license with `activation_password`,
        `seats_in_use` and `installations` (newest first).

        With `customer_id`, another company's license is `license_not_found`, as is a
        license that does not exist.
        """
        return self._read(
            licenses.get_license,
            self.keys.box,
            _text(license_id, "license_id"),
            _customer(customer_id),
            utcnow(),
        )

    @rpc(expected_exceptions=PortalError)
    def list_licenses(self, customer_id: str) -> list[dict[str, Any]]:
        """`"C4829113"` → `[{license_id, product: {code, name}, seats, seats_in_use,
        expires_at, status, …}]`, oldest first (no activation passwords)."""
        return self._read(licenses.list_licenses, _text(customer_id, "customer_id", 32), utcnow())

    @rpc(expected_exceptions=PortalError)
    def list_installations(
        self, license_id: str, customer_id: str | None = None
    ) -> list[dict[str, Any]]:
        """→ `[{installation_id, machine_name, status, activated_at, last_seen_at,
        deactivated_at, deactivated_by}]`, newest first; `license_not_found`."""
        return self._read(
            licenses.list_installations, _text(license_id, "license_id"), _customer(customer_id)
        )

    @rpc(expected_exceptions=PortalError)
    def history(
        self,
        license_id: str,
        customer_id: str | None = None,
        limit: int = domain.HISTORY_PAGE_DEFAULT,
        before: int | str | None = None,
    ) -> dict[str, Any]:
        """Activations, re-activations, deactivations and refusals, newest first.

        `("L-7KQX-M2PD", "C4829113", limit=50, before=None)` → `{"events": [{"id", "type",
        "at", "installation_id", "machine_name", "source", "reason"}], "next_before": "812"
        | null}`; pass `next_before` as `before` for the next (older) page.
        """
        if isinstance(before, str) and before.isdigit() and len(before) < 19:
            before = int(before)
        query = load(schemas.HistoryQuery(), {"limit": limit, "before": before})
        return self._read(
            licenses.history,
            _text(license_id, "license_id"),
            _customer(customer_id),
            query["limit"],
            query["before"],
        )

    @rpc(expected_exceptions=PortalError)
    def deactivate_installation(
        self,
        customer_id: str | None,
        license_id: str,
        installation_id: str,
        source: str = "portal",
    ) -> dict[str, Any]:
        """Free an installation's seat at once (the machine is dead, lost or stolen).

        `("C4829113", "L-7KQX-M2PD", "0f3c…", "portal")` → the installation with
        `status: "deactivated"`, `deactivated_by: "portal"`; `customer_id` None for staff
        (`source: "staff"`). `license_not_found`, `installation_not_found`.
        """
        data = load(
            schemas.DeactivateInstallation(),
            {"installation_id": installation_id, "source": source},
        )
        return self._run(
            licenses.deactivate_installation,
            _text(license_id, "license_id"),
            _customer(customer_id),
            data["installation_id"],
            data["source"],
            utcnow(),
        ).result

    @rpc(expected_exceptions=PortalError)
    def rotate_activation_password(
        self, license_id: str, customer_id: str | None = None
    ) -> dict[str, Any]:
        """→ `{"license_id", "activation_password": "K7QX-M2PD-9TRW-H4NC"}`; the old
        password stops working with this answer."""
        return self._read(
            licenses.rotate_activation_password,
            self.keys.box,
            _text(license_id, "license_id"),
            _customer(customer_id),
            utcnow(),
        )

    @rpc(expected_exceptions=PortalError)
    def suspend_license(self, license_id: str) -> dict[str, Any]:
        """Staff: `"L-7KQX-M2PD"` → the license, `status: "suspended"` (activations: 403)."""
        return self._read(licenses.set_suspended, _text(license_id, "license_id"), True, utcnow())

    @rpc(expected_exceptions=PortalError)
    def resume_license(self, license_id: str) -> dict[str, Any]:
        """Staff: lift a suspension → the license with its status from its expiry."""
        return self._read(licenses.set_suspended, _text(license_id, "license_id"), False, utcnow())

    @rpc(expected_exceptions=PortalError)
    def extend_license(self, license_id: str, expires_at: str) -> dict[str, Any]:
        """Staff: `("L-7KQX-M2PD", "2028-12-31")` → the license (publishes
        `license_extended` with `previous_expires_at`)."""
        data = load(schemas.Extend(), {"expires_at": expires_at})
        return self._run(
            licenses.extend, _text(license_id, "license_id"), data["expires_at"], utcnow()
        ).result

    # --- the product's activation API ---------------------------------------------------

    def _authorized(
        self,
        license_id: str,
        password: str,
        work: Callable[..., Outcome],
        installation_id: str | None = None,
    ) -> Any:
        """Run `work(repo, license, seats)` under the license row lock once the password is
        right (`seats`: the seat facts of `installation_id` when they came with the check).

        The license's own activation password is checked in the same transaction; the
        company-wide one is asked of auth in between (see `activations`).
        """
        box = self.keys.box
        with self.db.transaction() as session:
            repo = LicensingRepository(session)
            gate = activations.open_gate(repo, box, license_id, password, utcnow(), installation_id)
            if gate.authorized:
                outcome = work(repo, gate.license, gate.seats)
                staged = outbox.stage(session, EventOutbox, outcome.events)
        if gate.authorized:
            return self._publish(outcome, staged).result
        try:
            # an unknown license costs auth the same dummy hash: no timing difference
            ok = self.auth.verify_company_password(gate.customer_id or "", password)
        except PortalError:
            self._take_back(gate.failure_id)
            raise
        if not ok or gate.customer_id is None:
            raise InvalidCredentials()
        try:
            with self.db.transaction() as session:
                repo = LicensingRepository(session)
                repo.forget_failure(gate.failure_id)
                license = repo.license(domain.normalize_license_id(license_id), lock=True)
                outcome = work(repo, license, None)
                staged = outbox.stage(session, EventOutbox, outcome.events)
        except PortalError:
            self._take_back(gate.failure_id)  # the password was right: no failure to count
            raise
        return self._publish(outcome, staged).result

    def _take_back(self, failure_id: int | None) -> None:
        if failure_id is not None:
            with self.db.transaction() as session:
                LicensingRepository(session).forget_failure(failure_id)

    @rpc(expected_exceptions=PortalError)
    def activate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """`{"license_id": "L-7KQX-M2PD", "password": "K7QX-M2PD-9TRW-H4NC" | the company
        password, "installation_id": "…", "machine_name": "…"}` →
        `{"activation": {installation_id, machine_name, status, activated_at, license_id,
        product, expires_at, license_status, …}, "certificate": "<compact JWS>",
        "created": true | false}` (false: already active here, no new seat).

        `invalid_credentials` (wrong password or unknown license alike),
        `too_many_attempts` (`details.retry_after`), `license_expired`,
        `license_suspended`, `no_seats_available` (`details.machines`).
        """
        data = load(schemas.Activate(), payload)

        def work(repo: LicensingRepository, license: License, seats) -> Outcome:
            return activations.activate(repo, license, data, utcnow(), seats)

        result = self._authorized(
            data["license_id"], data["password"], work, data["installation_id"]
        )
        return {
            "activation": result["activation"],
            "certificate": self.keys.keyring.sign(result["claims"]),
            "created": result["created"],
        }

    @rpc(expected_exceptions=PortalError)
    def deactivate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The product releases its seat: `{"license_id", "password", "installation_id"}` →
        the installation (`deactivated_by: "product"`); again: the same answer.
        `invalid_credentials`, `too_many_attempts`, `installation_not_found`."""
        data = load(schemas.Deactivate(), payload)

        def work(repo: LicensingRepository, license: License, seats) -> Outcome:
            return licenses.deactivate(repo, license, data["installation_id"], "product", utcnow())

        return self._authorized(data["license_id"], data["password"], work)

    @rpc(expected_exceptions=PortalError)
    def validate(self, certificate: Any) -> dict[str, Any]:
        """`"<compact JWS>"` → `{"valid": true, "code": "VALID", "license_id",
        "installation_id", "expires_at"}`; code one of VALID, EXPIRED, SUSPENDED,
        DEACTIVATED, BAD_SIGNATURE (malformed, unknown key or tampered: never an error)."""
        try:
            claims = self.keys.keyring.verify(certificate)
        except BadSignature:
            return {
                "valid": False,
                "code": domain.BAD_SIGNATURE,
                "license_id": None,
                "installation_id": None,
                "expires_at": None,
            }
        return self._read(activations.validate, claims, utcnow())

    @rpc
    def signing_keys(self) -> dict[str, Any]:
        """The JWKS: `{"keys": [{"kty": "OKP", "crv": "Ed25519", "x", "kid", "use": "sig",
        "alg": "EdDSA"}]}`, the signing key first, then retired keys that still verify."""
        return self.keys.keyring.jwks()

    # --- expiry notices ----------------------------------------------------------------

    @rpc
    def scan_expiring(self) -> dict[str, int]:
        """Send the due `license_expiring` notices now → `{"sent": 2}` (the timer does this)."""
        return {"sent": self._scan()}

    @configured_timer("LICENSING_EXPIRY_SCAN_SECONDS", default=EXPIRY_SCAN_DEFAULT_SECONDS)
    def expiry_scan(self) -> None:
        """`license_expiring` at 30, 7 and 1 days before expiry, once per license and
        threshold however many instances scan; also forgets stale failed attempts."""
        self._scan()
        with self.db.transaction() as session:
            LicensingRepository(session).prune_failures(utcnow() - domain.FAILURE_WINDOW)

    def _scan(self) -> int:
        with self.db.transaction() as session:
            events = licenses.expiry_notices(LicensingRepository(session), utcnow())
            staged = outbox.stage(session, EventOutbox, events)
        outbox.flush(self.db, EventOutbox, self.events, staged)
        return len(events)

    @timer(interval=5)
    def relay_outbox(self) -> None:
        """Publish events that a crash or a broker outage left in the outbox."""
        outbox.relay(self.db, EventOutbox, self.events)

    @timer(interval=3600)
    def prune_outbox(self) -> None:
        outbox.prune(self.db, EventOutbox)
