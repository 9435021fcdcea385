"""The auth service: companies and their users, the company-wide password, sessions,
password resets, invitations, notification preferences, and auth's part of the audit trail."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nameko.timer import timer

from common import audit, settings
from common.audit import AuditActor
from common.clock import Clock
from common.db import Database
from common.errors import PortalError
from common.events import EventBus
from common.idempotency import Requests
from common.metrics import Metrics
from common.rpc import BusCaller, rpc
from common.schemas import TOKEN_MAX, customer_id_arg, load
from common.timers import configured_timer
from common.unit_of_work import UnitOfWork
from services.auth import domain, schemas, use_cases, users
from services.auth.models import AuditEvent, EventOutbox, HandledRequest
from services.auth.repository import AuthRepository
from services.auth.schemas import (
    LOGIN_MAX,
    PASSWORD_MAX,
    REQUEST_ID_MAX,
    address_arg,
    lookup_arg,
    notice_arg,
    query_arg,
    user_id_arg,
)

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_RESET_POLL_SECONDS = 1.0
# how long one tick of `resolve_reset_requests` may keep taking batches off the queue; the
# timer waits for the tick, so logins on this instance are never held up much longer
RESOLVE_BUDGET_SECONDS = 0.5
RESET_SCOPE_DIGITS = 56  # of the token's hash, in a ledger scope of at most 64 characters


class AuthService:
    name = "auth"

    db = Database("auth", MIGRATIONS)
    events = EventBus()
    clock = Clock()
    caller = BusCaller()
    request = Requests()
    actor = AuditActor()
    metrics = Metrics(outbox=True)

    @property
    def _uow(self) -> UnitOfWork[AuthRepository]:
        return UnitOfWork(
            self.db,
            AuthRepository,
            EventOutbox,
            self.events,
            ledger=HandledRequest,
            audit_table=AuditEvent,
        )

    @rpc
    def ping(self) -> dict[str, str]:
        """Readiness: `{"service": "auth", "status": "ok"}` once the database answers."""
        self.db.ping()
        return {"service": self.name, "status": "ok"}

    @rpc(expected_exceptions=PortalError)
    def create_company(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Create a company; without `password` the contact is emailed a set-password link.

        `{"name": "Acme", "contact_name": "Ada", "contact_email": "ada@acme.test"}`
        → `{"customer_id": "C1234567", "name": ..., "contact_email": ..., "has_password": false}`;
        `email_taken` (409) when another company has the email. A redelivered request
        answers the company it created (common/idempotency.py).
        """
        data = load(schemas.CreateCompany(), payload)
        # the password stays out of the ledger: a fast hash of it is a guessing target
        body = {**data, "password": data.get("password") is not None}
        once = self.request.once(None, body)
        return self._uow.run(use_cases.create_company, data, self.clock.now(), once=once)

    @rpc(expected_exceptions=PortalError)
    def update_company(self, customer_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Staff: change a company's name, contact name and/or contact email.

        `("c1234567", {"contact_email": "Grace@Acme.test"})` → the company, as `get_company`
        answers it (`"contact_email": "grace@acme.test"`). At least one field;
        `company_not_found` (404); `email_taken` (409) when another company has the email.
        A new contact email voids the password links sent to the old one: `resend_invite`
        sends a fresh one.
        """
        self.caller.check_kind("staff")
        customer_id = customer_id_arg(customer_id)
        data = load(schemas.UpdateCompany(), payload)
        once = self.request.once(None, customer_id, data)
        return self._uow.run(
            use_cases.update_company, customer_id, data, self.clock.now(), once=once
        )

    @rpc(expected_exceptions=PortalError)
    def resend_invite(self, customer_id: str) -> dict[str, Any]:
        """Staff: email a company without a password a fresh set-password link.

        `"c1234567"` → `{"customer_id": "C1234567", "contact_email": "ada@acme.test",
        "sent": true}`; the links sent before stop working, and `company_invited` has notify
        email the new one. `company_not_found` (404); `password_already_set` (409) when the
        company has a password (its contact resets it with "Forgot password").
        """
        self.caller.check_kind("staff")
        customer_id = customer_id_arg(customer_id)
        once = self.request.once(None, customer_id)
        return self._uow.run(use_cases.resend_invite, customer_id, self.clock.now(), once=once)

    @rpc(expected_exceptions=PortalError)
    def find_companies(self, query: str) -> list[dict[str, Any]]:
        """Companies whose customer ID or email equals `query`, or whose name contains it."""
        return self._uow.read(use_cases.find_companies, query_arg(query))

    @rpc(expected_exceptions=PortalError)
    def get_company(self, customer_id_or_email: str) -> dict[str, Any]:
        """A customer ID or a contact email, either in any case → the company.

        `" c1234567 "` or `"Ada@Acme.test"` → `{"customer_id": "C1234567", "name": "Acme",
        "contact_name": "Ada", "contact_email": "ada@acme.test", "has_password": true,
        "created_at": "2026-11-28T09:30:00+00:00"}`; `company_not_found` (404) otherwise.
        """
        lookup = lookup_arg(customer_id_or_email, LOGIN_MAX)
        return self._uow.read(use_cases.get_company, lookup)

    @rpc(expected_exceptions=PortalError)
    def login(self, payload: dict[str, Any]) -> dict[str, Any]:
        """`{"login": "C1234567" | "ada@acme.test", "password": "...", "client_address":
        "203.0.113.7"}` (the address optional) → a session of the user the login names (a
        customer ID names the company's contact, an email its user).

        → `{"token": "...", "expires_at": "...", "company": {...}, "user": {"user_id":
        "U-7KQX-M2PD", "email": "ada@acme.test", "name": "Ada", "role": "owner"}}`;
        `invalid_credentials` for a wrong password, an unknown login, an invited or a
        disabled user alike (audited `login_failed` when it names a user, `login_succeeded`
        on success); `too_many_attempts` with
        `details.retry_after` (seconds) while the failures of this login from this address,
        or of this address, make it wait (growing delays; another address is not slowed).
        """
        data = load(schemas.Login(), payload)
        return self._uow.run(
            use_cases.login,
            data["login"],
            data["password"],
            data["client_address"],
            self.clock.now(),
        )

    @rpc(expected_exceptions=PortalError)
    def authenticate(self, token: str) -> dict[str, Any]:
        """A session token → its company with its user: `{"customer_id": "C1234567", …,
        "user": {"user_id": "U-7KQX-M2PD", "email": …, "name": …, "role": "owner"}}`;
        `unauthenticated` when missing, expired, revoked, or its user disabled or removed."""
        return self._uow.read(
            use_cases.authenticate, lookup_arg(token, TOKEN_MAX), self.clock.now()
        )

    @rpc(expected_exceptions=PortalError)
    def logout(self, token: str) -> None:
        """Revoke the session of `token` (no error when it is already gone)."""
        self._uow.run(use_cases.logout, lookup_arg(token, TOKEN_MAX), self.clock.now())

    @rpc(expected_exceptions=PortalError)
    def change_password(self, token: str, payload: dict[str, Any]) -> None:
        """`{"current_password", "new_password", "client_address": "203.0.113.7"}` (the
        address optional): changes the session user's password (the contact's is the
        company-wide one); revokes every other session of that user. A redelivered request
        changes nothing twice (and counts no second failure). Audited `password_changed`.

        `invalid_credentials` ("The current password is incorrect.") counts toward the
        login throttle of the company from that address; `too_many_attempts` with
        `details.retry_after` while a delay runs.
        """
        data = load(schemas.ChangePassword(), payload)
        token = lookup_arg(token, TOKEN_MAX)
        now = self.clock.now()
        # the ledger's scope is the session's company (unauthenticated: nothing to record)
        company = self._uow.read(use_cases.authenticate, token, now)
        # the passwords enter the fingerprint only with the session token (256 random bits,
        # stored nowhere as such), so the stored hash cannot be used to guess them
        once = self.request.once(
            company["customer_id"], token, data["current_password"], data["new_password"]
        )
        self._uow.run(
            use_cases.change_password,
            token,
            data["current_password"],
            data["new_password"],
            data["client_address"],
            now,
            once=once,
        )

    @rpc(expected_exceptions=PortalError)
    def request_password_reset(self, payload: dict[str, Any]) -> None:
        """`{"login": ..., "client_address": ...}`: emails a 30-minute reset link if the login
        exists.

        The answer, and the work done before it, are the same whether or not it does: the
        request is queued, and `resolve_reset_requests` looks the login up a moment later.
        Beyond a share per client address (20 per 15 minutes; more for the unknown one) the
        request is answered the same way but not queued.
        """
        data = load(schemas.ResetRequest(), payload)
        self._uow.run(
            use_cases.request_reset, data["login"], data["client_address"], self.clock.now()
        )

    @rpc(expected_exceptions=PortalError)
    def confirm_password_reset(self, payload: dict[str, Any]) -> None:
        """`{"token", "new_password"}`: sets the password once; `invalid_token` otherwise
        (also for an invitation's token: `accept_invitation` takes those).

        Revokes every session of the user: a reset does not log anyone in. A redelivered
        request answers as the first did, not `invalid_token` for the token it used.
        Audited `password_reset`.
        """
        data = load(schemas.ResetConfirm(), payload)
        token = data["token"]
        # no company is known before the token is used: the token (its hash) is the scope,
        # and the raw token in the fingerprint keeps the stored hash from revealing the password
        scope = "reset:" + domain.hash_token(token)[:RESET_SCOPE_DIGITS]
        once = self.request.once(scope, token, data["new_password"])
        self._uow.run(
            use_cases.confirm_reset, token, data["new_password"], self.clock.now(), once=once
        )

    @rpc(expected_exceptions=PortalError)
    def check_password_token(self, token: str) -> dict[str, Any]:
        """Whether a reset, set-up or invitation link works, before its form is filled in;
        the token is not used up (`confirm_password_reset` or `accept_invitation` does that).

        `"<the token from the link>"` → `{"valid": true, "purpose": "reset" | "setup" |
        "invite", "email": "ada@acme.test", "company_name": "Acme"}`. `invalid_token` (as
        confirming answers) with `details.reason`: "used" (or replaced by a newer link, or
        the password was set since), "expired", or "unknown" (nothing else is said of a
        token that names nobody).
        """
        return self._uow.read(use_cases.check_token, lookup_arg(token, TOKEN_MAX), self.clock.now())

    @rpc(expected_exceptions=PortalError)
    def verify_company_password(
        self, customer_id: str, password: str, client_address: str | None = None
    ) -> bool:
        """Whether `password` is the company-wide password of `customer_id` (for activations).

        `("C1234567", "...", "203.0.113.7")` → `true`. Checked and counted exactly like a
        login by that customer ID from `client_address` (None: unknown), so guesses through
        activations and logins share one budget: `too_many_attempts` with
        `details.retry_after` while a delay runs.
        """
        return self._uow.run(
            use_cases.verify_company_password,
            lookup_arg(customer_id, LOGIN_MAX),
            lookup_arg(password, PASSWORD_MAX),
            address_arg(client_address),
            self.clock.now(),
        )

    @rpc(expected_exceptions=PortalError)
    def password_link(self, request_id: str) -> dict[str, Any]:
        """For notify, when it sends a set-up or reset email: a link with a fresh token.

        `"9f3c…"` (the `request_id` of `company_created` or `password_reset_requested`) →
        `{"url": "https://portal.example/reset-password#token=…", "expires_at": "…"}`; for
        the `request_id` of `user_invited` the URL is `…/accept-invitation#token=…`;
        `invalid_token` once the request is unknown, expired or closed (password set);
        `forbidden` to any caller but notify and staff (a link opens the account).
        """
        self.caller.check_kind("notify", "staff")
        return self._uow.run(
            use_cases.password_link,
            lookup_arg(request_id, REQUEST_ID_MAX),
            self.clock.now(),
            settings.portal_url(),
        )

    # --- the users of a company ------------------------------------------------------------

    @rpc(expected_exceptions=PortalError)
    def list_users(self, customer_id: str) -> dict[str, Any]:
        """`"C1234567"` → `{"users": [{"user_id": "U-7KQX-M2PD", "email": "ada@acme.test",
        "name": "Ada", "role": "owner", "status": "active", "contact": true, "created_at":
        "…", "last_login_at": "…", "invitation_expires_at": null}, …]}`, the contact first,
        then by email; `company_not_found`."""
        return self._uow.read(users.list_users, customer_id_arg(customer_id), self.clock.now())

    @rpc(expected_exceptions=PortalError)
    def invite_user(self, customer_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """`("C1234567", {"email": "bob@acme.test", "name": "Bob", "role": "license_admin"})`
        → the user (`"status": "invited"`, `invitation_expires_at` in 7 days); `user_invited`
        has notify email the invitation link. `email_taken` (409) when any user of any
        company has the email. Audited `user_invited`."""
        customer_id = customer_id_arg(customer_id)
        data = load(schemas.InviteUser(), payload)
        once = self.request.once(customer_id, data)
        return self._uow.run(
            users.invite_user, customer_id, data, self._actor(), self.clock.now(), once=once
        )

    @rpc(expected_exceptions=PortalError)
    def resend_invitation(self, customer_id: str, user_id: str) -> dict[str, Any]:
        """`("C1234567", "U-7KQX-M2PD")` → the user, with a new invitation (earlier links
        stop working; a new `user_invited`). `invitation_not_pending` (409) for a user who is
        not `invited`; `user_not_found`. Audited `invitation_resent`."""
        customer_id, user_id = customer_id_arg(customer_id), user_id_arg(user_id)
        once = self.request.once(customer_id, user_id)
        return self._uow.run(
            users.resend_invitation,
            customer_id,
            user_id,
            self._actor(),
            self.clock.now(),
            once=once,
        )

    @rpc(expected_exceptions=PortalError)
    def accept_invitation(self, payload: dict[str, Any]) -> None:
        """`{"token": "<from the invitation link>", "password": "…"}` → null: the user is
        `active` and logs in with their email (no session is opened). `invalid_token` (400)
        for unknown, used or expired tokens and tokens of another purpose; `weak_password`
        (422, naming `password`). Audited `invitation_accepted`."""
        data = load(schemas.AcceptInvitation(), payload)
        token = data["token"]
        # as confirm_password_reset: the token's hash is the scope
        scope = "invite:" + domain.hash_token(token)[:RESET_SCOPE_DIGITS]
        once = self.request.once(scope, token, data["password"])
        self._uow.run(users.accept_invitation, token, data["password"], self.clock.now(), once=once)

    @rpc(expected_exceptions=PortalError)
    def update_user(
        self, customer_id: str, user_id: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """`("C1234567", "U-7KQX-M2PD", {"role": "viewer"})` (`name` and/or `role`) → the
        user. A new role turns off the notices it may not receive and publishes
        `user_role_changed`; `contact_is_owner` (409) for the contact's role; `last_owner`
        (409) when no active owner would remain; `user_not_found`. Audited
        `user_role_changed`."""
        customer_id, user_id = customer_id_arg(customer_id), user_id_arg(user_id)
        data = load(schemas.UpdateUser(), payload)
        once = self.request.once(customer_id, user_id, data)
        return self._uow.run(
            users.update_user,
            customer_id,
            user_id,
            data,
            self._actor(),
            self.clock.now(),
            once=once,
        )

    @rpc(expected_exceptions=PortalError)
    def disable_user(self, customer_id: str, user_id: str) -> dict[str, Any]:
        """`("C1234567", "U-7KQX-M2PD")` → the user (`"status": "disabled"`): their sessions
        end at once, they cannot log in; `user_disabled` is published. `contact_is_owner`,
        `last_owner` (409); `user_not_found`. Audited `user_disabled`."""
        return self._user_change(users.disable_user, customer_id, user_id)

    @rpc(expected_exceptions=PortalError)
    def enable_user(self, customer_id: str, user_id: str) -> dict[str, Any]:
        """`("C1234567", "U-7KQX-M2PD")` → the user, `active` again (`invited` if they never
        set a password); `user_not_found`. Audited `user_enabled`."""
        return self._user_change(users.enable_user, customer_id, user_id)

    @rpc(expected_exceptions=PortalError)
    def remove_user(self, customer_id: str, user_id: str) -> None:
        """`("C1234567", "U-7KQX-M2PD")` → null: the user, their sessions and links are
        gone (removing an invited user revokes the invitation). `contact_is_owner`,
        `last_owner` (409); `user_not_found`. Audited `user_removed` (with their email)."""
        self._user_change(users.remove_user, customer_id, user_id)

    @rpc(expected_exceptions=PortalError)
    def find_user(self, email_or_user_id: str) -> dict[str, Any]:
        """Staff: `"bob@acme.test"` or `"u-7kqx-m2pd"` → the user view plus its
        `customer_id`; `user_not_found`."""
        self.caller.check_kind("staff")
        lookup = lookup_arg(email_or_user_id, LOGIN_MAX)
        return self._uow.read(users.find_user, lookup, self.clock.now())

    @rpc(expected_exceptions=PortalError)
    def get_notification_preferences(self, customer_id: str, user_id: str) -> dict[str, Any]:
        """`("C1234567", "U-7KQX-M2PD")` → `{"preferences": {"installation_activated": true,
        "license_expiring": true, "receipts": false, "payment_failed": false,
        "seats_exhausted": false}, "available": ["installation_activated",
        "license_expiring", "seats_exhausted"]}` (the notices the role may receive);
        `user_not_found`."""
        return self._uow.read(
            users.get_preferences, customer_id_arg(customer_id), user_id_arg(user_id)
        )

    @rpc(expected_exceptions=PortalError)
    def update_notification_preferences(
        self, customer_id: str, user_id: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """`("C1234567", "U-7KQX-M2PD", {"preferences": {"license_expiring": false}})`
        (notices not named stay) → as `get_notification_preferences`. Turning on a notice
        the role may not receive is `validation_error` naming it
        (`details.fields.preferences.receipts`). Audited `notification_preferences_changed`."""
        customer_id, user_id = customer_id_arg(customer_id), user_id_arg(user_id)
        data = load(schemas.UpdatePreferences(), payload)
        once = self.request.once(customer_id, user_id, data)
        return self._uow.run(
            users.update_preferences,
            customer_id,
            user_id,
            data["preferences"],
            self._actor(),
            self.clock.now(),
            once=once,
        )

    @rpc(expected_exceptions=PortalError)
    def notice_recipients(self, customer_id: str, notice: str) -> list[dict[str, Any]]:
        """For notify (and staff): `("C1234567", "receipts")` → `[{"user_id": "U-7KQX-M2PD",
        "email": "ada@acme.test", "name": "Ada"}, …]`, the company's users who receive the
        notice (`installation_activated`, `license_expiring`, `receipts`, `payment_failed`,
        `seats_exhausted`), contact first; `company_not_found`; `forbidden` to any other caller."""
        self.caller.check_kind("notify", "staff")
        return self._uow.read(
            users.notice_recipients, customer_id_arg(customer_id), notice_arg(notice)
        )

    @rpc(expected_exceptions=PortalError)
    def list_audit_events(
        self, customer_id: str, query: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """auth's page of a company's audit trail: `("C1234567", {"limit": 50, "before":
        "<next_before of the previous page>", "user_id": null, "action": "login_failed",
        "since": "2026-12-01", "until": null})` → `[{"event_id", "at", "actor": {"type":
        "user", "user_id", "email"}, "action", "target": {"type": "user", "id"}, "details"},
        …]`, newest first (the gateway merges it with licensing's and billing's)."""
        customer_id = customer_id_arg(customer_id)
        audit_query = audit.query_from(customer_id, query if isinstance(query, dict) else {})
        return self._uow.read(audit.list_events, audit_query)

    def _actor(self) -> audit.Actor:
        """Who acts: the gateway's user, staff; else the system."""
        return self.actor.current(audit.SYSTEM)

    def _user_change(self, use_case: Any, customer_id: str, user_id: str) -> Any:
        customer_id, user_id = customer_id_arg(customer_id), user_id_arg(user_id)
        once = self.request.once(customer_id, user_id)
        return self._uow.run(
            use_case, customer_id, user_id, self._actor(), self.clock.now(), once=once
        )

    # eager: requests queued while the service was down are resolved at once
    @configured_timer("AUTH_RESET_POLL_SECONDS", default=DEFAULT_RESET_POLL_SECONDS, eager=True)
    def resolve_reset_requests(self) -> None:
        """Look up the logins of queued reset requests; announce those that name a company.

        Batch after batch, each in its own transaction, until the queue is empty or the
        tick's RESOLVE_BUDGET_SECONDS are spent (the next tick goes on).
        """
        deadline = time.monotonic() + RESOLVE_BUDGET_SECONDS
        while True:
            taken = self._uow.run(use_cases.resolve_reset_requests, self.clock.now())
            if taken < use_cases.RESOLVE_BATCH or time.monotonic() >= deadline:
                return

    @timer(interval=3600)
    def prune(self) -> None:
        """Forget failures that no longer count, expired requests and long-published events."""
        self._uow.run(use_cases.prune, self.clock.now())
        self._uow.prune()

    @timer(interval=5)
    def relay_outbox(self) -> None:
        """Publish events that a crash or a broker outage left in the outbox."""
        self._uow.relay()
