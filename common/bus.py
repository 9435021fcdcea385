"""Least privilege on the bus: one RabbitMQ user per process kind, and what each may do.

`portalctl bus grant` (run with an administrator's `AMQP_URI`) creates or updates, through the
RabbitMQ management HTTP API, one user per kind in `KINDS`, each with permissions on the
vhost and topic permissions on `nameko-rpc` and every `<service>.events` exchange:

- a service consumes its own `rpc-<service>` queue, answers on reply routing keys (UUIDs),
  calls only the methods of `SERVICE_CALLS` (and its own `ping`, for its healthcheck),
  publishes only on its own `<service>.events` and binds only the event queues of
  `common.events.SUBSCRIPTIONS` that it consumes or declares for its consumers;
- the gateway publishes only the routing keys of `GATEWAY_CALLS` and answers nothing (both
  tables list exactly the methods the code calls; a unit test holds them against it); it
  binds only its validation read model's own `gateway-validation-<uuid>` queues, to every
  `licensing.events` event (`#`), and publishes no event;
- staff (`portalctl`) may call every method of every service, and publishes no event.

Every kind's reply queues are `rpc.reply-<kind>-<uuid>`: no other kind can declare, bind or
read them. Names follow nameko 3: `rpc-<service>` bound with `<service>.*`, reply queues
bound with their UUID, event queues `evt-<source>-<event>--<consumer>.<method>`.

A user is `<prefix><kind>` (default prefix `portal-`); `kind_of` reads the kind back from
the name the broker verified (the AMQP `user_id` property of a message).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse, urlunparse

import requests

from common import settings
from common.errors import PortalError
from common.events import SUBSCRIPTIONS

SERVICES = ("auth", "licensing", "billing", "notify")
KINDS = (*SERVICES, "gateway", "staff")
DEFAULT_PREFIX = "portal-"
RPC_EXCHANGE = "nameko-rpc"
CREDENTIALS_FILE = "bus-credentials.json"
API_TIMEOUT = 10.0

# The customer-facing methods the gateway calls, and nothing more (tests/unit/common/test_bus.py
# holds this against every call in gateway/*.py). Staff-only methods stay out of reach of an
# internet-facing process; staff paths of these methods (no customer ID) are refused by the
# services themselves to a gateway caller (`common.rpc.Caller`).
GATEWAY_CALLS: dict[str, tuple[str, ...]] = {
    "auth": (
        "accept_invitation",
        "authenticate",
        "change_password",
        "check_password_token",
        "confirm_password_reset",
        "disable_user",
        "enable_user",
        "get_notification_preferences",
        "invite_user",
        "list_audit_events",
        "list_users",
        "login",
        "logout",
        "ping",
        "remove_user",
        "request_password_reset",
        "resend_invitation",
        "update_notification_preferences",
        "update_user",
    ),
    "licensing": (
        "activate",
        "activate_offline",
        "checkin",
        "checkout",
        "deactivate",
        "deactivate_offline",
        "deactivate_installation",
        "get_license",
        "heartbeat",
        "history",
        "label_license",
        "license_for_payment",
        "list_audit_events",
        "list_installations",
        "list_leases",
        "list_licenses",
        "list_products",
        "mark_seen",
        "ping",
        "revoke_lease",
        "rotate_activation_password",
        "signing_keys",
        "validate",
        "validation_facts",
        "validation_keys",
    ),
    "billing": (
        "cancel_recurring_payment",
        "confirm_purchase",
        "get_billing_details",
        "get_receipt",
        "handle_stripe_webhook",
        "list_audit_events",
        "list_payments",
        "list_plans",
        "list_recurring_payments",
        "ping",
        "purchase",
        "replace_card",
        "resume_recurring_payment",
        "update_billing_details",
    ),
    "notify": ("ping",),
}

# The methods each service calls on the others (through its `RpcClient`s, directly or as the
# Protocol it hands a client to; tests/unit/common/test_bus.py holds this against every call
# in services/*/**.py). Nothing more: billing cannot issue or extend a license, and only
# notify (and staff) may ask auth for a password link.
SERVICE_CALLS: dict[str, dict[str, tuple[str, ...]]] = {
    "auth": {},
    "licensing": {"auth": ("get_company", "verify_company_password")},
    "billing": {
        "auth": ("get_company",),
        "licensing": ("get_license", "get_product", "list_products"),
    },
    "notify": {"auth": ("get_company", "notice_recipients", "password_link")},
}

# the queues of the gateway's validation read model (gateway/read_model.py QUEUE_PREFIX), and
# the binding key they take every event of licensing with
GATEWAY_VALIDATION_QUEUES = "gateway-validation-"
EVERY_EVENT = "#"

UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
METHOD = "[A-Za-z_][A-Za-z0-9_]*"
NOTHING = "^$"


# --- who is on the other end -----------------------------------------------------------------


def user_of(amqp_uri: str | None) -> str | None:
    """The user name in an AMQP URI (None when it names none, or for `memory://`)."""
    if not amqp_uri:
        return None
    username = urlparse(amqp_uri).username
    return unquote(username) if username else None


def kind_of(user: str | None) -> str | None:
    """The process kind of a bus user `<prefix><kind>` (None for any other user).

    >>> kind_of("portal-gateway"), kind_of("lp-e2e_1a2b-staff"), kind_of("guest")
    ('gateway', 'staff', None)
    """
    if not user:
        return None
    kind = user if user in KINDS else user.rsplit("-", 1)[-1]
    return kind if kind in KINDS and (user == kind or user.endswith("-" + kind)) else None


def reply_queue_label(amqp_uri: str | None) -> str:
    """What standalone clients put in their reply queue's name: the kind, when known."""
    return kind_of(user_of(amqp_uri)) or "standalone_rpc_client"


# --- the permission table --------------------------------------------------------------------


@dataclass(frozen=True)
class Permissions:
    """Regexes RabbitMQ matches against resource names, and per exchange against routing keys
    (topic `write`: publishing; topic `read`: binding keys)."""

    configure: str
    write: str
    read: str
    topics: dict[str, tuple[str, str]] = field(default_factory=dict)


def _literal(text: str) -> str:
    """`text` as a regex that matches it alone (names hold letters, digits, `_.-*`)."""
    return re.sub(r"([.*+?^$()\[\]{}|\\])", r"\\\1", text)


def _names(names: Iterable[str]) -> str:
    """A regex matching exactly the given resource names; a trailing `*` matches any suffix."""
    parts = [
        _literal(name[:-1]) + ".*" if name.endswith("*") else _literal(name)
        for name in dict.fromkeys(names)
    ]
    return _keys(parts)


def _either(patterns: Iterable[str]) -> str:
    """`(a|b)` of regexes."""
    return "(" + "|".join(dict.fromkeys(patterns)) + ")"


def _keys(patterns: Iterable[str]) -> str:
    """A regex matching exactly one of `patterns` (routing keys), or nothing at all."""
    patterns = list(patterns)
    return f"^{_either(patterns)}$" if patterns else NOTHING


def event_exchange(service: str) -> str:
    return f"{service}.events"


def event_queue(source: str, event_type: str, consumer: str, method: str) -> str:
    return f"evt-{source}-{event_type}--{consumer}.{method}"


def rpc_calls(kind: str) -> dict[str, tuple[str, ...] | None]:
    """Service → methods `kind` may call (None: every method)."""
    if kind == "gateway":
        return dict(GATEWAY_CALLS)
    if kind == "staff":
        return dict.fromkeys(SERVICES)
    calls: dict[str, tuple[str, ...] | None] = dict(SERVICE_CALLS[kind])
    calls.setdefault(kind, ("ping",))  # its container's healthcheck
    return calls


def permissions_for(kind: str) -> Permissions:
    """What a process of `kind` needs on the vhost, and nothing more."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    replies = f"rpc.reply-{kind}-*"
    configure = [RPC_EXCHANGE, replies]
    write = [RPC_EXCHANGE, replies]
    read = [RPC_EXCHANGE, replies]
    rpc_write = [
        _literal(service) + r"\." + (METHOD if methods is None else _either(map(_literal, methods)))
        for service, methods in rpc_calls(kind).items()
    ]
    rpc_read = [UUID]
    topics: dict[str, tuple[str, str]] = {}
    if kind in SERVICES:
        own = event_exchange(kind)
        configure += [f"rpc-{kind}", own]
        write += [f"rpc-{kind}", own]
        read += [f"rpc-{kind}", own]
        rpc_write.append(UUID)  # replies
        rpc_read.append(_literal(f"{kind}.*"))  # the binding of rpc-<kind>
        topics[own] = (".*", ".*")
        consumed: dict[str, list[str]] = {}
        for source, event_type, consumer, method in SUBSCRIPTIONS:
            queue = event_queue(source, event_type, consumer, method)
            if source == kind:  # declared for its consumers, so nothing published is lost
                configure.append(queue)
                write.append(queue)
            if consumer == kind:
                configure += [queue, event_exchange(source)]
                write.append(queue)
                read += [queue, event_exchange(source)]
                if source != kind:
                    consumed.setdefault(source, []).append(_literal(event_type))
        for source, event_types in consumed.items():
            topics[event_exchange(source)] = (NOTHING, _keys(event_types))
    if kind == "gateway":
        # the validation read model's own exclusive queue, bound to every licensing event
        # (gateway/read_model.py): it reads them and publishes none
        queue, source = f"{GATEWAY_VALIDATION_QUEUES}*", event_exchange("licensing")
        configure += [queue, source]
        write.append(queue)
        read += [queue, source]
        topics[source] = (NOTHING, _keys([EVERY_EVENT]))
    for service in SERVICES:
        topics.setdefault(event_exchange(service), (NOTHING, NOTHING))
    topics[RPC_EXCHANGE] = (_keys(rpc_write), _keys(rpc_read))
    return Permissions(_names(configure), _names(write), _names(read), topics)


# --- the RabbitMQ management API -------------------------------------------------------------


class BusGrantError(PortalError):
    """The broker's management API could not be reached or refused a change."""

    code = "bus_grant_failed"


def _address(host: str | None, port: int | None) -> str:
    """`host[:port]` for a URL, an IPv6 host in brackets."""
    host = host or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def vhost_of(amqp_uri: str) -> str:
    """The vhost of an AMQP URI (`/` when the path is empty or `/`)."""
    path = urlparse(amqp_uri).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def redacted(amqp_uri: str) -> str:
    """`amqp_uri` fit for a message: its password masked.

    >>> redacted("amqp://portal-staff:s3cret@rabbit:5672/")
    'amqp://portal-staff:***@rabbit:5672/'
    """
    parts = urlparse(amqp_uri)
    if not parts.password:
        return amqp_uri
    netloc = f"{parts.username}:***@{_address(parts.hostname, parts.port)}"
    return urlunparse(parts._replace(netloc=netloc))


def with_credentials(amqp_uri: str, user: str, password: str) -> str:
    """`amqp_uri` with another user and password."""
    parts = urlparse(amqp_uri)
    address = _address(parts.hostname, parts.port)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{address}"
    return urlunparse(parts._replace(netloc=netloc))


def management_uri(amqp_uri: str) -> str:
    """`RABBIT_API_URI`, or the management API beside the broker of `amqp_uri` (port 15672,
    15671 over TLS) with the same credentials."""
    configured = settings.get("RABBIT_API_URI")
    if configured:
        return configured
    parts = urlparse(amqp_uri)
    tls = parts.scheme == "amqps"
    user = parts.username or "guest"
    password = parts.password or "guest"
    # beside the broker: the AMQP URI's port is not the API's
    address = _address(parts.hostname, 15671 if tls else 15672)
    return f"{'https' if tls else 'http'}://{user}:{password}@{address}/"


class ManagementApi:
    """The few calls of RabbitMQ's HTTP API that grant needs."""

    def __init__(self, uri: str, timeout: float = API_TIMEOUT) -> None:
        parts = urlparse(uri)
        address = _address(parts.hostname, parts.port)
        self.base = f"{parts.scheme}://{address}{parts.path.rstrip('/')}/api"
        self.auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> requests.Response:
        response = requests.request(
            method, self.base + path, json=body, auth=self.auth, timeout=self.timeout
        )
        gone = response.status_code == 404 and method in ("GET", "DELETE")
        if response.status_code >= 400 and not gone:
            raise BusGrantError(
                f"RabbitMQ's management API refused {method} {path}: "
                f"{response.status_code} {response.text[:200]}"
            )
        return response

    def user(self, name: str) -> dict[str, Any] | None:
        response = self._call("GET", f"/users/{quote(name, safe='')}")
        return None if response.status_code == 404 else response.json()

    def put_user(self, name: str, password: str) -> None:
        self._call("PUT", f"/users/{quote(name, safe='')}", {"password": password, "tags": ""})

    def delete_user(self, name: str) -> None:
        self._call("DELETE", f"/users/{quote(name, safe='')}")

    def put_permissions(self, vhost: str, user: str, permissions: Permissions) -> None:
        # topic permissions first: without any for an exchange, RabbitMQ allows every key
        for exchange, (write, read) in permissions.topics.items():
            self._call(
                "PUT",
                f"/topic-permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
                {"exchange": exchange, "write": write, "read": read},
            )
        self._call(
            "PUT",
            f"/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
            {
                "configure": permissions.configure,
                "write": permissions.write,
                "read": permissions.read,
            },
        )


def password_matches(user: Mapping[str, Any], password: str) -> bool:
    """Whether `password` is the one whose salted hash the management API shows for `user`."""
    algorithms = {
        "rabbit_password_hashing_sha256": hashlib.sha256,
        "rabbit_password_hashing_sha512": hashlib.sha512,
        "rabbit_password_hashing_md5": hashlib.md5,
    }
    digest = algorithms.get(str(user.get("hashing_algorithm")))
    try:
        stored = base64.b64decode(str(user.get("password_hash") or ""), validate=True)
    except ValueError:
        return False
    if digest is None or len(stored) <= 4:
        return False
    salt = stored[:4]
    return secrets.compare_digest(stored, salt + digest(salt + password.encode()).digest())


# --- grant -----------------------------------------------------------------------------------


def credentials_path() -> Path:
    return settings.var_dir() / CREDENTIALS_FILE


def _load_store(path: Path | None) -> dict[str, str]:
    if path is None or not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8") or "{}")
    return {str(key): str(value) for key, value in data.items()} if isinstance(data, dict) else {}


def _save_store(path: Path, store: dict[str, str]) -> None:
    """Atomically, readable by its owner only: these are the passwords of the bus users."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(store, file, indent=2, sort_keys=True)
    os.replace(temporary, path)


def _password(
    api: ManagementApi, user: str, kind: str, store: dict[str, str], rotate: bool
) -> tuple[str, bool]:
    """The password for `user` and whether it is to be stored.

    `<KIND>_BUS_PASSWORD` when set (ops keep it, e.g. compose), else the stored one while it
    is still the broker's (so a re-run changes no password), else a new random one.
    """
    given = settings.get(f"{kind.upper()}_BUS_PASSWORD")
    if given:
        return given, False
    known = store.get(user)
    if known and not rotate:
        existing = api.user(user)
        if existing is None or password_matches(existing, known):
            return known, True
    return secrets.token_urlsafe(24), True


def grant(
    amqp_uri: str | None = None,
    prefix: str = DEFAULT_PREFIX,
    rotate: bool = False,
    api_uri: str | None = None,
    store: Path | None = None,
) -> dict[str, dict[str, str]]:
    """Create or update the user of every kind on the vhost of `amqp_uri` (an admin's).

    → `{"<kind>": {"user", "password", "amqp_uri"}, …}`. Idempotent: a re-run updates the
    permissions and keeps every password it knows (stored in `store`, default
    `VAR_DIR/bus-credentials.json`, mode 0600); `rotate` renews them.
    """
    amqp_uri = amqp_uri or settings.amqp_uri()
    if prefix and not prefix.endswith("-"):
        raise BusGrantError("The user prefix must end with '-', e.g. 'portal-'.")
    api = ManagementApi(api_uri or management_uri(amqp_uri))
    vhost = vhost_of(amqp_uri)
    store_path = store if store is not None else credentials_path()
    stored = _load_store(store_path)
    known = dict(stored)
    try:
        granted: dict[str, dict[str, str]] = {}
        for kind in KINDS:
            user = f"{prefix}{kind}"
            password, keep = _password(api, user, kind, known, rotate)
            api.put_user(user, password)
            api.put_permissions(vhost, user, permissions_for(kind))
            if keep:
                known[user] = password
            else:
                known.pop(user, None)
            granted[kind] = {
                "user": user,
                "password": password,
                "amqp_uri": with_credentials(amqp_uri, user, password),
            }
    except requests.RequestException as exc:
        raise BusGrantError(f"cannot reach RabbitMQ's management API at {api.base}: {exc}") from exc
    if known != stored:
        _save_store(store_path, known)
    return granted


def stored_uri(
    kind: str,
    amqp_uri: str | None = None,
    prefix: str = DEFAULT_PREFIX,
    store: Path | None = None,
) -> str | None:
    """`kind`'s AMQP URI on the broker of `amqp_uri`, with the password grant stored in
    `store` (default `VAR_DIR/bus-credentials.json`); None when it stored none (no grant yet,
    or the password came from `<KIND>_BUS_PASSWORD`)."""
    user = f"{prefix}{kind}"
    password = _load_store(store if store is not None else credentials_path()).get(user)
    if not password:
        return None
    return with_credentials(amqp_uri or settings.amqp_uri(), user, password)


def revoke(
    amqp_uri: str | None = None,
    prefix: str = DEFAULT_PREFIX,
    api_uri: str | None = None,
    store: Path | None = None,
) -> list[str]:
    """Delete the user of every kind (on every vhost); → the users deleted."""
    amqp_uri = amqp_uri or settings.amqp_uri()
    api = ManagementApi(api_uri or management_uri(amqp_uri))
    users = [f"{prefix}{kind}" for kind in KINDS]
    try:
        for user in users:
            api.delete_user(user)
    except requests.RequestException as exc:
        raise BusGrantError(f"cannot reach RabbitMQ's management API at {api.base}: {exc}") from exc
    store_path = store if store is not None else credentials_path()
    known = _load_store(store_path)
    if any(user in known for user in users):
        _save_store(store_path, {key: value for key, value in known.items() if key not in users})
    return users
