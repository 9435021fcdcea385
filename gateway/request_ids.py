"""The request ID of an HTTP request: one ID to find every log line of one customer action.

The gateway takes the client's `X-Request-ID` (1-128 safe characters, `common.context`) or
makes one, and keeps it in the WSGI environ. It goes back in the `X-Request-ID` response
header and in every error envelope (`error.request_id`), and into the worker's context data
(`request_id`), so every RPC the route makes, and the events those cause, carry it:
`GET /api/v1/account` with `X-Request-ID: abc-1` is answered with `X-Request-ID: abc-1`, and
the auth worker that checked the session logs with `"request_id": "abc-1"`.
"""

from __future__ import annotations

import uuid
from typing import Any

from common.context import REQUEST_ID, valid_request_id

HEADER = "X-Request-ID"
_ENVIRON_KEY = "gateway.request_id"
_WSGI_HEADER = "HTTP_X_REQUEST_ID"


def take(environ: dict[str, Any]) -> str:
    """The request's ID: the client's `X-Request-ID` if it is a safe one, else a new one
    (the same for the whole request, however often it is asked)."""
    known = environ.get(_ENVIRON_KEY)
    if known is not None:
        return known
    request_id = valid_request_id(environ.get(_WSGI_HEADER)) or uuid.uuid4().hex
    environ[_ENVIRON_KEY] = request_id
    return request_id


def context_data(environ: dict[str, Any]) -> dict[str, Any]:
    """`{"request_id": ...}`: what a worker of this request carries in its context data."""
    return {REQUEST_ID: take(environ)}
