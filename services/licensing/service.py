"""The licensing service: products, licenses, activations, a floating license's leases, and
their certificates.

Every entrypoint of the service is here: it loads its payload, runs one use case of
`use_cases/` through the unit of work and answers the result. A change names who acted
(`self.actor.current(default)`, common/audit.py) and its use case records the fact in the
company's audit trail in the change's own transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from marshmallow import ValidationError
from nameko.timer import timer

from common import audit
from common.audit import PRODUCT, SYSTEM, Actor, AuditActor, query_from
from common.clock import Clock
from common.db import Database
from common.errors import PortalError, validation_error
from common.events import EventBus
from common.handlers import Poison, reliable_handler
from common.idempotency import Requests
from common.jws import raw_private
from common.metrics import ACTIVATION_RESULT, Metrics
from common.outbox import PublishLater
from common.rpc import BusCaller, RpcClient, rpc
from common.schemas import (
    code_arg,
    customer_id_arg,
    license_id_arg,
    load,
    optional_customer_id_arg,
    receipt_number_arg,
)
from common.timers import configured_timer
from common.unit_of_work import UnitOfWork
from services.licensing import domain, schemas, views
from services.licensing.crypto import VALIDATION_TYP, BadSignature, b64url
from services.licensing.dependencies import LicensingKeys
from services.licensing.models import AuditEvent, EventOutbox, HandledRequest
from services.licensing.repository import LicensingRepository
from services.licensing.use_cases import (
    activations,
    expiry,
    leases,
    licenses,
    payments,
    products,
)

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
EXPIRY_SCAN_DEFAULT_SECONDS = 3600.0
LEASE_SCAN_DEFAULT_SECONDS = 60.0


class LicensingService:
    name = "licensing"

    db = Database("licensing", MIGRATIONS)
    events = EventBus()
    # publishes an activation's `installation_activated` after the answer (common/outbox.py)
    later = PublishLater()
    keys = LicensingKeys()
    auth = RpcClient("auth")
    # movable like billing's: integration tests and demos let leases lapse without waiting
    clock = Clock("LICENSING_CLOCK_OFFSET_SECONDS")
    caller = BusCaller()
    request = Requests()
    actor = AuditActor()
    # validations are counted by the gateway, which answers most of them itself
    metrics = Metrics(outbox=True, business={"activate": ACTIVATION_RESULT})

    @property
    def _uow(self) -> UnitOfWork[LicensingRepository]:
        return UnitOfWork(
            self.db,
            LicensingRepository,
            EventOutbox,
            self.events,
            ledger=HandledRequest,
            audit_table=AuditEvent,
            later=self.later,
        )

    def _as_company(
        self, use_case: Callable[..., Any], customer_id: str | None, license_id: str, subject: Any
    ) -> Any:
        """`use_case(repo, license_id, customer_id, subject, actor, now)` once per request
        (`subject` a part of its key), by the portal user of `customer_id`, or staff (None)."""
        once = self.request.once(customer_id, license_id, subject)
        return self._uow.run(
            use_case,
            license_id,
            customer_id,
            subject,
            self.actor.current(Actor("staff" if customer_id is None else "user")),
            self.clock.now(),
            once=once,
        )

    def _authorize(
        self,
        data: dict[str, Any],
        now: datetime,
        step: activations.Step,
        installation_id: str | None = None,
    ) -> Any:
        """`activations.authorize` of a product's call (`data` with `license_id`,
        `password`, `client_address`): `step` runs once its password is right."""
        return activations.authorize(
            self._uow,
            self.auth.verify_company_password,
            self.keys.box,
            data["license_id"],
            data["password"],
            now,
            step,
            installation_id,
            data["client_address"],
        )

    @rpc
    def ping(self) -> dict[str, str]:
        """Readiness: `{"service": "licensing", "status": "ok"}` once the database answers."""
        self.db.ping()
        return {"service": self.name, "status": "ok"}

    # --- products and licenses (staff, portal) ------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def create_product(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Staff: `{"code": "CAD-Pro", "name": "CAD Pro"}` → `{"code": "cad-pro", "name":
        "CAD Pro", "active": true}` (codes in any case, stored in lower case);
        `product_exists`."""
        data = load(schemas.CreateProduct(), payload)
        once = self.request.once(None, data)
        return self._uow.run(products.create_product, data, self.clock.now(), once=once)

    @rpc(expected_exceptions=PortalError)
    def add_product_feature(self, product_code: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Staff: `("cad-pro", {"code": "Steel", "name": "Steel design"})` → the product,
        `{"code": "cad-pro", "name": "CAD Pro", "active": true, "features": [{"code":
        "steel", "name": "Steel design"}]}` (codes stored in lower case);
        `product_not_found`, `feature_exists` (409)."""
        code = code_arg(product_code)
        data = load(schemas.AddProductFeature(), payload)
        once = self.request.once(None, code, data)
        return self._uow.run(products.add_product_feature, code, data, self.clock.now(), once=once)

    @rpc(expected_exceptions=PortalError)
    def get_product(self, code: str) -> dict[str, Any]:
        """`"CAD-PRO"` → `{"code": "cad-pro", "name": "CAD Pro", "active": true,
        "features": [{"code": "steel", "name": "Steel design"}]}` (active false: archived,
        off sale; features by code); `product_not_found`."""
        return self._uow.read(products.get_product, code_arg(code))

    @rpc(expected_exceptions=PortalError)
    def list_products(self, include_archived: bool = False) -> list[dict[str, Any]]:
        """→ `[{"code": "cad-pro", "name": "CAD Pro", "active": true, "features": [{"code",
        "name"}]}, ...]`, by code: the
        products on sale, or every product with `include_archived=True`."""
        query = load(schemas.ListProducts(), {"include_archived": include_archived})
        return self._uow.read(products.list_products, query["include_archived"])

    @rpc(expected_exceptions=PortalError)
    def archive_product(self, code: str) -> dict[str, Any]:
        """Staff: `"cad-pro"` → the product with `active: false`, off sale at once (no new
        licenses or purchases); its licenses and installations go on working. Again: the
        same answer. `product_not_found`."""
        code = code_arg(code)
        once = self.request.once(None, code)
        return self._uow.run(products.set_archived, code, True, self.clock.now(), once=once)

    @rpc(expected_exceptions=PortalError)
    def unarchive_product(self, code: str) -> dict[str, Any]:
        """Staff: `"cad-pro"` → the product with `active: true`, on sale again."""
        code = code_arg(code)
        once = self.request.once(None, code)
        return self._uow.run(products.set_archived, code, False, self.clock.now(), once=once)

    @rpc(expected_exceptions=PortalError)
    def issue_license(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Staff: `{"customer_id": "c4829113", "product": "CAD-PRO", "seats": 5,
        "expires_at": "2027-12-31" | ISO date-time | null, "features": ["steel"] (optional),
        "force": false, "model": "node_locked" | "floating", "lease_seconds": 900,
        "max_borrow_days": 7}` → the license (publishes `license_issued`). IDs and codes in
        any case; a date means through the end of that day (UTC); null: perpetual. The lease
        terms only with `model: floating` (60-86400 s, default 900; 0-90 days, default 7;
        given for a node-locked license: `validation_error` naming them).

        → `{"license_id": "L-7KQX-M2PD", "customer_id": "C4829113", "product": {"code",
        "name"}, "seats", "seats_in_use": 0, "expires_at", "suspended_at": null,
        "suspension_reason": null, "suspension_cause": null, "status": "active", "created_at",
        "features": [{"code": "steel", "name": "Steel design"}], "model": "floating",
        "lease_seconds": 900, "max_borrow_days": 7}` (the terms null when node-locked).
        `company_not_found` (asked of auth), `product_not_found`, `unknown_feature` (422,
        naming it); unless `force`: `product_archived` (409), `expires_in_past` (422).
        """
        data = load(schemas.IssueLicense(), payload)
        self.auth.get_company(data["customer_id"])
        once = self.request.once(None, data)
        return self._uow.run(
            licenses.issue_license,
            self.keys.box,
            data,
            self.actor.current(SYSTEM),
            self.clock.now(),
            once=once,
        )

    @rpc(expected_exceptions=PortalError)
    def get_license(
        self, license_id: str, customer_id: str | None = None, reveal_password: bool = True
    ) -> dict[str, Any]:
        """`("L-7KQX-M2PD", "C4829113", reveal_password=True)` → the license with
        `activation_password`, `seats_in_use` and `installations` (newest first), `leases`
        and `usage`. IDs in any case. A floating license's `seats_in_use` counts its live
        leases, `leases` lists them (oldest first, as `list_leases`) and `usage` is
        `{"peak_30d": 7, "days": [{"date": "2026-12-02", "peak": 7}]}` (the last 30 days,
        oldest first, days with a record only); node-locked: `leases: []`, `usage: null`.

        With `customer_id`, another company's license is `license_not_found`, as is a
        license that does not exist. `reveal_password=False`: `activation_password` is
        null (a viewer's or billing user's page). The password shown to a portal *user*
        (the actor in the context data) is `activation_password_viewed` in the company's
        audit trail, once per request; staff, billing and the system read without a trace.
        """
        self.caller.check_scope(customer_id)
        query = load(schemas.LicenseQuery(), {"reveal_password": reveal_password})
        license_id = license_id_arg(license_id)
        customer_id = optional_customer_id_arg(customer_id)
        actor = self.actor.current(SYSTEM)
        reveal = query["reveal_password"]
        args = (self.keys.box, license_id, customer_id, reveal, actor, self.clock.now())
        if domain.password_view_audited(reveal, actor.type):
            # a write (its trail entry), once per request
            once = self.request.once(customer_id, license_id)
            detail = self._uow.run(licenses.show_license, *args, once=once)
        else:
            detail = self._uow.read(licenses.show_license, *args).result
        return licenses.open_detail(self.keys.box, detail)

    @rpc(expected_exceptions=PortalError)
    def list_licenses(self, customer_id: str) -> list[dict[str, Any]]:
        """`"C4829113"` → `[{license_id, product: {code, name}, nickname, note, seats,
        seats_in_use, expires_at, status, suspension_reason, suspension_cause, model,
        lease_seconds, max_borrow_days, …}]`, oldest first (no activation passwords; a
        floating license's `seats_in_use`: its live leases; `suspension_cause` "staff" or
        "payment_disputed" while suspended, else null; `nickname`, `note`: the company's
        labels, `label_license`)."""
        return self._uow.read(
            licenses.list_licenses, customer_id_arg(customer_id), self.clock.now()
        )

    @rpc(expected_exceptions=PortalError)
    def list_installations(
        self, license_id: str, customer_id: str | None = None
    ) -> list[dict[str, Any]]:
        """→ `[{installation_id, machine_name, status, activated_at, last_seen_at,
        deactivated_at, deactivated_by}]`, newest first; `license_not_found`."""
        self.caller.check_scope(customer_id)
        return self._uow.read(
            licenses.list_installations,
            license_id_arg(license_id),
            optional_customer_id_arg(customer_id),
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
        "at", "installation_id", "machine_name", "source", "reason", "actor": {"type":
        "user", "user_id": "U-7KQX-M2PD", "email": "ada@acme.test"}}], "next_before": "812"
        | null}`; pass `next_before` as `before` for the next (older) page. `actor.type` is
        product, user, staff or system (rows older than the audit trail: what `source`
        implied, a portal user without ID or email).
        """
        self.caller.check_scope(customer_id)
        query = load(schemas.HistoryQuery(), {"limit": limit, "before": before})
        return self._uow.read(
            licenses.history,
            license_id_arg(license_id),
            optional_customer_id_arg(customer_id),
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
        (`source: "staff"`). `license_not_found`, `installation_not_found`. Audited as
        `installation_deactivated` by the context's actor (else what `source` implies).
        """
        self.caller.check_scope(customer_id)
        data = load(
            schemas.DeactivateInstallation(),
            {"installation_id": installation_id, "source": source},
        )
        customer_id = optional_customer_id_arg(customer_id)
        license_id = license_id_arg(license_id)
        once = self.request.once(customer_id, license_id, data)
        return self._uow.run(
            activations.deactivate_installation,
            license_id,
            customer_id,
            data["installation_id"],
            data["source"],
            self.actor.current(Actor(domain.actor_type_of_source(data["source"]))),
            self.clock.now(),
            once=once,
        )

    @rpc(expected_exceptions=PortalError)
    def rotate_activation_password(
        self, license_id: str, customer_id: str | None = None
    ) -> dict[str, Any]:
        """`("L-7KQX-M2PD", "C4829113")` → `{"license_id", "activation_password":
        "K7QX-M2PD-9TRW-H4NC"}`; the old password stops working with this answer. A
        redelivered request answers the same new password (it rotates once)."""
        self.caller.check_scope(customer_id)
        customer_id = optional_customer_id_arg(customer_id)
        license_id = license_id_arg(license_id)
        once = self.request.once(customer_id, license_id)
        sealed = self._uow.run(
            licenses.rotate_activation_password,
            self.keys.box,
            license_id,
            customer_id,
            self.actor.current(SYSTEM),
            self.clock.now(),
            once=once,
        )
        return views.password_view(
            sealed["license_id"], self.keys.box.decrypt(sealed["sealed_password"])
        )

    @rpc(expected_exceptions=PortalError)
    def label_license(
        self, license_id: str, customer_id: str | None, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """The company's own name and note of a license, to tell it from its siblings.

        `("L-7KQX-M2PD", "C4829113", {"nickname": "Design office", "note": "Renewed by
        finance each December."})` → the license (as `list_licenses` answers it) with
        `nickname` and `note`. Both keys optional: a key left out stays as it is; trimmed,
        and "" or null clears it. `validation_error` naming the field: not a string, a
        nickname over 60 characters (one line) or a note over 500. `customer_id` None:
        staff. `license_not_found`. Once per request; audited `license_labelled` (`details`:
        what changed) when something changed.
        """
        self.caller.check_scope(customer_id)
        data = load(schemas.LabelLicense(), payload)
        return self._as_company(
            licenses.label_license,
            optional_customer_id_arg(customer_id),
            license_id_arg(license_id),
            data,
        )

    @rpc(expected_exceptions=PortalError)
    def change_license_features(self, license_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Staff: `("L-7KQX-M2PD", {"add": ["steel"], "remove": ["dynamic"]})` (both
        optional, codes in any case; a code in both is removed) → the license with
        `features: [{code, name}]`. Publishes `license_features_changed` {customer_id,
        license_id, product, features, added, removed, changed_by} only when something
        changed (audited as such). `license_not_found`, `unknown_feature` (422, naming
        the code its product lacks)."""
        data = load(schemas.ChangeLicenseFeatures(), payload)
        license_id = license_id_arg(license_id)
        once = self.request.once(None, license_id, data)
        return self._uow.run(
            licenses.change_license_features,
            license_id,
            data["add"],
            data["remove"],
            self.actor.current(Actor("staff")),
            self.clock.now(),
            once=once,
        )

    @rpc(expected_exceptions=PortalError)
    def suspend_license(self, license_id: str, reason: str | None = None) -> dict[str, Any]:
        """Staff: `("L-7KQX-M2PD", "Payment disputed; call us.")` → the license with
        `status: "suspended"`, `suspension_reason` (≤ 500 characters, optional) and
        `suspension_cause: "staff"`; activations are refused (403). Publishes
        `license_suspended` {license_id, customer_id, product, reason}. Again: only the
        reason changes, no second event. A license suspended for a disputed payment becomes
        staff's: winning the dispute no longer resumes it."""
        data = load(schemas.Suspend(), {"reason": reason})
        license_id = license_id_arg(license_id)
        once = self.request.once(None, license_id, data)
        return self._uow.run(
            licenses.suspend,
            license_id,
            data["reason"],
            self.actor.current(SYSTEM),
            self.clock.now(),
            once=once,
        )

    @rpc(expected_exceptions=PortalError)
    def resume_license(self, license_id: str) -> dict[str, Any]:
        """Staff: `"L-7KQX-M2PD"` → the license with its status from its expiry and
        `suspension_reason: null`; publishes `license_resumed` when it was suspended."""
        license_id = license_id_arg(license_id)
        once = self.request.once(None, license_id)
        return self._uow.run(
            licenses.resume, license_id, self.actor.current(SYSTEM), self.clock.now(), once=once
        )

    @rpc(expected_exceptions=PortalError)
    def extend_license(
        self, license_id: str, expires_at: str, force: bool = False
    ) -> dict[str, Any]:
        """Staff: `("L-7KQX-M2PD", "2028-12-31", False)` → the license (publishes
        `license_extended` with `previous_expires_at`). Unless `force`:
        `license_is_perpetual` (it would get an end date), `extension_shortens` (earlier
        than its expiry), `expires_in_past` (a day already over), all 422."""
        data = load(schemas.Extend(), {"expires_at": expires_at, "force": force})
        license_id = license_id_arg(license_id)
        once = self.request.once(None, license_id, data)
        return self._uow.run(
            licenses.extend,
            license_id,
            data["expires_at"],
            data["force"],
            self.actor.current(SYSTEM),
            self.clock.now(),
            once=once,
        )

    # --- the audit trail ------------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def list_audit_events(
        self, customer_id: str, query: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """A page of the company's audit trail of licensing, newest first.

        `("C4829113", {"limit": 50, "before": "<next_before>", "user_id": "U-7KQX-M2PD",
        "action": "activation_password_viewed", "since": "2026-12-01", "until":
        "2026-12-02T12:00:00+00:00"})` (every key optional) → `[{"event_id", "at",
        "actor": {"type": "user", "user_id", "email"}, "action", "target": {"type":
        "license", "id": "L-7KQX-M2PD"}, "details": {"installation_id", "machine_name"}}]`.
        The gateway merges it with auth's and billing's pages (`common.audit.merge`).
        `validation_error` naming a bad key.
        """
        customer_id = customer_id_arg(customer_id)
        audit_query = query_from(customer_id, query if isinstance(query, dict) else {})
        return self._uow.read(audit.list_events, audit_query)

    # --- the product's activation API ---------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def activate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """`{"license_id": "L-7KQX-M2PD", "password": "K7QX-M2PD-9TRW-H4NC" | the company
        password, "installation_id": "…", "machine_name": "…", "product": "cadpro"
        (optional), "client_address": "203.0.113.7" (optional: the caller's address, for
        throttling)}` → `{"activation": {installation_id, machine_name, status,
        activated_at, license_id, product, expires_at, license_status, …}, "certificate":
        "<compact JWS>", "created": true | false}` (false: already active here, no new seat).

        `invalid_credentials` (wrong password or unknown license alike),
        `too_many_attempts` (`details.retry_after`), `wrong_product` (409: `product` is not
        the license's, checked right after the password, no seat taken, `details:
        {license_id, product, requested}`), `license_expired`, `license_suspended`,
        `no_seats_available` (`details.machines`), `floating_license` (409: check out a
        lease instead).
        """
        data = load(schemas.Activate(), payload)
        now = self.clock.now()
        actor = self.actor.current(PRODUCT)
        result = self._authorize(
            data,
            now,
            lambda repo, license, seats: activations.activate(
                repo, license, data, now, seats, actor
            ),
            data["installation_id"],
        )
        # signed after the commit: the license row lock is not held for it
        return views.activation_reply(result, self.keys.keyring.sign(result["claims"]))

    @rpc(expected_exceptions=PortalError)
    def deactivate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The product releases its seat: `{"license_id", "password", "installation_id",
        "client_address" (optional)}` →
        the installation (`deactivated_by: "product"`); again: the same answer.
        `invalid_credentials`, `too_many_attempts`, `installation_not_found`."""
        data = load(schemas.Deactivate(), payload)
        now = self.clock.now()
        actor = self.actor.current(PRODUCT)
        return self._authorize(
            data,
            now,
            lambda repo, license, _seats: activations.deactivate(
                repo, license, data["installation_id"], "product", actor, now
            ),
        )

    @rpc(expected_exceptions=PortalError)
    def activate_offline(
        self, customer_id: str | None, license_id: str, request_text: Any
    ) -> dict[str, Any]:
        """An air-gapped machine's activation request file (its text) → the activation and
        the response file to carry back.

        `("C4829113", "L-7KQX-M2PD", '{"type": "activation_request", "version": 1,
        "license_id": "L-7KQX-M2PD", "installation_id": "…", "machine_name": "CAD-WS-07",
        "product": "cadpro", "requested_at": "2026-12-02T10:00:00+00:00", "nonce": "…"}')` →
        `{"activation": {…as online, "source": "offline"}, "certificate": "<compact JWS, as
        online, with the claims source: offline and the request's nonce>",
        "response": "<activation_response file text>", "created": true | false}` (false:
        already active there, no new seat; a fresh response all the same). The session is
        the authorisation (the gateway checked role and company); `customer_id` None: staff
        (any company, refused to the gateway). Seat rules, refusals, history (source
        offline), `installation_activated` as online; audited `offline_activation`.
        `invalid_request` (422, `details.problem`, `details.field`), `license_not_found`,
        `license_expired`, `license_suspended`, `no_seats_available`, `floating_license`.
        """
        self.caller.check_scope(customer_id)
        customer_id = optional_customer_id_arg(customer_id)
        license_id = license_id_arg(license_id)
        once = self.request.once(customer_id, license_id, request_text)
        result = self._uow.run(
            activations.activate_offline,
            self.keys.offline,
            license_id,
            customer_id,
            request_text,
            self.actor.current(Actor("staff" if customer_id is None else "user")),
            self.clock.now(),
            once=once,
        )
        # signed after the commit: the license row lock is not held for it
        certificate = self.keys.keyring.sign(result["claims"])
        activation = result["activation"]
        secret = self.keys.offline.secret(
            activation["license_id"], activation["installation_id"], result["nonce"]
        )
        return views.offline_reply(result, certificate, secret)

    @rpc(expected_exceptions=PortalError)
    def deactivate_offline(
        self, customer_id: str | None, license_id: str, proof_text: Any
    ) -> dict[str, Any]:
        """An air-gapped machine's deactivation proof file (its text) → the installation,
        `status: "deactivated"`, `deactivated_by: "offline"`; the seat is free at once.

        `("C4829113", "L-7KQX-M2PD", '{"type": "deactivation_proof", "version": 1,
        "license_id": "L-7KQX-M2PD", "installation_id": "…", "deactivated_at":
        "2026-12-09T08:00:00+00:00", "secret": "<the response's deactivation_secret>"}')`.
        Valid once; `invalid_proof` (422: malformed, forged, reused, another license's),
        `license_not_found`. Audited `installation_deactivated` (`source: "offline"`).
        """
        self.caller.check_scope(customer_id)
        return self._as_company(
            activations.deactivate_offline,
            optional_customer_id_arg(customer_id),
            license_id_arg(license_id),
            proof_text,
        )

    @rpc(expected_exceptions=PortalError)
    def validate(self, certificate: Any, nonce: str | None = None) -> dict[str, Any]:
        """`("<compact JWS>", "q3Vd…" | None)` → `{"valid": true, "code": "VALID",
        "license_id", "installation_id", "expires_at", "features": ["steel"],
        "deactivated_at", "deactivated_by", "suspended_at", "suspension_reason",
        "signed_answer"}` (`features`: the license's as of now, `[]` unless VALID;
        `deactivated_*` only for DEACTIVATED, `suspended_at` and `suspension_reason` only
        for SUSPENDED, else null); code
        one of VALID, EXPIRED, SUSPENDED, DEACTIVATED, LEASE_EXPIRED, BAD_SIGNATURE
        (malformed, unknown key or tampered: never an error). `signed_answer`: the same
        answer as a compact JWS (EdDSA, the certificate signing key, `typ:
        license-validation+jwt`) with `iat` and the `nonce` (1-64 printable ASCII;
        otherwise `validation_error`).

        A lease's certificate (its claims carry `lease_id`) is VALID while the lease is live
        and its license valid, SUSPENDED/EXPIRED for the license, else LEASE_EXPIRED; its
        answer adds `"lease_id": "LS-7KQX-M2PD"` and `"lease_expires_at"`."""
        query = load(schemas.ValidationNonce(), {"nonce": nonce})
        now = self.clock.now()
        try:
            claims = self.keys.keyring.verify(certificate)
        except BadSignature:
            answer = views.validation_view(domain.BAD_SIGNATURE)
        else:
            use_case = leases.validate if "lease_id" in claims else activations.validate
            # a read, retried once on a dropped connection: its only write (an hourly
            # `last_seen_at`) is guarded, so running it twice writes it once
            answer = self._uow.read(use_case, claims, now)
        signed = self.keys.keyring.sign(
            domain.validation_claims(answer, now, query["nonce"]), typ=VALIDATION_TYP
        )
        return views.signed_validation(answer, signed)

    # --- the gateway's validation read model (gateway/validation.py, docs/architecture.md)

    @rpc(expected_exceptions=PortalError)
    def validation_facts(self, license_id: Any, installation_id: Any) -> dict[str, Any] | None:
        """Gateway only: `("L-7KQX-M2PD", "<installation ID>")` (a verified certificate's
        claims, as they are) → `{"expires_at", "suspended_at", "suspension_reason",
        "features": ["steel"], "active": true, "deactivated_at", "deactivated_by",
        "last_seen_at"}` (times ISO 8601 or null; `deactivated_*` only when not active),
        or null for no such license: what `validate` answers from (common/validation.py).
        Marks the installation seen, as `validate` does. `forbidden` for another caller."""
        self.caller.check_kind("gateway")
        pair = schemas.load_seen_pair([license_id, installation_id])
        return self._uow.read(activations.validation_facts, *pair, self.clock.now())

    @rpc(expected_exceptions=PortalError)
    def mark_seen(self, seen: Any) -> dict[str, int]:
        """Gateway only: `[["L-7KQX-M2PD", "<installation ID>"], …]` (at most
        `schemas.MAX_SEEN`), the installations the gateway answered from its read model
        since its last call → `{"active": <how many were active>}`: each active one's
        `last_seen_at` becomes now unless younger than an hour (guarded: calling it twice
        writes once). `validation_error` for a malformed list; `forbidden` for another caller."""
        self.caller.check_kind("gateway")
        pairs = schemas.load_seen(seen)
        active = self._uow.read(activations.mark_seen, pairs, self.clock.now())
        return {"active": active}

    @rpc(expected_exceptions=PortalError)
    def validation_keys(self) -> dict[str, Any]:
        """Gateway only: `{"signing_key": "<base64url of the raw Ed25519 private key>",
        "kid", "jwks": <signing_keys()>}`: the gateway signs the validation answers of its
        read model with the certificate signing key, as `validate` does (the trust this
        moves is in docs/architecture.md). `forbidden` for every other caller, staff
        included: nobody else needs the private key over the bus."""
        self.caller.check_kind("gateway")
        keyring = self.keys.keyring
        return {
            "signing_key": b64url(raw_private(keyring.signing_key)),
            "kid": keyring.signing_kid,
            "jwks": keyring.jwks(),
        }

    # --- the product's lease API (floating licenses) ----------------------------------------

    @rpc(expected_exceptions=PortalError)
    def checkout(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A machine takes a seat of a floating license.

        `{"license_id": "L-7KQX-M2PD", "password": "K7QX-M2PD-9TRW-H4NC" | the company
        password, "installation_id": "…", "machine_name": "CAD-WS-07", "borrow_until":
        "2026-12-09T18:00:00+00:00" | "2026-12-09" | null, "product": "cadpro" (optional),
        "client_address": "203.0.113.7" (optional)}` → `{"lease": {"lease_id":
        "LS-7KQX-M2PD", "license_id", "installation_id", "machine_name", "started_at",
        "expires_at", "last_heartbeat_at", "borrowed": false, "borrowed_until": null,
        "status": "live", "ended_at": null}, "lease_token": "<43 characters, answered only
        here>", "certificate": "<compact JWS: exp is the lease's expiry, with lease_id,
        model: floating, borrowed>", "created": true}`. `created: false`: this
        installation held a live lease already; the same lease, with a new token (the old
        one stops working) and a new expiry.

        Credentials, throttling and refusals as `activate`: `invalid_credentials`,
        `too_many_attempts`, `wrong_product`, `license_expired`, `license_suspended`; also
        `node_locked_license` (409: activate it instead), `no_seats_available` (409,
        `details: {"license_id", "seats", "machines": [{"machine_name", "expires_at",
        "borrowed"}]}`), `borrow_not_allowed` (422, `details: {"max_borrow_days",
        "latest"}`), `validation_error` for a `borrow_until` not in the future.
        """
        data = load(schemas.Checkout(), payload)
        now = self.clock.now()
        if data["borrow_until"] is not None and data["borrow_until"] <= now:
            raise validation_error({"borrow_until": ["Must be in the future."]})
        actor = self.actor.current(PRODUCT)
        result = self._authorize(
            data,
            now,
            lambda repo, license, _seats: leases.checkout(repo, license, data, now, actor),
        )
        # signed after the commit: the license row lock is not held for it
        return views.checkout_reply(result, self.keys.keyring.sign(result["claims"]))

    @rpc(expected_exceptions=PortalError)
    def heartbeat(self, lease_id: Any, lease_token: Any) -> dict[str, Any]:
        """The machine keeps its seat: `("LS-7KQX-M2PD", "<lease token>")` → `{"lease":
        {…as checkout, "expires_at" one lease period from now (never earlier than it was,
        never past the license's expiry), "last_heartbeat_at"}, "certificate": "<compact
        JWS, exp the new expiry>"}`.

        `invalid_lease_token` (401: an unknown lease and a wrong token alike),
        `lease_expired` (410, `details: {"lease_id", "reason": "expired" | "revoked" |
        "checked_in", "ended_at"}`: check out again), `license_suspended` /
        `license_expired` (403, the lease untouched). No license lock, no history.
        """
        data = load(schemas.LeaseCredentials(), {"lease_id": lease_id, "lease_token": lease_token})
        result = self._uow.run(
            leases.heartbeat, data["lease_id"], data["lease_token"], self.clock.now()
        )
        return views.heartbeat_reply(result, self.keys.keyring.sign(result["claims"]))

    @rpc(expected_exceptions=PortalError)
    def checkin(self, lease_id: Any, lease_token: Any) -> dict[str, Any]:
        """The machine gives its seat back: `("LS-7KQX-M2PD", "<lease token>")` → the lease,
        `status: "checked_in"`, `ended_at`; the seat is free at once (history
        `lease_checked_in`). A lease that already ended: the lease unchanged, no error.
        `invalid_lease_token` (401)."""
        data = load(schemas.LeaseCredentials(), {"lease_id": lease_id, "lease_token": lease_token})
        return self._uow.run(
            leases.checkin,
            data["lease_id"],
            data["lease_token"],
            self.actor.current(PRODUCT),
            self.clock.now(),
        )

    @rpc(expected_exceptions=PortalError)
    def revoke_lease(
        self, customer_id: str | None, license_id: str, lease_id: Any
    ) -> dict[str, Any]:
        """End a machine's lease from the portal (an owner or license admin) or by staff.

        `("C4829113", "L-7KQX-M2PD", "LS-7KQX-M2PD")` → the lease, `status: "revoked"`,
        `ended_at`; its next heartbeat gets `lease_expired` (reason revoked). `customer_id`
        None: staff. Already ended: the lease unchanged. Audited and published
        `lease_revoked` {customer_id, license_id, lease_id, installation_id, machine_name,
        revoked_by}. `license_not_found`, `lease_not_found` (404).
        """
        self.caller.check_scope(customer_id)
        return self._as_company(
            leases.revoke_lease,
            optional_customer_id_arg(customer_id),
            license_id_arg(license_id),
            load(schemas.LeaseRef(), {"lease_id": lease_id})["lease_id"],
        )

    @rpc(expected_exceptions=PortalError)
    def list_leases(
        self, license_id: str, customer_id: str | None = None, include_ended: bool = False
    ) -> list[dict[str, Any]]:
        """`("L-7KQX-M2PD", "C4829113", include_ended=False)` → `[{"lease_id", "license_id",
        "installation_id", "machine_name", "started_at", "expires_at", "last_heartbeat_at",
        "borrowed", "borrowed_until", "status", "ended_at"}]`: the live leases, oldest
        first; `include_ended`: then the latest 100 ended ones (newest first).
        `license_not_found` (a node-locked license has none: `[]`)."""
        self.caller.check_scope(customer_id)
        query = load(schemas.ListLeases(), {"include_ended": include_ended})
        return self._uow.read(
            leases.list_leases,
            license_id_arg(license_id),
            optional_customer_id_arg(customer_id),
            query["include_ended"],
            self.clock.now(),
        )

    @rpc
    def signing_keys(self) -> dict[str, Any]:
        """The JWKS: `{"keys": [{"kty": "OKP", "crv": "Ed25519", "x", "kid", "use": "sig",
        "alg": "EdDSA"}]}`, the signing key first, then retired keys that still verify."""
        return self.keys.keyring.jwks()

    # --- billing's payments -------------------------------------------------------------

    @reliable_handler("billing", "payment_succeeded")
    def on_payment_succeeded(self, payload: Any) -> None:
        """A paid purchase issues a license, a paid renewal extends one; once per event.

        A payment that cannot be delivered (product unknown or archived; license unknown,
        suspended or another company's) publishes `payment_not_applied` {receipt_number,
        customer_id, reason, message} once, and billing refunds it. Malformed: parked.
        """
        event = self._load_event(schemas.PaymentSucceeded(), payload)
        result = self._uow.run(payments.apply_payment, self.keys.box, event, self.clock.now())
        if result["status"] == domain.PAYMENT_NOT_APPLIED:
            log.info(
                "payment %s of %s not applied (%s): billing is told to refund it",
                result["receipt_number"],
                result["customer_id"],
                result["reason"],
            )

    @reliable_handler("billing", "payment_disputed")
    def on_payment_disputed(self, payload: Any) -> None:
        """The customer's bank disputes a payment: the company's active license it paid for
        is suspended until the dispute is resolved (`license_suspended`, reason in words,
        `suspension_cause: "payment_disputed"`); once per receipt. Malformed: parked."""
        event = self._load_event(schemas.PaymentDisputed(), payload)
        self._uow.run(payments.dispute_payment, event, self.clock.now())

    @reliable_handler("billing", "payment_dispute_closed")
    def on_payment_dispute_closed(self, payload: Any) -> None:
        """A dispute closed: won, the license its dispute suspended is resumed
        (`license_resumed`); lost, it stays suspended. Once per receipt. Malformed: parked."""
        event = self._load_event(schemas.PaymentDisputeClosed(), payload)
        self._uow.run(payments.close_dispute, event, self.clock.now())

    @staticmethod
    def _load_event(schema: Any, payload: Any) -> dict[str, Any]:
        """A consumed event loaded, or `Poison` (the handler parks it)."""
        try:
            return schema.load(payload if isinstance(payload, dict) else {})
        except ValidationError as exc:
            raise Poison(f"invalid payload: {exc.messages}") from exc

    def park(self, source: str, event_type: str, payload: Any, reason: str) -> None:
        """`@reliable_handler`'s poison: keep the payment event for staff, never raise it."""
        self._uow.run(payments.park, payload, reason, self.clock.now())

    @rpc(expected_exceptions=PortalError)
    def license_for_payment(self, receipt_number: str, customer_id: str) -> dict[str, Any] | None:
        """The license a paid purchase or renewal issued or extended, once it has.

        `("R-2026-000123", "C4829113")` → `{license_id, customer_id, product: {code, name},
        seats, seats_in_use, expires_at, status, …}`, or null while the payment has not
        been applied yet (or belongs to another company).
        """
        return self._uow.read(
            payments.license_for_payment,
            receipt_number_arg(receipt_number),
            customer_id_arg(customer_id),
            self.clock.now(),
        )

    # --- timers -------------------------------------------------------------------------

    @rpc
    def scan_expiring(self) -> dict[str, int]:
        """Send the due `license_expiring` notices now → `{"sent": 2}` (the timer does this)."""
        return self._uow.run(expiry.expiry_notices, self.clock.now())

    @configured_timer("LICENSING_EXPIRY_SCAN_SECONDS", default=EXPIRY_SCAN_DEFAULT_SECONDS)
    def expiry_scan(self) -> None:
        """`license_expiring` at 30, 7 and 1 days before expiry, once per license and
        threshold however many instances scan; also forgets stale failed attempts."""
        self._uow.run(expiry.scan, self.clock.now())

    @rpc
    def scan_leases(self) -> dict[str, int]:
        """Mark lapsed leases expired now → `{"expired": 3}` (the timer does this; their
        seats were free at their expiry already)."""
        return self._scan_leases()

    @configured_timer("LICENSING_LEASE_SCAN_SECONDS", default=LEASE_SCAN_DEFAULT_SECONDS)
    def lease_scan(self) -> None:
        """History and audit `lease_expired` for each lapsed lease, once however many
        instances scan; today's peak use of each floating license with live leases."""
        self._scan_leases()

    def _scan_leases(self) -> dict[str, int]:
        now = self.clock.now()
        expired = 0
        while True:  # a transaction per batch: row locks are held briefly
            batch = self._uow.run(leases.expire_lapsed, now)["expired"]
            expired += batch
            if batch < leases.EXPIRY_BATCH:
                break
        self._uow.run(leases.record_usage, now)
        return {"expired": expired}

    @timer(interval=5)
    def relay_outbox(self) -> None:
        """Publish events that a crash or a broker outage left in the outbox."""
        self._uow.relay()

    @timer(interval=3600)
    def prune_outbox(self) -> None:
        """Forget events published, and requests handled, long ago."""
        self._uow.prune()
