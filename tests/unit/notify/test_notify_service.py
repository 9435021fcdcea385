"""The nameko service through `worker_factory`: entrypoints with a fake mailer and fake auth."""

from __future__ import annotations

from datetime import timedelta

import pytest
from nameko import config as nameko_config
from nameko.containers import ServiceContainer
from nameko.events import EventHandler
from nameko.testing.services import worker_factory
from nameko.testing.utils import get_extension
from sqlalchemy.exc import OperationalError

from common import handlers
from common.errors import ValidationFailed
from common.events import SUBSCRIPTIONS
from common.timers import ConfiguredTimer
from services.notify import domain, schemas
from services.notify.dependencies import DeliverySettings
from services.notify.exceptions import DeliveryError
from services.notify.service import NotifyService
from tests.unit.notify import payloads


@pytest.fixture
def notify(db, mailer, directory, options, clock) -> NotifyService:
    return worker_factory(
        NotifyService, db=db, mailer=mailer, auth=directory, options=options, clock=clock
    )


def _deliveries(notify: NotifyService, **kwargs) -> list[dict]:
    return notify.list_deliveries(**kwargs)


def test_an_event_is_recorded_and_sent_at_once(notify, mailer, options) -> None:
    payload = payloads.company_created("ada@acme.test")
    assert notify.on_company_created(payload) is None
    (message,) = mailer.sent
    assert message["Subject"] == "Welcome to License Portal"
    assert message["To"].addresses[0].addr_spec == "ada@acme.test"
    assert message["From"] == options.sender
    link = payloads.link_for(payload["request_id"])
    assert link in message.get_body(("plain",)).get_content()
    (row,) = _deliveries(notify)
    assert (row["status"], row["attempts"], row["event_id"]) == ("sent", 1, payload["event_id"])


def test_a_redelivered_event_sends_no_second_email(notify, mailer) -> None:
    payload = payloads.password_reset_requested("ada@acme.test")
    notify.on_password_reset_requested(payload)
    notify.on_password_reset_requested(payload)
    notify.deliver_due()
    assert len(mailer.sent) == 1
    assert len(_deliveries(notify)) == 1


def test_a_bad_payload_is_parked_not_raised(notify, mailer) -> None:
    bad = payloads.password_changed(how="guessed")
    assert notify.on_password_changed(bad) is None
    assert notify.on_license_issued(["not", "an", "object"]) is None
    assert mailer.sent == []
    parked = notify.list_parked_events()
    assert [(p["event_type"], p["event_id"]) for p in parked] == [
        ("license_issued", None),
        ("password_changed", bad["event_id"]),
    ]
    assert "how: Must be one of: change, reset." in parked[1]["error"]
    assert "payload" not in parked[0]


def test_a_database_outage_raises_so_the_event_is_requeued(notify, monkeypatch) -> None:
    monkeypatch.setattr(handlers, "REQUEUE_PAUSE_SECONDS", 0)

    class DownDb:
        def transaction(self):
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    notify.db = DownDb()
    with pytest.raises(OperationalError):
        notify.on_company_created(payloads.company_created())


def test_a_failed_first_attempt_is_left_to_the_timer(notify, mailer) -> None:
    mailer.failures = 1
    payload = payloads.password_changed("ada@acme.test")
    assert notify.on_password_changed(payload) is None  # no exception: the row is safe
    (row,) = _deliveries(notify)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "451" in row["last_error"]


def test_the_timer_delivers_what_is_due(notify, mailer, options, clock) -> None:
    mailer.failures = 1
    notify.on_password_changed(payloads.password_changed("ada@acme.test"))
    assert mailer.sent == []
    notify.deliver_due()
    assert mailer.sent == []  # the retry is not due yet
    clock.advance(options.retry_base)
    notify.deliver_due()
    assert len(mailer.sent) == 1
    (row,) = _deliveries(notify)
    assert (row["status"], row["attempts"]) == ("sent", 2)


def test_licensing_events_ask_auth_for_the_recipient(notify, mailer, directory) -> None:
    company = directory.add(payloads.company("ops@acme.test"))
    for kind, payload in payloads.licensing_events(company["customer_id"]).items():
        getattr(notify, f"on_{kind}")(payload)
    assert directory.calls == [company["customer_id"]] * len(payloads.licensing_events("C1"))
    assert sorted(m["X-License-Portal-Kind"] for m in mailer.to("ops@acme.test")) == sorted(
        payloads.licensing_events("C1")
    )


def test_list_deliveries_most_recent_first_filtered_without_bodies(notify, mailer) -> None:
    mailer.failures = 1  # one stays pending: pending rows are listed too
    for email in ("a@acme.test", "b@acme.test", "a@acme.test"):
        notify.on_password_changed(payloads.password_changed(email))
    rows = _deliveries(notify)
    assert [r["recipient"] for r in rows] == ["a@acme.test", "b@acme.test", "a@acme.test"]
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    assert [r["status"] for r in rows][-1] == "pending"
    assert len(_deliveries(notify, recipient="A@acme.test")) == 2
    assert len(_deliveries(notify, limit=1)) == 1
    for row in rows:
        assert set(row) == {
            "id",
            "event_id",
            "source",
            "kind",
            "customer_id",
            "recipient",
            "subject",
            "status",
            "attempts",
            "last_error",
            "next_attempt_at",
            "created_at",
            "sent_at",
            "user_id",
        }


@pytest.mark.parametrize("limit", [0, 501, "ten"])
def test_list_deliveries_checks_its_limit(notify, limit) -> None:
    with pytest.raises(ValidationFailed) as caught:
        notify.list_deliveries(limit=limit)
    assert "limit" in caught.value.details["fields"]


def test_ping_checks_the_database(notify) -> None:
    assert notify.ping() == {"service": "notify", "status": "ok"}


def test_mailer_errors_do_not_escape_the_handler(notify, mailer) -> None:
    mailer.failures, mailer.error = 5, DeliveryError("down")
    notify.on_company_created(payloads.company_created())
    assert _deliveries(notify)[0]["last_error"] == "down"


def test_delivery_settings_come_from_the_configuration() -> None:
    settings = {
        "MAIL_FROM": "Portal <portal@acme.test>",
        "PORTAL_URL": "https://portal.acme.test",
        "NOTIFY_RETRY_BASE_SECONDS": "0.5",
        "NOTIFY_LEASE_SECONDS": "90",
    }
    with nameko_config.patch(settings):
        options = DeliverySettings().get_dependency(None)
    assert options == domain.DeliveryOptions(
        sender="Portal <portal@acme.test>",
        portal_url="https://portal.acme.test",
        retry_base=timedelta(seconds=0.5),
        lease=timedelta(seconds=90),
    )
    with nameko_config.patch({"NOTIFY_RETRY_BASE_SECONDS": "", "NOTIFY_LEASE_SECONDS": ""}):
        options = DeliverySettings().get_dependency(None)
    assert (options.retry_base, options.lease) == (domain.DEFAULT_RETRY_BASE, domain.DEFAULT_LEASE)


# --- wiring: handlers, subscriptions and the timer ---------------------------------------


def _container() -> ServiceContainer:
    # building a container binds its extensions; nothing connects until it starts
    with nameko_config.patch({"AMQP_URI": "memory://"}):
        return ServiceContainer(NotifyService)


def _handlers() -> dict[str, EventHandler]:
    container = _container()
    return {ext.method_name: ext for ext in container.entrypoints if isinstance(ext, EventHandler)}


def test_every_handler_is_listed_in_subscriptions_and_back() -> None:
    declared = {
        (handler.source_service, handler.event_type, "notify", name)
        for name, handler in _handlers().items()
    }
    listed = {row for row in SUBSCRIPTIONS if row[2] == "notify"}
    assert declared == listed
    assert {row[1] for row in listed} == set(domain.EVENT_SOURCES) == set(schemas.EVENT_SCHEMAS)
    for source, event_type, _, method in listed:
        assert method == f"on_{event_type}"
        assert domain.EVENT_SOURCES[event_type] == source


def test_handlers_requeue_on_infrastructure_errors() -> None:
    assert all(handler.requeue_on_error for handler in _handlers().values())


def test_subscriptions_stay_sorted_by_source() -> None:
    sources = [row[0] for row in SUBSCRIPTIONS]
    assert sources == sorted(sources)


def test_the_poll_interval_comes_from_the_configuration() -> None:
    timer = get_extension(_container(), ConfiguredTimer)
    with nameko_config.patch({"NOTIFY_POLL_SECONDS": "0.2"}):
        timer.setup()
    assert timer.interval == 0.2 and timer.eager
    with nameko_config.patch({"NOTIFY_POLL_SECONDS": ""}):
        timer.setup()
    assert timer.interval == 1.0
