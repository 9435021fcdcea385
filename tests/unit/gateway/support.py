"""What the gateway's route tests share: a request builder and a fake auth.

Route methods are called as `worker_factory` gives them, so the `@route` machinery runs
around them (session authentication, the dump through the response schema); only the body
parsing, which happens before a worker exists, is tested on its own in `test_http.py`.
"""

from __future__ import annotations

from typing import Any

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from common.errors import PortalError
from gateway.read_model import ValidationReadModel

TOKEN = "t0ken"
USER = {"user_id": "U-7KQX-M2PD", "email": "ada@acme.test", "name": "Ada", "role": "owner"}
COMPANY = {
    "customer_id": "C1000001",
    "name": "Acme <b>Evil</b>",
    "contact_name": "Ada",
    "contact_email": "ada@acme.test",
    # auth's company view holds more than a client may see
    "has_password": True,
    "created_at": "2026-01-05T10:00:00+00:00",
    "user": USER,
}
PUBLIC_COMPANY = {
    "customer_id": "C1000001",
    "name": "Acme <b>Evil</b>",
    "contact_name": "Ada",
    "contact_email": "ada@acme.test",
}
EXPIRES_AT = "2026-03-10T21:00:00+00:00"


class FakeAuth:
    """Knows one live session, `TOKEN`, of a user with `role`; records what it was asked."""

    def __init__(self, error: PortalError | None = None, role: str = "owner") -> None:
        self.error = error
        self.role = role
        self.calls: list[tuple[str, Any]] = []

    @property
    def user(self) -> dict[str, Any]:
        return {**USER, "role": self.role}

    def authenticate(self, token: str) -> dict[str, Any]:
        self.calls.append(("authenticate", token))
        if self.error is not None:
            raise self.error
        if token != TOKEN:
            raise PortalError("Please log in.", code="unauthenticated")
        return {**COMPANY, "user": self.user}

    def login(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("login", body["login"]))
        return {"token": TOKEN, "expires_at": EXPIRES_AT, "company": COMPANY, "user": self.user}

    def logout(self, token: str) -> None:
        self.calls.append(("logout", token))

    def change_password(self, token: str, body: dict[str, Any]) -> None:
        self.calls.append(("change_password", token))


def make_request(
    method: str = "GET",
    path: str = "/",
    *,
    token: str | None = TOKEN,
    cookies: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Request:
    """A request with `Authorization: Bearer <token>` (none when `token` is None)."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    if cookies:
        all_headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    environ = EnvironBuilder(method=method, path=path, headers=all_headers, **kwargs)
    return Request(environ.get_environ())


def bypassing_read_model() -> ValidationReadModel:
    """A validation read model whose event consumer never connected: every validation goes
    to licensing's `validate`, as before the gateway answered them itself."""
    read_model = ValidationReadModel()
    read_model.setup()
    return read_model
