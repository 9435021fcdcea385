"""A delivery's log lines carry the request ID of the event that asked for the email, also
when the timer sends it (a retry, or a notice's recipients after the split)."""

from __future__ import annotations

from types import SimpleNamespace

from common.context import current_request_id, set_request_id
from services.notify import use_cases


def test_the_events_request_id_is_current_while_its_email_is_delivered(monkeypatch):
    seen = []
    monkeypatch.setattr(
        use_cases, "_deliver", lambda courier, claim: seen.append(current_request_id())
    )
    set_request_id("timer-tick")
    try:
        use_cases.deliver(None, SimpleNamespace(payload={"request_id": "req-42"}))
        use_cases.deliver(None, SimpleNamespace(payload={"event_id": "e-1"}))
        assert seen == ["req-42", "timer-tick"]
        assert current_request_id() == "timer-tick"  # the worker's own, once it is done
    finally:
        set_request_id(None)
