"""common.rpc.DrainingConsumer: a worker that ends after its broker connection was lost
does not take its container down with it (the broker delivers the message again)."""

from __future__ import annotations

import logging

import pytest

from common.rpc import DrainingConsumer


class LostMessage:
    """A message whose channel belongs to a connection the broker just closed: nameko still
    sees a connection object, and catches only amqp's own ConnectionError, not the socket's."""

    channel = type("Channel", (), {"connection": object()})()
    properties = {"correlation_id": "c-1"}
    delivery_info = {"routing_key": "licensing.activate"}

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def ack(self) -> None:
        raise self.error

    def requeue(self) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [ConnectionResetError(104, "Connection reset by peer"), BrokenPipeError(32, "Broken pipe")],
)
@pytest.mark.parametrize("settle", ["ack_message", "requeue_message"])
def test_settling_on_a_lost_connection_is_logged_not_raised(error, settle, caplog):
    consumer = DrainingConsumer("memory://")
    message = LostMessage(error)
    consumer._held.add(id(message))
    with caplog.at_level(logging.WARNING, logger="common.rpc"):
        getattr(consumer, settle)(message)
    assert consumer.held == 0
    assert "delivers it again" in caplog.text and "c-1" in caplog.text


def test_any_other_error_still_raises():
    consumer = DrainingConsumer("memory://")
    message = LostMessage(ValueError("a bug"))
    consumer._held.add(id(message))
    with pytest.raises(ValueError):
        consumer.ack_message(message)
    assert consumer.held == 0
