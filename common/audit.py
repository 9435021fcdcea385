"""The audit trail: who did what, when, to which object, kept with the change itself.

Each service keeps its part of a company's trail in its own `audit_events` table
(`AuditEventColumns`), written by the unit of work in the *same transaction* as the change
it describes, exactly like the outbox row of that change's event: a change is never
committed without its audit event, nor an audit event without its change, whatever crashes
when. Nothing updates or deletes a row (no API does; only staff with database access
could). The gateway merges the three trails (auth, licensing, billing) into one, newest
first (`merge`), with one opaque cursor (`encode_cursor`) that every service understands.

Who acted (the *actor*) rides nameko's context data (`actor`), like the request key: the
gateway puts the session's user there (`{"type": "user", "user_id", "email"}`) once it
authenticated it, and every RPC the route makes carries it on. A service asks its
`AuditActor()` dependency: staff callers (`portalctl`, verified by the broker) are always
`{"type": "staff"}`, whatever they wrote; a call without an actor is the use case's default
(`PRODUCT` for an activation by the product, `SYSTEM` for timers and event handlers).
Events do not carry the actor on (common/events.py): a handler acts as the system.

    once = self.request.once(customer_id, license_id)
    actor = self.actor.current()            # or .current(PRODUCT)
    self._uow.run(licenses.rotate_password, license_id, customer_id, actor, now, once=once)
    # the use case: Outcome(view, events, audit=[audit.entry(customer_id, actor,
    #                       "activation_password_rotated", ("license", license_id), now)])
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from nameko.containers import WorkerContext
from nameko.extensions import DependencyProvider
from sqlalchemy import Index, String, Table, Text, and_, or_, select
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from common import identifiers
from common.bus import kind_of
from common.context import ACTOR as ACTOR_KEY
from common.errors import validation_error
from common.rpc import CALLER_KEY
from common.timeutil import UTCDateTime, as_utc

ACTOR_TYPES = ("user", "staff", "product", "system")

# the actions of the trail (design §10 and what the later issues add); a use case records
# only these, so the portal's filter can offer them all
ACTIONS = (
    "login_succeeded",
    "login_failed",
    "password_changed",
    "password_reset",
    "user_invited",
    "invitation_resent",
    "invitation_accepted",
    "user_role_changed",
    "user_disabled",
    "user_enabled",
    "user_removed",
    "notification_preferences_changed",
    "activation_password_viewed",
    "activation_password_rotated",
    "installation_activated",
    "installation_deactivated",
    "offline_activation",
    "lease_revoked",
    "lease_expired",
    "purchase",
    "recurring_payment_cancelled",
    "recurring_payment_resumed",
    "recurring_payment_card_changed",
    "billing_details_changed",
    "license_issued",
    "license_suspended",
    "license_resumed",
    "license_extended",
    "license_features_changed",
    "license_labelled",
)

PAGE_DEFAULT = 50
PAGE_MAX = 200
CURSOR_MAX = 200
EVENT_ID_LENGTH = 32
DETAILS_MAX = 4000  # characters of JSON: details are a few facts, never a payload


@dataclass(frozen=True)
class Actor:
    """Who acted: a portal user (with their ID and email at the time), staff, the product
    (an activation with the license password) or the system (timers, event handlers)."""

    type: str
    user_id: str | None = None
    email: str | None = None
    name: str | None = None  # staff: who ran `portalctl`, when known

    def to_dict(self) -> dict[str, Any]:
        """`{"type": "user", "user_id": "U…", "email": "…"}`; only the fields it has."""
        out: dict[str, Any] = {"type": self.type}
        for key in ("user_id", "email", "name"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Actor | None:
        """The actor of context data, or None when it is missing or not one."""
        if not isinstance(data, Mapping) or data.get("type") not in ACTOR_TYPES:
            return None
        fields = {}
        for key in ("user_id", "email", "name"):
            value = data.get(key)
            fields[key] = str(value)[:254] if value is not None else None
        return cls(str(data["type"]), **fields)


SYSTEM = Actor("system")
_UNSET = Actor("system", name="unset")  # only AuditActor's marker: "no actor given"
PRODUCT = Actor("product")
STAFF = Actor("staff")


def user_actor(user: Mapping[str, Any]) -> Actor:
    """The actor of a portal user (`{"user_id", "email", …}`, as auth answers it)."""
    return Actor("user", user_id=user["user_id"], email=user["email"])


@dataclass
class AuditEntry:
    """One fact of the trail, as a use case states it (`entry` builds it)."""

    customer_id: str
    actor: Actor
    action: str
    target_type: str
    target_id: str | None
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=lambda: secrets.token_hex(EVENT_ID_LENGTH // 2))


def entry(
    customer_id: str,
    actor: Actor,
    action: str,
    target: tuple[str, str | None],
    at: datetime,
    **details: Any,
) -> AuditEntry:
    """`entry("C1234567", actor, "activation_password_rotated", ("license", "L-7KQX-M2PD"),
    now)`; `details` are a few JSON-able facts (never a password, token or card)."""
    if action not in ACTIONS:
        raise ValueError(f"not an audited action: {action}")
    return AuditEntry(customer_id, actor, action, target[0], target[1], at, details)


class AuditEventColumns:
    """Declarative mixin: `class AuditEvent(AuditEventColumns, Base)` in a service's models
    (and a migration creating `audit_events` with these columns and indexes)."""

    __tablename__ = "audit_events"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        # an Index object belongs to one table: each service's model gets its own
        return (Index("ix_audit_events_customer_at", "customer_id", "at", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(EVENT_ID_LENGTH), unique=True)
    customer_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(48))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_user_id: Mapped[str | None] = mapped_column(String(32))
    actor_email: Mapped[str | None] = mapped_column(String(254))
    actor_name: Mapped[str | None] = mapped_column(String(254))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[str] = mapped_column(Text)  # JSON


def _details_text(details: dict[str, Any]) -> str:
    """The JSON of `details`, at most DETAILS_MAX characters and always valid: values that
    would make it longer are cut (each to a share of the room), never the JSON itself."""
    text = json.dumps(details, default=str, ensure_ascii=False)
    if len(text) <= DETAILS_MAX:
        return text
    share = max(16, DETAILS_MAX // (2 * max(1, len(details))))
    cut = {
        str(key)[:64]: value[:share] if isinstance(value, str) else value
        for key, value in details.items()
    }
    text = json.dumps({**cut, "truncated": True}, default=str, ensure_ascii=False)
    if len(text) <= DETAILS_MAX:
        return text
    return json.dumps({"truncated": True})


def _table(model: Any) -> Table:
    return model if isinstance(model, Table) else model.__table__


def record(session: Session, model: Any, entries: Iterable[AuditEntry]) -> None:
    """Insert `entries` in this transaction (the unit of work calls it with the change)."""
    rows = [
        {
            "event_id": item.event_id,
            "customer_id": item.customer_id,
            "at": item.at,
            "action": item.action,
            "actor_type": item.actor.type,
            "actor_user_id": item.actor.user_id,
            "actor_email": item.actor.email,
            "actor_name": item.actor.name,
            "target_type": item.target_type,
            "target_id": item.target_id,
            "details": _details_text(item.details),
        }
        for item in entries
    ]
    if rows:
        session.execute(_table(model).insert(), rows)


# --- reading: one page of one service's part, and the merge of the parts -----------------


@dataclass(frozen=True)
class AuditQuery:
    """Which events: a company's, newest first, `limit` of them strictly before `before`
    (an `(at, event_id)` position), optionally only one user's, one action's, or a time
    range (`since` inclusive, `until` exclusive)."""

    customer_id: str
    limit: int = PAGE_DEFAULT
    before: tuple[datetime, str] | None = None
    user_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def query_from(customer_id: str, data: Mapping[str, Any]) -> AuditQuery:
    """An `AuditQuery` from RPC arguments `{limit, before, user_id, action, since, until}`
    (strings as the gateway received them; times ISO 8601): 422 naming a bad one."""
    problems: dict[str, list[str]] = {}
    limit = data.get("limit", PAGE_DEFAULT)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= PAGE_MAX:
        problems["limit"] = [f"Use a whole number from 1 to {PAGE_MAX}."]
        limit = PAGE_DEFAULT
    before = None
    if data.get("before"):
        try:
            before = decode_cursor(str(data["before"]))
        except ValueError:
            problems["before"] = ["Use the next_before of the previous page."]
    action = data.get("action") or None
    if action is not None and action not in ACTIONS:
        problems["action"] = ["Unknown action."]
    times: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        value = data.get(name)
        times[name] = None
        if value:
            try:
                times[name] = as_utc(datetime.fromisoformat(str(value)))
            except ValueError:
                problems[name] = ["Use an ISO 8601 date or time."]
    if problems:
        raise validation_error(problems)
    user_id = data.get("user_id") or None
    return AuditQuery(
        customer_id,
        limit,
        before,
        identifiers.user_id(str(user_id))[:32] if user_id else None,
        action,
        times["since"],
        times["until"],
    )


def query_args(query: AuditQuery) -> dict[str, Any]:
    """The RPC arguments of `query` (what `query_from` reads back)."""
    return {
        "limit": query.limit,
        "before": encode_cursor(*query.before) if query.before else None,
        "user_id": query.user_id,
        "action": query.action,
        "since": query.since.isoformat() if query.since else None,
        "until": query.until.isoformat() if query.until else None,
    }


def page(session: Session, model: Any, query: AuditQuery) -> list[dict[str, Any]]:
    """Up to `query.limit` events of this service's part, newest first, as `view` shows them."""
    table = _table(model)
    statement = select(table).where(table.c.customer_id == query.customer_id)
    if query.before is not None:
        at, event_id = query.before
        statement = statement.where(
            or_(table.c.at < at, and_(table.c.at == at, table.c.event_id < event_id))
        )
    if query.user_id:
        statement = statement.where(table.c.actor_user_id == query.user_id)
    if query.action:
        statement = statement.where(table.c.action == query.action)
    if query.since:
        statement = statement.where(table.c.at >= query.since)
    if query.until:
        statement = statement.where(table.c.at < query.until)
    statement = statement.order_by(table.c.at.desc(), table.c.event_id.desc()).limit(query.limit)
    return [view(row._mapping) for row in session.execute(statement)]


class AuditPages(Protocol):
    """What a service's repository offers the trail's reader."""

    def audit_page(self, query: AuditQuery) -> list[dict[str, Any]]: ...


def list_events(repo: AuditPages, query: AuditQuery) -> list[dict[str, Any]]:
    """The read use case every service's `list_audit_events` runs (`uow.read`): up to
    `query.limit` events of the company, newest first, as `view` shows them."""
    return repo.audit_page(query)


def view(row: Mapping[str, Any]) -> dict[str, Any]:
    """`{event_id, at, actor, action, target: {type, id}, details}` of a stored row."""
    actor = Actor(
        row["actor_type"],
        user_id=row["actor_user_id"],
        email=row["actor_email"],
        name=row["actor_name"],
    )
    return {
        "event_id": row["event_id"],
        "at": as_utc(row["at"]).isoformat(),
        "actor": actor.to_dict(),
        "action": row["action"],
        "target": {"type": row["target_type"], "id": row["target_id"]},
        "details": _details(row["details"]),
    }


def _details(text: str | None) -> dict[str, Any]:
    """Stored details; a row no JSON reader understands still shows (as unreadable)."""
    try:
        details = json.loads(text or "{}")
    except ValueError:
        return {"unreadable": True}
    return details if isinstance(details, dict) else {"value": details}


def encode_cursor(at: datetime, event_id: str) -> str:
    """The opaque position after which the next page starts (what `next_before` says)."""
    raw = f"{as_utc(at).isoformat()}|{event_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """`(at, event_id)` of a cursor that `encode_cursor` made; ValueError otherwise."""
    if not cursor or len(cursor) > CURSOR_MAX:
        raise ValueError("bad cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, event_id = raw.partition("|")
        when = as_utc(datetime.fromisoformat(at))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("bad cursor") from exc
    if not event_id or len(event_id) > EVENT_ID_LENGTH:
        raise ValueError("bad cursor")
    return when, event_id


def _position(event: Mapping[str, Any]) -> tuple[datetime, str]:
    return as_utc(datetime.fromisoformat(event["at"])), event["event_id"]


def merge(parts: Iterable[list[dict[str, Any]]], limit: int) -> dict[str, Any]:
    """One page of the whole trail from each service's page of the same query:
    `{events, next_before}`, newest first; `next_before` null when no part may have more.

    Each part holds the newest `limit` of its own events before the cursor, so the newest
    `limit` of their union are the newest of the whole trail.
    """
    parts = list(parts)
    events = sorted((e for part in parts for e in part), key=_position, reverse=True)
    more = len(events) > limit or any(len(part) >= limit for part in parts)
    events = events[:limit]
    next_before = encode_cursor(*_position(events[-1])) if more and events else None
    return {"events": events, "next_before": next_before}


# --- who acts in this worker ------------------------------------------------------------------


class ActorInfo:
    """What a worker knows of who acts: `current(default)` is the actor to record."""

    def __init__(self, context: Mapping[str, Any]) -> None:
        self._context = context

    def current(self, default: Actor = SYSTEM) -> Actor:
        """Staff for a staff caller (always); else the context's actor; else `default`."""
        given = Actor.from_dict(self._context.get(ACTOR_KEY))
        kind = kind_of(self._context.get(CALLER_KEY))
        if kind == "staff":
            name = given.name if given is not None and given.type == "staff" else None
            return Actor("staff", name=name)
        if given is not None and given.type == "staff" and kind == "gateway":
            # the internet-facing gateway never acts as staff, whatever it wrote
            return default
        return given or default


class AuditActor(DependencyProvider):
    """Dependency: `actor = AuditActor()`, then `self.actor.current()` in a worker.

    The context's actor is settled here once, and the worker's calls carry the settled one
    on: an actor this service would not accept (a gateway claiming staff) never reaches the
    next service through it, where the caller would look like this service.
    """

    def get_dependency(self, worker_ctx: WorkerContext) -> ActorInfo:
        settled = ActorInfo(worker_ctx.data).current(_UNSET)
        if settled is _UNSET:
            worker_ctx.data.pop(ACTOR_KEY, None)
        else:
            worker_ctx.data[ACTOR_KEY] = settled.to_dict()
        return ActorInfo(worker_ctx.data)
