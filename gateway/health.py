"""Readiness: does every service answer a ping over RPC, within READY_TIMEOUT?"""

from __future__ import annotations

from typing import Any

import eventlet

from common.errors import PortalError

READY_TIMEOUT = 3.0


def readiness(clients: dict[str, Any]) -> dict[str, Any]:
    """`{status: "ready" | "unavailable", services: {name: "ok" | "unavailable"}}`, the
    services pinged all at once."""

    def ping(name: str) -> tuple[str, str]:
        try:
            with eventlet.Timeout(READY_TIMEOUT):
                clients[name].ping()
        except (PortalError, eventlet.Timeout):
            return name, "unavailable"
        return name, "ok"

    pool = eventlet.GreenPool(len(clients))
    states = dict(pool.imap(ping, clients))
    ready = all(state == "ok" for state in states.values())
    return {"status": "ready" if ready else "unavailable", "services": states}
