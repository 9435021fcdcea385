"""common.handlers.reliable_handler: requeue after a pause, park poison, nameko's entrypoint."""

from __future__ import annotations

import inspect

import pytest
from nameko import config
from nameko.containers import ServiceContainer
from nameko.events import SERVICE_POOL, EventHandler
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from common import handlers
from common.errors import ServiceUnavailable
from common.handlers import Poison, reliable_handler


class Consumer:
    """A service with one reliable handler that does what the payload says."""

    name = "consumer"

    def __init__(self) -> None:
        self.applied: list[dict] = []
        self.parked: list[tuple[str, str, dict, str]] = []

    @reliable_handler("billing", "payment_succeeded")
    def on_payment_succeeded(self, payload: dict) -> None:
        """Applies a payment."""
        if payload.get("fail") == "transient":
            raise ConnectionError("database down")
        if payload.get("fail") == "unavailable":
            raise ServiceUnavailable("The payment provider did not answer.")
        if payload.get("fail") == "poison":
            raise Poison("no such receipt")
        self.applied.append(payload)

    def park(self, source: str, event_type: str, payload: dict, reason: str) -> None:
        self.parked.append((source, event_type, payload, reason))


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    """The pauses before a requeue, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(handlers, "REQUEUE_PAUSE_SECONDS", 0)
    monkeypatch.setattr(handlers.eventlet, "sleep", slept.append)
    return slept


def test_an_applied_event_is_neither_parked_nor_requeued(pauses) -> None:
    service = Consumer()
    service.on_payment_succeeded({"receipt_number": "R-1"})
    assert service.applied == [{"receipt_number": "R-1"}]
    assert service.parked == [] and pauses == []


def test_a_transient_failure_pauses_then_raises_so_nameko_requeues(pauses) -> None:
    service = Consumer()
    with pytest.raises(ConnectionError):
        service.on_payment_succeeded({"fail": "transient"})
    assert pauses == [0]  # REQUEUE_PAUSE_SECONDS, read when the failure happens
    assert service.parked == [] and service.applied == []


def test_an_expected_refusal_is_requeued_with_one_line_and_no_traceback(pauses, caplog) -> None:
    service = Consumer()
    with pytest.raises(ServiceUnavailable):
        service.on_payment_succeeded({"fail": "unavailable"})
    assert pauses == [0]
    [record] = [r for r in caplog.records if r.name == handlers.log.name]
    assert record.exc_info is None
    assert "service_unavailable" in record.getMessage()


def test_poison_is_parked_and_acked(pauses) -> None:
    service = Consumer()
    payload = {"fail": "poison", "event_id": "e1"}
    service.on_payment_succeeded(payload)  # no exception: nameko acks the message
    assert service.parked == [("billing", "payment_succeeded", payload, "no such receipt")]
    assert pauses == []


def test_the_method_keeps_its_name_and_carries_an_event_handler_that_requeues() -> None:
    method = Consumer.on_payment_succeeded
    assert method.__name__ == "on_payment_succeeded"
    assert method.__doc__ == "Applies a payment."
    [entrypoint] = getattr(method, ENTRYPOINT_EXTENSIONS_ATTR)
    assert isinstance(entrypoint, EventHandler)
    assert entrypoint.source_service == "billing"
    assert entrypoint.event_type == "payment_succeeded"
    assert entrypoint.handler_type == SERVICE_POOL
    assert entrypoint.requeue_on_error is True


def test_nameko_and_the_subscriptions_test_find_the_handler_by_its_name() -> None:
    # tests/unit/test_event_subscriptions.py looks handlers up the same two ways
    found = [
        name
        for name, function in inspect.getmembers(Consumer, inspect.isfunction)
        if getattr(function, ENTRYPOINT_EXTENSIONS_ATTR, ())
    ]
    assert found == ["on_payment_succeeded"]
    with config.patch({"AMQP_URI": "memory://"}):
        container = ServiceContainer(Consumer)
    [entrypoint] = [ep for ep in container.entrypoints if isinstance(ep, EventHandler)]
    assert entrypoint.method_name == "on_payment_succeeded"
    assert entrypoint.requeue_on_error is True
