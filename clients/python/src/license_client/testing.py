"""A fake License Portal for tests: the activation API in memory, no server needed.

    portal = FakePortal()
    portal.add_license("LIC-1", "pw", seats=1, product="cadpro")
    client = LicenseClient("http://portal.test", product="cadpro", transport=portal, ...)

`FakePortal` is a `Transport`, so a client talks to it without a socket; `serve(portal)` puts
the same fake on a loopback HTTP port for code that must go through real HTTP. It signs real
Ed25519 certificates and validation answers (`signed_answer`, with the request's nonce),
keeps seats, and can be made to fail (`down`, `fail_next`).

Licenses hold features (`add_license(..., features=["steel"])`): certificates carry them and
validations answer them as of now. Offline activation works as the portal's does, without the
session: `portal.respond_offline(license_id, request_text)` returns the response file's text
and `portal.deactivate_offline(license_id, proof_text)` frees the seat (also as
`POST /api/v1/licenses/{id}/offline-activations` `{"request"}` and
`.../offline-deactivations` `{"proof"}`).

Floating licenses (`add_license(..., model="floating", lease_seconds=60, max_borrow_days=7)`)
lend leases as the portal does: `POST /api/v1/leases` (201 new, 200 the installation's own
lease with a new token; 409 `no_seats_available` naming the machines and until when; 422
`borrow_not_allowed`), `POST /api/v1/leases/{id}/heartbeat` and `DELETE /api/v1/leases/{id}`
with `Authorization: Bearer <lease_token>` (401 `invalid_lease_token`, 410 `lease_expired`),
and `portal.revoke_lease(license_id, lease_id)` as an owner in the portal does. A lease
lapses at its `expires_at` by the fake's clock; `portal.live_leases(license_id)` lists them.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import jws
from .errors import from_response
from .transport import Response, Transport

REQUEST_FIELDS = (
    "type",
    "version",
    "license_id",
    "installation_id",
    "machine_name",
    "product",
    "requested_at",
    "nonce",
)
PROOF_FIELDS = ("type", "version", "license_id", "installation_id", "deactivated_at", "secret")
_OFFLINE_ROUTE = re.compile(r"\A/api/v1/licenses/([^/]+)/offline-(activations|deactivations)\Z")
_LEASE_ROUTE = re.compile(r"\A/api/v1/leases/([^/]+?)(/heartbeat)?\Z")
_REVOKE_ROUTE = re.compile(r"\A/api/v1/licenses/([^/]+)/leases/([^/]+)/revoke\Z")


@dataclass
class FakeLease:
    lease_id: str
    installation_id: str
    machine_name: str
    token_hash: str  # SHA-256 hex of the lease token, as the portal keeps it
    started_at: datetime
    expires_at: datetime
    borrowed: bool = False
    status: str = "live"  # live | checked_in | revoked | expired
    ended_at: datetime | None = None
    last_heartbeat_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return self.status == "live" and self.expires_at > now


@dataclass
class FakeLicense:
    license_id: str
    password: str
    seats: int = 1
    product: str = "cadpro"
    customer_id: str = "C-100001"
    expires_at: datetime | None = None
    status: str = "active"  # active | suspended
    installations: dict[str, str] = field(default_factory=dict)  # installation ID → machine
    # installation ID → (when, by whom: portal, product, offline) of its last deactivation
    deactivations: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    suspended_at: datetime | None = None
    suspension_reason: str | None = None  # the customer's words, answered with SUSPENDED
    features: list[str] = field(default_factory=list)  # feature codes
    # installation ID → SHA-256 (hex) of its offline deactivation secret, as the portal keeps
    offline_secrets: dict[str, str] = field(default_factory=dict)
    model: str = "node_locked"  # node_locked | floating
    lease_seconds: int | None = None  # floating: one lease period (default 900)
    max_borrow_days: int | None = None  # floating: 0 = no borrowing (default 7)
    leases: dict[str, FakeLease] = field(default_factory=dict)  # lease ID → lease


class FakePortal(Transport):
    """The portal's product activation API (activations, deactivations, validations), in memory."""

    def __init__(self, clock: Callable[[], datetime] | None = None, kid: str = "k1") -> None:
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.key = Ed25519PrivateKey.generate()
        self.kid = kid
        self.licenses: dict[str, FakeLicense] = {}
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, payload)
        self.answers: list[tuple[str, int]] = []  # (path, status)
        self.down = False  # every request fails as a refused connection
        self.failures: list[int] = []  # statuses to answer the next requests with
        self.lock = threading.Lock()
        self._lease_numbers = itertools.count(1)

    # -- set-up -----------------------------------------------------------------------------

    def add_license(self, license_id: str, password: str, **kwargs: Any) -> FakeLicense:
        if kwargs.get("model") == "floating":
            kwargs.setdefault("lease_seconds", 900)
            kwargs.setdefault("max_borrow_days", 7)
        license_ = FakeLicense(license_id, password, **kwargs)
        self.licenses[license_id] = license_
        return license_

    def deactivate_installation(self, license_id: str, installation_id: str) -> None:
        """Free a machine's seat as a user does in the portal (its validation: DEACTIVATED,
        from the portal, now)."""
        license_ = self.licenses[license_id]
        license_.installations.pop(installation_id)
        license_.deactivations[installation_id] = (self.clock(), "portal")

    def suspend(self, license_id: str, reason: str | None = None) -> None:
        """Suspend a license as staff do, with the customer's `reason`."""
        license_ = self.licenses[license_id]
        license_.status, license_.suspended_at = "suspended", self.clock()
        license_.suspension_reason = reason

    def fail_next(self, count: int, status: int = 503) -> None:
        self.failures.extend([status] * count)

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [jws.public_jwk(self.key.public_key(), self.kid)]}

    def certificate(
        self,
        license_: FakeLicense,
        installation_id: str,
        machine: str,
        nonce: str | None = None,
        lease: FakeLease | None = None,
    ) -> str:
        """A certificate as licensing signs it; with the offline request's `nonce`, one made
        by offline activation (claims `source: "offline"` and `nonce`, which online
        certificates do not have)."""
        claims: dict[str, Any] = {
            "license_id": license_.license_id,
            "installation_id": installation_id,
            "machine_name": machine,
            "customer_id": license_.customer_id,
            "product": license_.product,
            "features": sorted(license_.features),
            "iat": int(self.clock().timestamp()),
        }
        if license_.expires_at is not None:
            claims["exp"] = int(license_.expires_at.timestamp())
        if nonce is not None:
            claims.update(source="offline", nonce=nonce)
        if lease is not None:  # a lease's: its exp is the lease's end
            claims.update(
                lease_id=lease.lease_id,
                model="floating",
                borrowed=lease.borrowed,
                exp=int(lease.expires_at.timestamp()),
            )
        return jws.sign(claims, self.key, self.kid)

    # -- Transport ----------------------------------------------------------------------------

    def send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> Response:
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        payload = json.loads(body) if body else None
        status, document, extra = self.handle(method, urlsplit(url).path, payload, headers)
        data = b"" if document is None else json.dumps(document).encode("utf-8")
        return Response(status, {"content-type": "application/json", **extra}, data)

    def handle(
        self, method: str, path: str, payload: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append((method, path, payload))
            answer = self._route(method, path, payload, _bearer(headers or {}))
            self.answers.append((path, answer[0]))
            return answer

    def _route(
        self, method: str, path: str, payload: Any, token: str | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        if self.failures:
            status = self.failures.pop(0)
            code = {429: "too_many_attempts", 503: "service_unavailable"}.get(status, "error")
            return status, _error(code, "failing on purpose"), {}
        route = {
            ("GET", "/api/v1/signing-keys"): lambda _: (200, self.jwks, {}),
            ("POST", "/api/v1/activations"): self._activate,
            ("POST", "/api/v1/deactivations"): self._deactivate,
            ("POST", "/api/v1/validations"): self._validate,
            ("POST", "/api/v1/leases"): self._checkout,
        }.get((method, path))
        lease_route = _LEASE_ROUTE.match(path)
        if lease_route is not None and route is None:
            lease_id, heartbeat = lease_route.groups()
            if (method, bool(heartbeat)) in (("POST", True), ("DELETE", False)):
                return self._lease_call(lease_id, token, heartbeat=bool(heartbeat))
        revoke = _REVOKE_ROUTE.match(path) if method == "POST" else None
        if revoke is not None:
            return self._revoke_route(*revoke.groups())
        offline = _OFFLINE_ROUTE.match(path) if method == "POST" else None
        if offline is not None:
            license_id, kind = offline.groups()
            if kind == "activations":
                route = functools.partial(self._activate_offline_route, license_id)
            else:
                route = functools.partial(self._deactivate_offline_route, license_id)
        if route is None:
            return 404, _error("not_found", "no such route"), {}
        if method == "POST" and not isinstance(payload, dict):
            return 400, _error("invalid_json", "a JSON object is expected"), {}
        return route(payload)

    def _credentials(self, payload: dict[str, Any]) -> FakeLicense | tuple[int, Any, dict]:
        license_ = self.licenses.get(payload.get("license_id", ""))
        if license_ is None or payload.get("password") != license_.password:
            return 401, _error("invalid_credentials", "wrong license ID or password"), {}
        return license_

    def _machine_credentials(self, payload: dict[str, Any]) -> FakeLicense | tuple[int, Any, dict]:
        """An activation's or check-out's license: 422 naming a missing field, else as
        `_credentials`, then 409 `wrong_product` when the payload names another product."""
        missing = [
            k
            for k in ("license_id", "password", "installation_id", "machine_name")
            if not isinstance(payload.get(k), str) or not payload.get(k)
        ]
        if missing:
            fields = {name: ["Missing data for required field."] for name in missing}
            return 422, _error("validation_error", "invalid fields", {"fields": fields}), {}
        found = self._credentials(payload)
        requested = payload.get("product")
        if (
            isinstance(found, FakeLicense)
            and isinstance(requested, str)
            and requested.strip().lower() != found.product
        ):
            message = f"License {found.license_id} is for {found.product}, not {requested}."
            details = {
                "license_id": found.license_id,
                "product": found.product,
                "requested": requested,
            }
            return 409, _error("wrong_product", message, details), {}
        return found

    def _activate(self, payload: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        found = self._machine_credentials(payload)
        if not isinstance(found, FakeLicense):
            return found
        license_ = found
        if license_.status == "suspended":
            details = {"license_id": license_.license_id}
            return 403, _error("license_suspended", "the license is suspended", details), {}
        if license_.expires_at is not None and license_.expires_at <= self.clock():
            details = {"license_id": license_.license_id, "expires_at": _iso(license_.expires_at)}
            return 403, _error("license_expired", "the license has expired", details), {}
        if license_.model == "floating":
            message = "This license is floating: check out a lease instead."
            return 409, _error("floating_license", message), {}
        installation = payload["installation_id"]
        status = 200
        if installation not in license_.installations:
            if len(license_.installations) >= license_.seats:
                details = {
                    "license_id": license_.license_id,
                    "seats": license_.seats,
                    "installations": [
                        {"installation_id": i, "machine_name": m}
                        for i, m in license_.installations.items()
                    ],
                }
                return 409, _error("no_seats_available", "every seat is in use", details), {}
            status = 201
        license_.installations[installation] = payload["machine_name"]
        license_.offline_secrets.pop(installation, None)  # an online activation clears it
        certificate = self.certificate(license_, installation, payload["machine_name"])
        activation = {
            "license_id": license_.license_id,
            "installation_id": installation,
            "machine_name": payload["machine_name"],
            "status": "active",
        }
        return status, {"activation": activation, "certificate": certificate}, {}

    # -- leases of floating licenses ----------------------------------------------------------

    def live_leases(self, license_id: str) -> list[FakeLease]:
        """The live leases of a license, oldest first."""
        now = self.clock()
        leases = self.licenses[license_id].leases.values()
        return sorted((lease for lease in leases if lease.live(now)), key=lambda x: x.started_at)

    def revoke_lease(self, license_id: str, lease_id: str) -> dict[str, Any]:
        """Revoke a lease as an owner does in the portal; its next heartbeat gets 410."""
        status, document, _ = self.handle(
            "POST", f"/api/v1/licenses/{license_id}/leases/{lease_id}/revoke", {}
        )
        if status >= 400:
            raise from_response(status, document)
        return document

    def _checkout(self, payload: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        found = self._machine_credentials(payload)
        if not isinstance(found, FakeLicense):
            return found
        license_ = found
        now = self.clock()
        if license_.status == "suspended":
            return 403, _error("license_suspended", "the license is suspended"), {}
        if license_.expires_at is not None and license_.expires_at <= now:
            return 403, _error("license_expired", "the license has expired"), {}
        if license_.model != "floating":
            message = "This license is node-locked: activate it instead."
            return 409, _error("node_locked_license", message), {}
        period = timedelta(seconds=license_.lease_seconds or 900)
        expires = now + period
        borrowed = payload.get("borrow_until") is not None
        if borrowed:
            until = _parse_time(payload["borrow_until"])
            if until is None or until <= now:
                fields = {"borrow_until": ["Must be a future date-time."]}
                return 422, _error("validation_error", "invalid fields", {"fields": fields}), {}
            latest = now + timedelta(days=license_.max_borrow_days or 0)
            if not license_.max_borrow_days or until > latest:
                details = {"max_borrow_days": license_.max_borrow_days or 0, "latest": _iso(latest)}
                message = (
                    f"This license lends a seat for at most {details['max_borrow_days']} days."
                )
                return 422, _error("borrow_not_allowed", message, details), {}
            expires = until
        if license_.expires_at is not None:
            expires = min(expires, license_.expires_at)
        for lease in license_.leases.values():  # lapsed leases end at their expiry
            if lease.status == "live" and lease.expires_at <= now:
                lease.status, lease.ended_at = "expired", lease.expires_at
        live = self.live_leases(license_.license_id)
        installation = payload["installation_id"]
        token = secrets.token_urlsafe(32)
        mine = next((lease for lease in live if lease.installation_id == installation), None)
        if mine is not None:  # the same lease again: a new token, extended
            mine.token_hash = _sha256(token)
            mine.expires_at = expires if borrowed else max(mine.expires_at, expires)
            mine.borrowed = mine.borrowed or borrowed
            mine.machine_name = payload["machine_name"]
            return 200, self._lease_answer(license_, mine, token), {}
        if len(live) >= license_.seats:
            details = {
                "license_id": license_.license_id,
                "seats": license_.seats,
                "machines": [
                    {
                        "machine_name": lease.machine_name,
                        "expires_at": _iso(lease.expires_at),
                        "borrowed": lease.borrowed,
                    }
                    for lease in live
                ],
            }
            return 409, _error("no_seats_available", "every seat is in use", details), {}
        number = next(self._lease_numbers)
        lease = FakeLease(
            lease_id=f"LS-{number:04d}-FAKE",
            installation_id=installation,
            machine_name=payload["machine_name"],
            token_hash=_sha256(token),
            started_at=now,
            expires_at=expires,
            borrowed=borrowed,
        )
        license_.leases[lease.lease_id] = lease
        return 201, self._lease_answer(license_, lease, token), {}

    def _lease_call(
        self, lease_id: str, token: str | None, heartbeat: bool
    ) -> tuple[int, Any, dict[str, str]]:
        found = next(
            (
                (license_, license_.leases[lease_id])
                for license_ in self.licenses.values()
                if lease_id in license_.leases
            ),
            None,
        )
        if (
            found is None
            or token is None
            or not secrets.compare_digest(found[1].token_hash, _sha256(token))
        ):
            return 401, _error("invalid_lease_token", "unknown lease or wrong token"), {}
        license_, lease = found
        now = self.clock()
        if lease.status == "live" and lease.expires_at <= now:
            lease.status, lease.ended_at = "expired", lease.expires_at
        if not heartbeat:  # check-in: the seat is free at once; again is harmless
            if lease.status == "live":
                lease.status, lease.ended_at = "checked_in", now
            return 204, None, {}
        if lease.status != "live":
            details = {
                "lease_id": lease.lease_id,
                "reason": lease.status,
                "ended_at": _iso(lease.ended_at),
            }
            return 410, _error("lease_expired", "the lease has ended", details), {}
        if license_.status == "suspended":
            return 403, _error("license_suspended", "the license is suspended"), {}
        expires = max(lease.expires_at, now + timedelta(seconds=license_.lease_seconds or 900))
        if license_.expires_at is not None:
            expires = min(expires, license_.expires_at)
        lease.expires_at, lease.last_heartbeat_at = expires, now
        answer = self._lease_answer(license_, lease, None)
        return 200, answer, {}

    def _revoke_route(self, license_id: str, lease_id: str) -> tuple[int, Any, dict[str, str]]:
        license_ = self.licenses.get(license_id)
        if license_ is None:
            return 404, _error("license_not_found", "no such license"), {}
        lease = license_.leases.get(lease_id)
        if lease is None:
            return 404, _error("lease_not_found", "no such lease"), {}
        if lease.live(self.clock()):
            lease.status, lease.ended_at = "revoked", self.clock()
        return 200, self._lease_view(license_, lease), {}

    def _lease_answer(
        self, license_: FakeLicense, lease: FakeLease, token: str | None
    ) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "lease": self._lease_view(license_, lease),
            "certificate": self.certificate(
                license_, lease.installation_id, lease.machine_name, lease=lease
            ),
        }
        if token is not None:
            answer["lease_token"] = token
        return answer

    @staticmethod
    def _lease_view(license_: FakeLicense, lease: FakeLease) -> dict[str, Any]:
        return {
            "lease_id": lease.lease_id,
            "license_id": license_.license_id,
            "installation_id": lease.installation_id,
            "machine_name": lease.machine_name,
            "started_at": _iso(lease.started_at),
            "expires_at": _iso(lease.expires_at),
            "last_heartbeat_at": _iso(lease.last_heartbeat_at),
            "borrowed": lease.borrowed,
            "borrowed_until": _iso(lease.expires_at) if lease.borrowed else None,
            "status": lease.status,
            "ended_at": _iso(lease.ended_at),
        }

    # -- offline activation -------------------------------------------------------------------

    def respond_offline(self, license_id: str, request_text: str) -> str:
        """The response file's text for an activation request (what the portal's page gives);
        raises the kit's `LicenseError` for the portal's refusals."""
        status, document, _ = self.handle(
            "POST", f"/api/v1/licenses/{license_id}/offline-activations", {"request": request_text}
        )
        if status >= 400:
            raise from_response(status, document)
        return document["response"]

    def deactivate_offline(self, license_id: str, proof_text: str) -> dict[str, Any]:
        """Upload a deactivation proof; the installation's view, or the kit's `LicenseError`."""
        status, document, _ = self.handle(
            "POST", f"/api/v1/licenses/{license_id}/offline-deactivations", {"proof": proof_text}
        )
        if status >= 400:
            raise from_response(status, document)
        return document

    def _activate_offline_route(
        self, license_id: str, payload: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        license_ = self.licenses.get(license_id)
        if license_ is None:
            return 404, _error("license_not_found", "no such license"), {}
        request = _offline_file(
            payload.get("request"), "activation_request", REQUEST_FIELDS, "invalid_request"
        )
        if not isinstance(request, dict):
            return request
        if request["license_id"].strip().upper() != license_id:  # canonical, as the portal
            problem = f"This request is for license {request['license_id']}, not {license_id}."
            return 422, _error("invalid_request", problem, {"problem": problem}), {}
        if request["product"] != license_.product:
            problem = f"This request is for product {request['product']}, not {license_.product}."
            return 422, _error("invalid_request", problem, {"problem": problem}), {}
        if license_.status == "suspended":
            return 403, _error("license_suspended", "the license is suspended"), {}
        if license_.expires_at is not None and license_.expires_at <= self.clock():
            return 403, _error("license_expired", "the license has expired"), {}
        installation = request["installation_id"]
        status = 200
        if installation not in license_.installations:
            if len(license_.installations) >= license_.seats:
                details = {
                    "seats": license_.seats,
                    "machines": list(license_.installations.values()),
                }
                return 409, _error("no_seats_available", "every seat is in use", details), {}
            status = 201
        license_.installations[installation] = request["machine_name"]
        secret = secrets.token_urlsafe(32)
        license_.offline_secrets[installation] = hashlib.sha256(secret.encode()).hexdigest()
        certificate = self.certificate(
            license_, installation, request["machine_name"], nonce=request["nonce"]
        )
        response = {
            "type": "activation_response",
            "version": 1,
            "license_id": license_id,
            "installation_id": installation,
            "product": license_.product,
            "nonce": request["nonce"],
            "issued_at": self.clock().replace(microsecond=0).isoformat(),
            "certificate": certificate,
            "deactivation_secret": secret,
        }
        activation = {
            "license_id": license_id,
            "installation_id": installation,
            "machine_name": request["machine_name"],
            "status": "active",
            "source": "offline",
        }
        answer = {
            "activation": activation,
            "certificate": certificate,
            "response": json.dumps(response, indent=2) + "\n",
        }
        return status, answer, {}

    def _deactivate_offline_route(
        self, license_id: str, payload: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        license_ = self.licenses.get(license_id)
        if license_ is None:
            return 404, _error("license_not_found", "no such license"), {}
        proof = _offline_file(
            payload.get("proof"), "deactivation_proof", PROOF_FIELDS, "invalid_proof"
        )
        if not isinstance(proof, dict):
            return proof
        installation = proof["installation_id"]
        stored = license_.offline_secrets.get(installation)
        digest = hashlib.sha256(proof["secret"].encode()).hexdigest()
        if (
            proof["license_id"] != license_id
            or installation not in license_.installations
            or stored is None
            or not secrets.compare_digest(stored, digest)
        ):
            problem = "The proof is forged, already used, or for another license."
            return 422, _error("invalid_proof", problem, {"problem": problem}), {}
        del license_.offline_secrets[installation]
        machine = license_.installations.pop(installation)
        license_.deactivations[installation] = (self.clock(), "offline")
        view = {
            "license_id": license_id,
            "installation_id": installation,
            "machine_name": machine,
            "status": "deactivated",
            "deactivated_by": "offline",
        }
        return 200, view, {}

    def _deactivate(self, payload: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        found = self._credentials(payload)
        if not isinstance(found, FakeLicense):
            return found
        if found.installations.pop(payload.get("installation_id"), None) is not None:
            found.deactivations[payload["installation_id"]] = (self.clock(), "product")
        return 200, {"installation_id": payload.get("installation_id"), "status": "inactive"}, {}

    def _validate(self, payload: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        answer = self._verdict(payload.get("certificate"))
        claims = {**answer, "iat": int(self.clock().timestamp())}
        nonce = payload.get("nonce")
        if nonce is not None:
            claims["nonce"] = nonce
        signed = jws.sign(claims, self.key, self.kid, typ=jws.VALIDATION_TYP)
        return 200, {**answer, "signed_answer": signed}, {}

    def _verdict(self, token: Any) -> dict[str, Any]:
        try:
            certificate = jws.KeySet.from_jwks(self.jwks).verify(token)
        except jws.CertificateError:
            return {
                "valid": False,
                "code": "BAD_SIGNATURE",
                "license_id": None,
                "installation_id": None,
                "expires_at": None,
            }
        license_ = self.licenses.get(certificate.license_id or "")
        code = "VALID"
        lease_id = certificate.claims.get("lease_id")
        if lease_id is not None:
            lease = license_.leases.get(lease_id) if license_ else None
            if lease is None or not lease.live(self.clock()):
                code = "LEASE_EXPIRED"
        elif license_ is None or certificate.installation_id not in license_.installations:
            code = "DEACTIVATED"
        if code != "VALID" or license_ is None:
            pass
        elif license_.status == "suspended":
            code = "SUSPENDED"
        elif license_.expires_at is not None and license_.expires_at <= self.clock():
            code = "EXPIRED"
        expires = license_.expires_at if license_ else None
        features = sorted(license_.features) if license_ and code == "VALID" else []
        deactivated = (None, None)
        if code == "DEACTIVATED" and license_ is not None:
            deactivated = license_.deactivations.get(certificate.installation_id or "", deactivated)
        suspended = (None, None)
        if code == "SUSPENDED" and license_ is not None:
            suspended = (license_.suspended_at, license_.suspension_reason)
        return {
            "features": features,
            "valid": code == "VALID",
            "code": code,
            "license_id": certificate.license_id,
            "installation_id": certificate.installation_id,
            "expires_at": _iso(expires),
            "deactivated_at": _iso(deactivated[0]),
            "deactivated_by": deactivated[1],
            "suspended_at": _iso(suspended[0]),
            "suspension_reason": suspended[1],
        }


def _offline_file(
    text: Any, kind: str, fields: tuple[str, ...], code: str
) -> dict[str, Any] | tuple[int, Any, dict[str, str]]:
    """The file's fields, or the 422 the portal answers for a malformed one."""

    def bad(problem: str, name: str | None = None) -> tuple[int, Any, dict[str, str]]:
        details = {"problem": problem, **({"field": name} if name else {})}
        return 422, _error(code, problem, details), {}

    if not isinstance(text, str):
        return bad("The file's text is missing.")
    if len(text.encode("utf-8", "surrogatepass")) > 16 * 1024:
        return bad("The file is larger than 16 KiB.")
    try:
        document = json.loads(text)
    except ValueError:
        return bad("The file is not JSON (it may have been cut short).")
    if not isinstance(document, dict):
        return bad("The file is not a JSON object.")
    if document.get("type") != kind:
        return bad(f"The file is not an {kind}.", "type")
    if document.get("version") != 1 or type(document.get("version")) is not int:
        return bad("Unsupported version.", "version")
    for name in document:
        if name not in fields:
            return bad(f"Unknown field {name!r}.", name)
    for name in fields[2:]:
        value = document.get(name)
        if not isinstance(value, str) or not value or len(value) > 200:
            return bad(f"The field {name!r} is missing or not a short text.", name)
    return document


def _bearer(headers: dict[str, str]) -> str | None:
    for name, value in headers.items():
        if name.lower() == "authorization" and value.startswith("Bearer "):
            return value[len("Bearer ") :].strip() or None
    return None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _error(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


@contextmanager
def serve(portal: FakePortal) -> Iterator[str]:
    """`portal` on a loopback HTTP port for the duration; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = "not json"
            if portal.down:
                self.close_connection = True
                return
            status, document, extra = portal.handle(
                self.command, urlsplit(self.path).path, payload, dict(self.headers.items())
            )
            data = b"" if document is None else json.dumps(document).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet tests

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
