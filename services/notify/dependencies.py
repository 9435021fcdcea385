"""nameko dependencies of the notify service: the mailer and the delivery settings."""

from __future__ import annotations

import logging
from datetime import timedelta

from nameko.extensions import DependencyProvider

from common import settings
from services.notify import domain
from services.notify.domain import DeliveryOptions
from services.notify.mailers import Mailer, mail_from, mailer_from_settings

log = logging.getLogger(__name__)


class MailerProvider(DependencyProvider):
    """The mailer the configuration asks for (SMTP or `.eml` files), one per container."""

    def __init__(self) -> None:
        self.mailer: Mailer | None = None

    def setup(self) -> None:
        self.mailer = mailer_from_settings()
        log.info("notify sends mail to %s", self.mailer.describe())

    def get_dependency(self, worker_ctx: object) -> Mailer:
        return self.mailer


class DeliverySettings(DependencyProvider):
    """`DeliveryOptions` from the configuration (`MAIL_FROM`, `PORTAL_URL`, `NOTIFY_*`)."""

    def get_dependency(self, worker_ctx: object) -> DeliveryOptions:
        return DeliveryOptions(
            sender=mail_from(),
            portal_url=settings.portal_url(),
            retry_base=_seconds("NOTIFY_RETRY_BASE_SECONDS", domain.DEFAULT_RETRY_BASE),
            lease=_seconds("NOTIFY_LEASE_SECONDS", domain.DEFAULT_LEASE),
        )


def _seconds(key: str, default: timedelta) -> timedelta:
    return timedelta(seconds=settings.get_float(key, default.total_seconds()))
