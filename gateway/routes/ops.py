"""Health, readiness and the API description, for ops and client generators."""

from __future__ import annotations

from typing import Any

import eventlet
from werkzeug.wrappers import Request, Response

from common.errors import PortalError
from gateway import openapi, schemas
from gateway.errors import json_response
from gateway.http import route
from gateway.routes.base import RouteGroup

SERVICES = ("auth", "licensing", "billing", "notify")
READY_TIMEOUT = 3.0


class OpsRoutes(RouteGroup):
    @route("GET", "/healthz", summary="The gateway process is up", tags=["ops"])
    def healthz(self, request: Request) -> dict[str, Any]:
        return {"status": "ok"}

    @route(
        "GET",
        "/readyz",
        summary="Every service answers a ping over RPC (503 naming those that do not)",
        response=schemas.Health,
        tags=["ops"],
    )
    def readyz(self, request: Request) -> Response:
        def ping(service: str) -> tuple[str, str]:
            client = getattr(self, service)
            try:
                with eventlet.Timeout(READY_TIMEOUT):
                    client.ping()
                return service, "ok"
            except (PortalError, eventlet.Timeout):
                return service, "unavailable"

        pool = eventlet.GreenPool(len(SERVICES))
        states = dict(pool.imap(ping, SERVICES))
        ready = all(state == "ok" for state in states.values())
        return json_response(
            {"status": "ready" if ready else "unavailable", "services": states},
            200 if ready else 503,
        )

    @route("GET", "/api/v1/openapi.json", summary="This API as OpenAPI 3", tags=["ops"])
    def openapi_document(self, request: Request) -> dict[str, Any]:
        return openapi.build()
