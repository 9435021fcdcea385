"""licensing's `seats_exhausted` (DESIGN §13): "All N seats of <product> are in use" to each
user with the notice on (owners by default), naming who holds the seats and until when,
with the license page and the buy page; once per event, however often it is delivered."""

from __future__ import annotations

import pytest
from nameko.testing.services import worker_factory

from services.notify import domain, rendering, schemas
from services.notify.exceptions import InvalidEvent
from services.notify.service import NotifyService
from tests.unit.notify import payloads

RECIPIENT = domain.Recipient("ada@acme.test", "Ada Lovelace", "Acme", "C7")


def _text(message) -> str:
    return message.get_body(("plain",)).get_content()


def _html(message) -> str:
    return message.get_body(("html",)).get_content()


@pytest.fixture
def notify(db, mailer, directory, options, clock) -> NotifyService:
    return worker_factory(
        NotifyService, db=db, mailer=mailer, auth=directory, options=options, clock=clock
    )


def _render(payload: dict) -> tuple[str, str, str]:
    data = schemas.load_event("seats_exhausted", payload)
    text, html = rendering.render("seats_exhausted", data, RECIPIENT, payloads.PORTAL_URL)
    return domain.subject("seats_exhausted", data), text, html


def test_the_owners_hear_who_holds_the_seats_and_where_to_free_or_buy_one(
    notify, mailer, directory
) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    users = [
        {"user_id": "U-AAAA-0001", "email": "ada@acme.test", "name": "Ada"},
        {"user_id": "U-AAAA-0002", "email": "lin@acme.test", "name": "Lin"},
    ]
    directory.recipients[company["customer_id"]] = {"seats_exhausted": users}
    payload = payloads.seats_exhausted(company["customer_id"], seats=3)
    notify.on_seats_exhausted(payload)
    assert directory.notice_calls == [(company["customer_id"], "seats_exhausted")]
    assert sorted(m["To"].addresses[0].addr_spec for m in mailer.sent) == [
        "ada@acme.test",
        "lin@acme.test",
    ]
    (message,) = mailer.to("lin@acme.test")
    assert message["Subject"] == "All 3 seats of CAD Pro are in use"
    text, html = _text(message), _html(message)
    license_url = f"{payloads.PORTAL_URL}/licenses/{payload['license_id']}"
    for body in (text, html):
        assert license_url in body and f"{payloads.PORTAL_URL}/buy" in body
        assert "Dec 2, 2026, 16:30 UTC" in body  # when the check-out was refused
    # soonest free first; a borrowed seat says so
    assert text.index("WS-03: until Dec 9, 2026, 13:45 UTC") < text.index(
        "WS-02: until Dec 9, 2026, 14:45 UTC"
    )
    assert "WS-01: borrowed until Dec 9, 2026, 15:45 UTC" in text
    assert "borrowed until Dec 9, 2026, 15:45 UTC" in html
    assert f'href="{license_url}"' in html
    assert (
        '"All seats of a floating license are in use" is on in your notification settings' in text
    )


def test_a_redelivered_event_sends_nobody_a_second_email(notify, mailer, directory) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    payload = payloads.seats_exhausted(company["customer_id"])
    notify.on_seats_exhausted(payload)
    notify.on_seats_exhausted(payload)
    notify.deliver_due()
    assert len(mailer.sent) == 1
    assert len(directory.notice_calls) == 1
    # another refusal (a day later: licensing's own limit) is another email
    notify.on_seats_exhausted(payloads.seats_exhausted(company["customer_id"]))
    assert len(mailer.sent) == 2


def test_nobody_with_the_notice_on_means_no_email(notify, mailer, directory) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    directory.recipients[company["customer_id"]] = {}  # the owners turned it off
    notify.on_seats_exhausted(payloads.seats_exhausted(company["customer_id"]))
    assert mailer.attempts == 0


def test_one_seat_and_a_product_without_a_name() -> None:
    payload = payloads.seats_exhausted("C7", seats=1, product={"code": "cad-pro"})
    subject, text, _ = _render(payload)
    # never the product's code: the license stands in for the name
    assert subject == f"The only seat of license {payload['license_id']} is in use"
    assert "cad-pro" not in text
    assert text.count("WS-") == 1
    no_product = payloads.seats_exhausted("C7", product=None)
    assert _render(no_product)[0] == f"All 2 seats of license {no_product['license_id']} are in use"


def test_a_license_of_many_seats_lists_the_first_and_counts_the_rest() -> None:
    seats = domain.MAX_HOLDERS_LISTED + 7
    subject, text, html = _render(payloads.seats_exhausted("C7", seats=seats))
    assert subject == f"All {seats} seats of CAD Pro are in use"
    assert text.count(": until ") + text.count(": borrowed until ") == domain.MAX_HOLDERS_LISTED
    assert "and 7 more" in text and "and 7 more" in html


def test_machine_names_are_text_not_markup() -> None:
    payload = payloads.seats_exhausted("C7")
    payload["machines"][0]["machine_name"] = "<b>PC</b>"
    _, text, html = _render(payload)
    assert "<b>PC</b>" in text
    assert "&lt;b&gt;PC&lt;/b&gt;" in html and "<b>PC</b>" not in html


@pytest.mark.parametrize(
    "change",
    [
        {"seats": 0},
        {"seats": "2"},
        {"license_id": ""},
        {"machines": [{"machine_name": "WS-01"}]},  # no expiry
        {"machines": [{"machine_name": "WS-01", "expires_at": "soon"}]},
    ],
)
def test_a_malformed_event_is_refused(change: dict) -> None:
    with pytest.raises(InvalidEvent):
        schemas.load_event("seats_exhausted", {**payloads.seats_exhausted("C7"), **change})
