"""The licensing service."""

from __future__ import annotations

from pathlib import Path

from nameko.rpc import rpc

from common.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


class LicensingService:
    name = "licensing"

    db = Database("licensing", MIGRATIONS)

    @rpc
    def ping(self) -> dict[str, str]:
        """Readiness: `{"service": "licensing", "status": "ok"}` once the database answers."""
        self.db.ping()
        return {"service": self.name, "status": "ok"}
