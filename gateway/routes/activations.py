"""The product activation API (DESIGN.md §4, P1-P3): no session, the password is the credential.

Also `GET /api/v1/_ping/licensing`, one licensing `ping` over RPC and nothing else: the
transport baseline the benchmark compares activations and validations with.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from gateway import schemas
from gateway.errors import json_response
from gateway.http import route
from gateway.routes.base import RouteGroup

JWKS_MAX_AGE_SECONDS = 300


class ActivationRoutes(RouteGroup):
    @route(
        "POST",
        "/api/v1/activations",
        summary="Activate a license on a machine: 201 new, 200 already active (no new seat)",
        body=schemas.ActivationBody,
        response=schemas.ActivationOut,
        status=201,
        auth="credential",
        tags=["activation"],
        errors=[
            "invalid_credentials",
            "too_many_attempts",
            "license_expired",
            "license_suspended",
            "no_seats_available",
        ],
    )
    def activate(self, request: Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """`{"license_id": "L-7KQX-M2PD", "password": "K7QX-M2PD-9TRW-H4NC", "installation_id":
        "…", "machine_name": "CAD-WS-07"}` → `{activation, certificate}`; 409
        `no_seats_available` lists the machines in use in `details.machines`."""
        result = self.licensing.activate(body)
        status = 201 if result.get("created") else 200
        return status, {"activation": result["activation"], "certificate": result["certificate"]}

    @route(
        "POST",
        "/api/v1/deactivations",
        summary="The product releases its own seat",
        body=schemas.DeactivationBody,
        response=schemas.InstallationOut,
        auth="credential",
        tags=["activation"],
        errors=["invalid_credentials", "too_many_attempts", "installation_not_found"],
    )
    def deactivate(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`{"license_id", "password", "installation_id"}` → 200 the installation
        (`deactivated_by: "product"`); again: the same answer."""
        return self.licensing.deactivate(body)

    @route(
        "POST",
        "/api/v1/validations",
        summary="Check a certificate online: VALID, EXPIRED, SUSPENDED, DEACTIVATED or "
        "BAD_SIGNATURE (always 200)",
        body=schemas.ValidationBody,
        response=schemas.ValidationOut,
        tags=["activation"],
    )
    def validate(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`{"certificate": "eyJ…"}` → `{valid, code, license_id, installation_id,
        expires_at}`."""
        return self.licensing.validate(body["certificate"])

    @route(
        "GET",
        "/api/v1/signing-keys",
        summary="JWKS of the Ed25519 keys that sign activation certificates (RFC 7517/8037)",
        response=schemas.Jwks,
        tags=["activation"],
    )
    def signing_keys(self, request: Request) -> Response:
        """→ `{keys: [{kty: "OKP", crv: "Ed25519", x, kid, use: "sig", alg: "EdDSA"}]}`."""
        return json_response(
            self.licensing.signing_keys(),
            headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE_SECONDS}"},
        )

    @route(
        "GET",
        "/api/v1/_ping/licensing",
        summary="One licensing ping over RPC: the transport baseline for benchmarks",
        tags=["ops"],
    )
    def ping_licensing(self, request: Request) -> dict[str, Any]:
        """→ `{"service": "licensing", "status": "ok"}`."""
        return self.licensing.ping()
