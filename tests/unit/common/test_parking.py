"""common.parking: the one shape of a parked event, in every service that parks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.parking import ERROR_MAX, event_id_of, parked_row
from services.billing.models import ParkedEvent as BillingParked
from services.notify.models import ParkedEvent as NotifyParked

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"event_id": "abc"}, "abc"),
        ({"event_id": ""}, None),
        ({"event_id": 42}, None),
        ({"event_id": "x" * 101}, None),
        ({"event_id": "a\x00b"}, None),
        ({}, None),
        ("garbage", None),
    ],
)
def test_only_a_usable_event_id_names_the_parked_row(payload: object, expected: str | None):
    assert event_id_of(payload) == expected


def test_a_parked_row_keeps_the_payload_and_a_bounded_reason():
    row = parked_row("licensing", "license_issued", {"event_id": "e1"}, "x" * 5000, NOW)
    assert row == {
        "event_id": "e1",
        "source": "licensing",
        "event_type": "license_issued",
        "payload": {"event_id": "e1"},
        "error": "x" * ERROR_MAX,
        "parked_at": NOW,
    }


def test_billing_and_notify_park_in_the_same_table_shape():
    def shape(table):
        return [(c.name, str(c.type), c.nullable, c.unique, c.index) for c in table.columns]

    assert shape(BillingParked.__table__) == shape(NotifyParked.__table__)
    assert BillingParked.__tablename__ == NotifyParked.__tablename__ == "parked_events"
