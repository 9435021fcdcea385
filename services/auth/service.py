"""The auth service: companies, the company-wide password, sessions and password resets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nameko.rpc import rpc
from nameko.timer import timer

from common import outbox, settings
from common.db import Database
from common.errors import PortalError
from common.events import EventBus
from common.schemas import load
from common.timeutil import utcnow
from services.auth import accounts, domain, schemas
from services.auth.exceptions import InvalidCredentials
from services.auth.models import EventOutbox
from services.auth.repository import AuthRepository

MIGRATIONS = Path(__file__).parent / "migrations"


class AuthService:
    name = "auth"

    db = Database("auth", MIGRATIONS)
    events = EventBus()

    def _run(self, use_case, *args: Any) -> accounts.Outcome:
        """Run a use case in one transaction with its events staged, then publish them."""
        with self.db.transaction() as session:
            outcome = use_case(AuthRepository(session), *args)
            staged = outbox.stage(session, EventOutbox, outcome.events)
        outbox.flush(self.db, EventOutbox, self.events, staged)
        return outcome

    @rpc
    def ping(self) -> dict[str, str]:
        """Readiness: `{"service": "auth", "status": "ok"}` once the database answers."""
        self.db.ping()
        return {"service": self.name, "status": "ok"}

    @rpc(expected_exceptions=PortalError)
    def create_company(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Create a company; without `password` the contact is emailed a set-password link.

        `{"name": "Acme", "contact_name": "Ada", "contact_email": "ada@acme.test"}`
        → `{"customer_id": "C1234567", "name": ..., "contact_email": ..., "has_password": false}`
        """
        data = load(schemas.CreateCompany(), payload)
        return self._run(accounts.create_company, data, utcnow(), settings.portal_url()).result

    @rpc(expected_exceptions=PortalError)
    def find_companies(self, query: str) -> list[dict[str, Any]]:
        """Companies whose customer ID or email equals `query`, or whose name contains it."""
        with self.db.transaction() as session:
            found = AuthRepository(session).search_companies(str(query)[:200])
            return [accounts.company_view(company) for company in found]

    @rpc(expected_exceptions=PortalError)
    def get_company(self, customer_id: str) -> dict[str, Any]:
        """`"C1234567"` → the company; `company_not_found` otherwise."""
        with self.db.transaction() as session:
            return accounts.get_company(AuthRepository(session), str(customer_id))

    @rpc(expected_exceptions=PortalError)
    def login(self, payload: dict[str, Any]) -> dict[str, Any]:
        """`{"login": "C1234567" | "ada@acme.test", "password": "..."}` → a session.

        → `{"token": "...", "expires_at": "...", "company": {...}}`; `invalid_credentials`
        for a wrong password and an unknown login alike; `too_many_attempts` with
        `details.retry_after` (seconds) once the failures of one login reach the limit.
        """
        data = load(schemas.Login(), payload)
        outcome = self._run(accounts.login, data["login"], data["password"], utcnow())
        if outcome.rejected:
            raise InvalidCredentials()
        return outcome.result

    @rpc(expected_exceptions=PortalError)
    def authenticate(self, token: str) -> dict[str, Any]:
        """A session token → its company; `unauthenticated` when missing, expired or revoked."""
        with self.db.transaction() as session:
            _, company = accounts.authenticate(AuthRepository(session), str(token), utcnow())
            return accounts.company_view(company)

    @rpc(expected_exceptions=PortalError)
    def logout(self, token: str) -> None:
        """Revoke the session of `token` (no error when it is already gone)."""
        with self.db.transaction() as session:
            AuthRepository(session).revoke_session(domain.hash_token(str(token)), utcnow())

    @rpc(expected_exceptions=PortalError)
    def change_password(self, token: str, payload: dict[str, Any]) -> None:
        """`{"current_password", "new_password"}`; revokes every other session of the company."""
        data = load(schemas.ChangePassword(), payload)
        outcome = self._run(
            accounts.change_password,
            str(token),
            data["current_password"],
            data["new_password"],
            utcnow(),
        )
        if outcome.rejected:
            raise InvalidCredentials("The current password is incorrect.")

    @rpc(expected_exceptions=PortalError)
    def request_password_reset(self, payload: dict[str, Any]) -> None:
        """`{"login": ...}`: emails a 30-minute reset link if the login exists.

        The answer is the same whether or not it does.
        """
        data = load(schemas.ResetRequest(), payload)
        self._run(accounts.request_reset, data["login"], utcnow(), settings.portal_url())

    @rpc(expected_exceptions=PortalError)
    def confirm_password_reset(self, payload: dict[str, Any]) -> None:
        """`{"token", "new_password"}`: sets the password once; `invalid_token` otherwise.

        Revokes every session: a reset does not log anyone in.
        """
        data = load(schemas.ResetConfirm(), payload)
        self._run(accounts.confirm_reset, data["token"], data["new_password"], utcnow())

    @rpc(expected_exceptions=PortalError)
    def verify_company_password(self, customer_id: str, password: str) -> bool:
        """Whether `password` is the company-wide password of `customer_id` (for activations)."""
        with self.db.transaction() as session:
            return accounts.verify_company_password(
                AuthRepository(session), str(customer_id), str(password)[: schemas.PASSWORD_MAX]
            )

    @timer(interval=3600)
    def prune(self) -> None:
        """Forget failed logins that no longer count, and long-published events."""
        with self.db.transaction() as session:
            AuthRepository(session).prune_failures(utcnow() - domain.LOGIN_FAILURE_WINDOW)
        outbox.prune(self.db, EventOutbox)

    @timer(interval=5)
    def relay_outbox(self) -> None:
        """Publish events that a crash or a broker outage left in the outbox."""
        outbox.relay(self.db, EventOutbox, self.events)
