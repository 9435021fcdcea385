"""What the worker running right now is doing: the request ID its logs and events carry.

The gateway takes `X-Request-ID` from a request (or makes one) and puts it in nameko's
context data as `request_id`; nameko carries context data over RPC and events, and each
worker records it here (greenthread-local) when it starts, so a log record and an event
staged deep inside a use case know it without being handed it.
"""

from __future__ import annotations

import re

from eventlet import corolocal

REQUEST_ID = "request_id"  # the context-data key, and the field in logs and event payloads
ACTOR = "actor"  # the context-data key of who acts (common/audit.py)
REQUEST_ID_MAX = 128
_SAFE = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

_local = corolocal.local()


def valid_request_id(value: object) -> str | None:
    """`value` if it is a request ID we pass on (1-128 safe characters), else None."""
    return value if isinstance(value, str) and _SAFE.match(value) else None


def current_request_id() -> str | None:
    """The request ID of the current worker (greenthread), if it has one."""
    return getattr(_local, "request_id", None)


def set_request_id(value: str | None) -> None:
    """Record the current worker's request ID (None forgets it)."""
    _local.request_id = valid_request_id(value)
