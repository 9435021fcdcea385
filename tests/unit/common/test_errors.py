"""The error contract across the bus: what a worker raises is what the caller gets back."""

from __future__ import annotations

import json

import pytest
from nameko.exceptions import serialize

from common.errors import (
    Conflict,
    PortalError,
    RemoteFailure,
    ServiceUnavailable,
    ValidationFailed,
    error_from_reply,
    validation_error,
)
from common.rpc import interpret
from services.auth.exceptions import EmailTaken, TooManyAttempts


def over_the_wire(exc: BaseException) -> dict:
    """What nameko puts in an RPC reply for `exc`, after a JSON round trip."""
    return json.loads(json.dumps(serialize(exc)))


@pytest.mark.parametrize(
    "exc",
    [
        TooManyAttempts(details={"retry_after": 42}),
        EmailTaken(details={"fields": {"contact_email": ["Already registered."]}}),
        PortalError("Custom message.", details={"a": [1, 2]}, code="custom_code"),
        ValidationFailed(),
        ServiceUnavailable("down", details={"service": "auth"}),
    ],
)
def test_portal_errors_survive_the_round_trip(exc: PortalError) -> None:
    back = error_from_reply(over_the_wire(exc))
    assert isinstance(back, PortalError)
    assert (back.code, back.message, back.details) == (exc.code, exc.message, exc.details)
    assert back.to_dict() == exc.to_dict()
    assert str(back) == exc.message


def test_subclass_defaults_travel_too() -> None:
    back = error_from_reply(over_the_wire(Conflict()))
    assert back.code == "conflict"
    assert back.message == Conflict.message
    assert back.details == {}


@pytest.mark.parametrize(
    "exc",
    [
        KeyError("secret-key-material"),
        ValueError({"not": "a portal error"}),
        RuntimeError(),
        Exception("two", "args"),
    ],
)
def test_foreign_exceptions_become_internal_errors_without_their_text(exc: Exception) -> None:
    back = error_from_reply(over_the_wire(exc))
    assert isinstance(back, RemoteFailure)
    assert back.code == "internal_error"
    assert back.details == {"remote_type": type(exc).__name__}
    assert "secret" not in json.dumps(back.to_dict())


def test_interpret_returns_results_and_raises_errors() -> None:
    assert interpret({"result": {"ok": 1}, "error": None}, "auth") == {"ok": 1}
    with pytest.raises(PortalError) as caught:
        interpret({"result": None, "error": over_the_wire(TooManyAttempts())}, "auth")
    assert caught.value.code == "too_many_attempts"
    with pytest.raises(ServiceUnavailable) as caught:
        interpret(None, "auth")
    assert caught.value.details == {"service": "auth"}


def test_validation_error_names_the_fields() -> None:
    error = validation_error({"login": ["Missing."], "password": ["Too long."]})
    assert error.code == "validation_error"
    assert "login" in error.message and "password" in error.message
    assert error.details == {"fields": {"login": ["Missing."], "password": ["Too long."]}}


def test_detail_types_survive_the_bus() -> None:
    # nameko stringifies non-string scalars in exception arguments; ours must not suffer
    details = {"retry_after": 42, "ratio": 0.5, "ok": True, "none": None, "nested": {"n": [1]}}
    back = error_from_reply(over_the_wire(TooManyAttempts(details=details)))
    assert back.details == details


def test_a_string_argument_that_is_not_ours_stays_foreign() -> None:
    for arg in ('{"code": "x"}', "{not json", '["portal_error"]'):
        assert error_from_reply(over_the_wire(ValueError(arg))).code == "internal_error"
