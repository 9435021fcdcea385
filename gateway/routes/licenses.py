"""Licenses & Activations in the portal (DESIGN.md §4, L1-L5).

Every route acts for the company of the session: licensing is always asked with that
company's customer ID, so another company's license is a 404 `license_not_found`, never a
403 and never data. Installation IDs are any Unicode: in a path, percent-encode them (UTF-8);
slashes are allowed (`<path:...>`).
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from common.schemas import load
from gateway import schemas
from gateway.http import route
from gateway.routes.base import RouteGroup

LICENSE_FIELDS = (
    "license_id",
    "product",
    "seats",
    "seats_in_use",
    "expires_at",
    "status",
    "created_at",
)
INSTALLATION_FIELDS = (
    "installation_id",
    "machine_name",
    "status",
    "activated_at",
    "last_seen_at",
    "deactivated_at",
    "deactivated_by",
)


def public_license(view: dict[str, Any]) -> dict[str, Any]:
    return {key: view.get(key) for key in LICENSE_FIELDS}


def public_installation(view: dict[str, Any]) -> dict[str, Any]:
    return {key: view.get(key) for key in INSTALLATION_FIELDS}


class LicenseRoutes(RouteGroup):
    @route(
        "GET",
        "/api/v1/licenses",
        summary="Every license of the company: product, seats in use / total, expiry, status",
        response=schemas.LicenseList,
        auth="session",
        tags=["licenses"],
    )
    def list_licenses(self, request: Request) -> dict[str, Any]:
        """→ `{licenses: [{license_id, product: {code, name}, seats, seats_in_use,
        expires_at, status}]}`; `expires_at` null means perpetual."""
        company = self.current_company(request)
        found = self.licensing.list_licenses(company["customer_id"])
        return {"licenses": [public_license(view) for view in found]}

    @route(
        "GET",
        "/api/v1/licenses/<license_id>",
        summary="One license with its activation password and installations",
        response=schemas.LicenseDetail,
        auth="session",
        tags=["licenses"],
        errors=["license_not_found"],
    )
    def get_license(self, request: Request, license_id: str) -> dict[str, Any]:
        """→ the license plus `activation_password` (activates this license only) and
        `installations` (newest first)."""
        company = self.current_company(request)
        view = self.licensing.get_license(license_id, company["customer_id"])
        return {
            **public_license(view),
            "activation_password": view["activation_password"],
            "installations": [public_installation(item) for item in view["installations"]],
        }

    @route(
        "GET",
        "/api/v1/licenses/<license_id>/installations",
        summary="Where the license is or was activated",
        response=schemas.InstallationList,
        auth="session",
        tags=["licenses"],
        errors=["license_not_found"],
    )
    def list_installations(self, request: Request, license_id: str) -> dict[str, Any]:
        """→ `{installations: [{installation_id, machine_name, status, activated_at,
        deactivated_at, deactivated_by}]}`, newest first."""
        company = self.current_company(request)
        found = self.licensing.list_installations(license_id, company["customer_id"])
        return {"installations": [public_installation(item) for item in found]}

    @route(
        "GET",
        "/api/v1/licenses/<license_id>/history",
        summary="Activation history, newest first; page with ?limit=1..200 (default 50) and "
        "?before=<next_before of the previous page>",
        response=schemas.HistoryPage,
        auth="session",
        tags=["licenses"],
        errors=["license_not_found", "validation_error"],
    )
    def history(self, request: Request, license_id: str) -> dict[str, Any]:
        """→ `{events: [{id, type, at, installation_id, machine_name, source, reason}],
        next_before}`; `next_before` null on the last page."""
        company = self.current_company(request)
        query = load(schemas.HistoryQuery(), request.args.to_dict())
        return self.licensing.history(
            license_id, company["customer_id"], limit=query["limit"], before=query["before"]
        )

    @route(
        "POST",
        "/api/v1/licenses/<license_id>/installations/<path:installation_id>/deactivate",
        summary="Deactivate an installation (machine dead, lost or stolen): frees its seat "
        "at once; percent-encode the installation ID",
        response=schemas.InstallationOut,
        auth="session",
        tags=["licenses"],
        errors=["license_not_found", "installation_not_found"],
    )
    def deactivate_installation(
        self, request: Request, license_id: str, installation_id: str
    ) -> dict[str, Any]:
        """→ 200 the installation with `status: "deactivated"`, `deactivated_by: "portal"`."""
        company = self.current_company(request)
        view = self.licensing.deactivate_installation(
            company["customer_id"], license_id, installation_id, "portal"
        )
        return public_installation(view)

    @route(
        "POST",
        "/api/v1/licenses/<license_id>/activation-password",
        summary="Rotate the license's activation password; the old one stops working at once",
        response=schemas.ActivationPasswordOut,
        auth="session",
        tags=["licenses"],
        errors=["license_not_found"],
    )
    def rotate_activation_password(self, request: Request, license_id: str) -> dict[str, Any]:
        """→ 200 `{license_id, activation_password}` (the new one)."""
        company = self.current_company(request)
        return self.licensing.rotate_activation_password(license_id, company["customer_id"])
