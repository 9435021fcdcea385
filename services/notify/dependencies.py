"""nameko dependencies of the notify service: the outbox store and the mailer."""

from __future__ import annotations

import logging

from nameko.extensions import DependencyProvider

from common.db import Database
from services.notify.mailers import Mailer, mailer_from_settings
from services.notify.repository import Store

log = logging.getLogger(__name__)


class NotifyDatabase(Database):
    """`Database` (migrated at start-up) handing each worker a `Store` of repositories."""

    def get_dependency(self, worker_ctx) -> Store:
        return Store(super().get_dependency(worker_ctx))


class MailerProvider(DependencyProvider):
    """The mailer the configuration asks for (SMTP or `.eml` files), one per container."""

    def __init__(self) -> None:
        self.mailer: Mailer | None = None

    def setup(self) -> None:
        self.mailer = mailer_from_settings()
        log.info("notify sends mail to %s", self.mailer.describe())

    def get_dependency(self, worker_ctx) -> Mailer:
        return self.mailer
