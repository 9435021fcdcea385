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
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
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
    features: list[str] = field(default_factory=list)  # feature codes
    # installation ID → SHA-256 (hex) of its offline deactivation secret, as the portal keeps
    offline_secrets: dict[str, str] = field(default_factory=dict)


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

    # -- set-up -----------------------------------------------------------------------------

    def add_license(self, license_id: str, password: str, **kwargs: Any) -> FakeLicense:
        license_ = FakeLicense(license_id, password, **kwargs)
        self.licenses[license_id] = license_
        return license_

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
        return jws.sign(claims, self.key, self.kid)

    # -- Transport ----------------------------------------------------------------------------

    def send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> Response:
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        payload = json.loads(body) if body else None
        status, document, extra = self.handle(method, urlsplit(url).path, payload)
        data = b"" if document is None else json.dumps(document).encode("utf-8")
        return Response(status, {"content-type": "application/json", **extra}, data)

    def handle(self, method: str, path: str, payload: Any) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append((method, path, payload))
            answer = self._route(method, path, payload)
            self.answers.append((path, answer[0]))
            return answer

    def _route(self, method: str, path: str, payload: Any) -> tuple[int, Any, dict[str, str]]:
        if self.failures:
            status = self.failures.pop(0)
            code = {429: "too_many_attempts", 503: "service_unavailable"}.get(status, "error")
            return status, _error(code, "failing on purpose"), {}
        route = {
            ("GET", "/api/v1/signing-keys"): lambda _: (200, self.jwks, {}),
            ("POST", "/api/v1/activations"): self._activate,
            ("POST", "/api/v1/deactivations"): self._deactivate,
            ("POST", "/api/v1/validations"): self._validate,
        }.get((method, path))
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

    def _activate(self, payload: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        missing = [
            k
            for k in ("license_id", "password", "installation_id", "machine_name")
            if not isinstance(payload.get(k), str) or not payload.get(k)
        ]
        if missing:
            fields = {name: ["Missing data for required field."] for name in missing}
            return 422, _error("validation_error", "invalid fields", {"fields": fields}), {}
        found = self._credentials(payload)
        if not isinstance(found, FakeLicense):
            return found
        license_ = found
        if license_.status == "suspended":
            return 403, _error("license_suspended", "the license is suspended"), {}
        if license_.expires_at is not None and license_.expires_at <= self.clock():
            return 403, _error("license_expired", "the license has expired"), {}
        installation = payload["installation_id"]
        status = 200
        if installation not in license_.installations:
            if len(license_.installations) >= license_.seats:
                details = {
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
        found.installations.pop(payload.get("installation_id"), None)
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
        if license_ is None or certificate.installation_id not in license_.installations:
            code = "DEACTIVATED"
        elif license_.status == "suspended":
            code = "SUSPENDED"
        elif license_.expires_at is not None and license_.expires_at <= self.clock():
            code = "EXPIRED"
        expires = license_.expires_at if license_ else None
        features = sorted(license_.features) if license_ and code == "VALID" else []
        return {
            "features": features,
            "valid": code == "VALID",
            "code": code,
            "license_id": certificate.license_id,
            "installation_id": certificate.installation_id,
            "expires_at": expires.isoformat().replace("+00:00", "Z") if expires else None,
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
            status, document, extra = portal.handle(self.command, urlsplit(self.path).path, payload)
            data = b"" if document is None else json.dumps(document).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

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
