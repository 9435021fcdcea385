"""A redelivered request changes nothing twice.

nameko acknowledges an RPC request only after it replied, so a request whose
acknowledgement a network blip lost is delivered again, to this or another instance, and
runs again. Every request therefore carries a *request key* in nameko's context data
(`request_key`): the gateway sets the client's `Idempotency-Key` or a fresh key per HTTP
request; when a request has none (`portalctl`, a timer's call) the `@rpc` entrypoint uses
the AMQP correlation ID, which a redelivery repeats. A worker's own calls carry keys derived
from its key and the call (`derived_key`), so a redelivered worker making the same calls
repeats them too (common/rpc.py). Events do not carry the key on: an event handler is
idempotent by `event_id`.

A state-changing entrypoint asks for its `Once` and hands it to the unit of work:

    once = self.request.once(customer_id, license_id)     # scope, then what defines it
    return self._uow.run(licenses.rotate_password, ..., once=once)

The first delivery runs the use case and stores its answer in `handled_requests`, in the
same transaction as the change; a redelivery (same scope, key and operation) finds the row
and answers the same without running anything, even while the first is still running (its
insert waits on the first one's key). The same key with a different body is a client's
mistake: `IdempotencyKeyReused`. Keys are per scope (a company, or staff), so one company's
key never reaches another's answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nameko.containers import WorkerContext
from nameko.extensions import DependencyProvider
from sqlalchemy import String, Table, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from common.db import insert_ignore
from common.errors import PortalError
from common.timeutil import UTCDateTime, utcnow

REQUEST_KEY = "request_key"  # the context-data key every RPC request carries
KEY_MAX = 128
STAFF_SCOPE = "staff"
KEEP_FOR = timedelta(days=7)


class IdempotencyKeyReused(PortalError):
    """The same request key came with a different request: 422, nothing done."""

    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used for a different request."


class HandledRequestColumns:
    """Declarative mixin: `class HandledRequest(HandledRequestColumns, Base)` in models."""

    __tablename__ = "handled_requests"
    __table_args__ = (UniqueConstraint("scope", "key", "operation", name="uq_handled_request"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(KEY_MAX))
    operation: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64))
    # {"result": …} or {"error": {code, message, details}}; NULL while the first one runs
    answer: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


def derived_key(key: str, step: str) -> str:
    """The key of one call a request makes (`step`: "licensing.issue_license#1"), within
    KEY_MAX: the same request, redelivered and making the same calls, derives the same keys."""
    derived = f"{key}>{step}"
    if len(derived) <= KEY_MAX:
        return derived
    return "sha256:" + hashlib.sha256(derived.encode()).hexdigest()


def fingerprint(*body: Any) -> str:
    """What identifies a request's content: the SHA-256 of its canonical JSON."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Once:
    """One request, as the ledger knows it."""

    scope: str
    key: str
    operation: str
    fingerprint: str


@dataclass(frozen=True)
class RequestInfo:
    """What a worker knows of its request: its key (if any) and its operation."""

    key: str | None
    operation: str

    def once(self, scope: str | None, *body: Any) -> Once | None:
        """The ledger entry of this request within `scope` (a customer ID; None: staff)."""
        if not self.key:
            return None
        return Once(scope or STAFF_SCOPE, self.key[:KEY_MAX], self.operation, fingerprint(*body))


class Requests(DependencyProvider):
    """Dependency: `request = Requests()`, then `self.request.once(customer_id, payload)`."""

    def get_dependency(self, worker_ctx: WorkerContext) -> RequestInfo:
        key = worker_ctx.data.get(REQUEST_KEY)
        operation = f"{worker_ctx.service_name}.{worker_ctx.entrypoint.method_name}"
        return RequestInfo(key if isinstance(key, str) else None, operation)


def _table(ledger: Any) -> Table:
    return ledger if isinstance(ledger, Table) else ledger.__table__


def claim(session: Session, ledger: Any, once: Once) -> dict[str, Any] | None:
    """Claim `once` in this transaction: None if it is new (run it, then `record`), else the
    stored answer `{"result": …}` (a stored refusal is raised; another body is refused)."""
    table = _table(ledger)
    row = {
        "scope": once.scope,
        "key": once.key,
        "operation": once.operation,
        "fingerprint": once.fingerprint,
        "created_at": utcnow(),
    }
    if insert_ignore(session, table, row):
        return None
    found = session.execute(
        select(table.c.fingerprint, table.c.answer).where(
            table.c.scope == once.scope,
            table.c.key == once.key,
            table.c.operation == once.operation,
        )
    ).one()
    if found.fingerprint != once.fingerprint:
        raise IdempotencyKeyReused(details={"operation": once.operation})
    answer = json.loads(found.answer) if found.answer else {"result": None}
    if "error" in answer:
        error = answer["error"]
        raise PortalError(error["message"], details=error.get("details"), code=error["code"])
    return answer


def record(
    session: Session, ledger: Any, once: Once, result: Any, error: PortalError | None = None
) -> None:
    """Store the answer of a claimed request, in the transaction of its change."""
    table = _table(ledger)
    answer = {"error": error.to_dict()} if error is not None else {"result": result}
    session.execute(
        table.update()
        .where(
            table.c.scope == once.scope,
            table.c.key == once.key,
            table.c.operation == once.operation,
        )
        .values(answer=json.dumps(answer, default=str))
    )


def prune(session: Session, ledger: Any, now: datetime | None = None) -> None:
    """Forget requests handled more than a week ago (no redelivery comes that late)."""
    table = _table(ledger)
    session.execute(table.delete().where(table.c.created_at < (now or utcnow()) - KEEP_FOR))
