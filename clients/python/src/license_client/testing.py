"""A fake License Portal for tests: the activation API in memory, no server needed.

    portal = FakePortal()
    portal.add_license("LIC-1", "pw", seats=1, product="cadpro")
    client = LicenseClient("http://portal.test", product="cadpro", transport=portal, ...)

`FakePortal` is a `Transport`, so a client talks to it without a socket; `serve(portal)` puts
the same fake on a loopback HTTP port for code that must go through real HTTP. It signs real
Ed25519 certificates and validation answers (`signed_answer`, with the request's nonce),
keeps seats, and can be made to fail (`down`, `fail_next`).
"""

from __future__ import annotations

import json
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
from .transport import Response, Transport


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

    def certificate(self, license_: FakeLicense, installation_id: str, machine: str) -> str:
        claims: dict[str, Any] = {
            "license_id": license_.license_id,
            "installation_id": installation_id,
            "machine_name": machine,
            "customer_id": license_.customer_id,
            "product": license_.product,
            "iat": int(self.clock().timestamp()),
        }
        if license_.expires_at is not None:
            claims["exp"] = int(license_.expires_at.timestamp())
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
        certificate = self.certificate(license_, installation, payload["machine_name"])
        activation = {
            "license_id": license_.license_id,
            "installation_id": installation,
            "machine_name": payload["machine_name"],
            "status": "active",
        }
        return status, {"activation": activation, "certificate": certificate}, {}

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
        return {
            "valid": code == "VALID",
            "code": code,
            "license_id": certificate.license_id,
            "installation_id": certificate.installation_id,
            "expires_at": expires.isoformat().replace("+00:00", "Z") if expires else None,
        }


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
