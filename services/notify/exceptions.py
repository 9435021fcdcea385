"""Errors of the notify service.

Across the bus notify only answers `validation_error` (bad RPC arguments, from common.errors).
The others stay inside: `InvalidEvent` and `ValuesRefused` park an event, `DeliveryError`
retries a send.
"""

from common.errors import PortalError


class InvalidEvent(PortalError):
    """An event payload that no email can be made of; the event is parked, not retried."""

    code = "invalid_event"
    message = "The event payload is invalid."


class ValuesRefused(Exception):
    """The database refused a row's values themselves, not the connection.

    A redelivery would fail the same way forever, so the event is parked. The message names
    the kind of refusal only (`DataError`, `ValueError`), never the values.
    """


class DeliveryError(Exception):
    """The mail server (or mail folder) did not take a message; the send is retried later.

    The message is safe to store and log: it never holds credentials or message content.
    """
