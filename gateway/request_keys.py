"""The request key of a state-changing HTTP request: what makes a redelivered RPC harmless.

Every POST, PUT, PATCH and DELETE reaches the services with a request key in the RPC context
(`request_key`): the client's `Idempotency-Key` header (1 to 64 printable characters), or
one made here for this HTTP request. A service that is handed the same request twice (the
bus redelivered it, or the client retried with the same key) answers the first answer again
and changes nothing twice; the same key with a different body is 422
`idempotency_key_reused`. Keys are per company.

The key is worked out once per request (`key_for`) and kept in the WSGI environ, so the
worker context (`gateway.http`, before the worker starts) and a route that also passes it in
a payload (the purchase) see the same one: `POST /api/v1/purchases` with
`Idempotency-Key: k-1` runs its worker with context data `{"request_key": "k-1"}`.
"""

from __future__ import annotations

import uuid
from typing import Any

from werkzeug.wrappers import Request

from common.errors import validation_error
from common.idempotency import REQUEST_KEY as CONTEXT_KEY

HEADER = "Idempotency-Key"
KEY_MAX = 64
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ENVIRON_KEY = "gateway.request_key"


def changes_state(method: str) -> bool:
    """Whether requests of `method` carry a request key."""
    return method.upper() in STATE_CHANGING


def check_key(value: str) -> str:
    """A client's `Idempotency-Key`, or a 422 `validation_error` naming the header."""
    if not 0 < len(value) <= KEY_MAX or not value.isprintable():
        raise validation_error(
            {HEADER: [f"Use 1 to {KEY_MAX} printable characters (a UUID, for example)."]}
        )
    return value


def key_for(request: Request) -> str:
    """This request's key: its `Idempotency-Key` header, checked, else a new random one
    (the same for the whole request, however often it is asked)."""
    known = request.environ.get(_ENVIRON_KEY)
    if known is not None:
        return known
    given = request.headers.get(HEADER)
    key = check_key(given) if given is not None else uuid.uuid4().hex
    request.environ[_ENVIRON_KEY] = key
    return key


def context_data(request: Request) -> dict[str, Any]:
    """The worker context data of `request`: `{"request_key": ...}` for a state change,
    nothing for a read (a GET changes nothing, so it needs no key)."""
    if not changes_state(request.method):
        return {}
    return {CONTEXT_KEY: key_for(request)}
