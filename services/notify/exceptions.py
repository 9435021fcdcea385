"""Errors of the notify service.

Across the bus notify only answers `validation_error` (bad RPC arguments, from common.errors).
`InvalidEvent` and `DeliveryError` stay inside: one parks an event, the other retries a send.
"""

from common.errors import PortalError, ValidationFailed


class InvalidEvent(PortalError):
    """An event payload that no email can be made of; the event is parked, not retried."""

    code = "invalid_event"
    message = "The event payload is invalid."


class DeliveryError(Exception):
    """The mail server (or mail folder) did not take a message; the send is retried later.

    The message is safe to store and log: it never holds credentials or message content.
    """


__all__ = ["DeliveryError", "InvalidEvent", "PortalError", "ValidationFailed"]
