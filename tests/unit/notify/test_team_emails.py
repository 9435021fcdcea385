"""Team accounts in notify: emails to the user concerned (invitation, role changed, access
disabled, their password), and the four notices that go to every user who has them on, one
delivery per recipient, each sent, retried and deduplicated on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import select

from common.timeutil import human_datetime
from services.notify import domain, use_cases
from services.notify.models import Delivery
from services.notify.service import NotifyService
from tests.unit.notify import payloads


def _text(message) -> str:
    return message.get_body(("plain",)).get_content()


def _html(message) -> str:
    return message.get_body(("html",)).get_content()


def _rows(store, event_id: str) -> list[Delivery]:
    with store.repository() as repo:
        query = select(Delivery).where(Delivery.event_id == event_id).order_by(Delivery.id)
        return list(repo.session.scalars(query))


@pytest.fixture
def notify(db, mailer, directory, options, clock) -> NotifyService:
    return worker_factory(
        NotifyService, db=db, mailer=mailer, auth=directory, options=options, clock=clock
    )


# --- the invitation ---------------------------------------------------------------------------


class TestInvitation:
    def test_the_invitee_gets_the_link_auth_makes_with_its_expiry(
        self, notify, mailer, directory, store
    ) -> None:
        payload = payloads.user_invited("Grace@Acme.TEST", role="license_admin")
        notify.on_user_invited(payload)
        (message,) = mailer.sent
        assert message["To"].addresses[0].addr_spec == "grace@acme.test"
        assert message["Subject"] == "ada@acme.test invited you to Acme's license portal"
        # like the set-up email: the link is asked of auth at send time, by request ID
        assert directory.link_calls == [payload["request_id"]]
        assert directory.calls == []  # the recipient is in the payload
        link = payloads.link_for(payload["request_id"])
        text = _text(message)
        assert link in text and f'href="{link}"' in _html(message)
        assert "ada@acme.test invited you to Acme's license portal as License admin." in text
        assert "This role lets you view licenses and their activation passwords" in text
        assert "Hello Grace Hopper," in text
        # valid 7 days, and until when (the expiry auth answered with the link)
        assert "This link is valid for 7 days (until " in text
        (row,) = _rows(store, payload["event_id"])
        assert (row.status, row.recipient, row.kind) == ("sent", "grace@acme.test", "user_invited")
        assert row.customer_id == payload["company"]["customer_id"]
        assert link not in repr([row.payload, row.subject, row.last_error])

    def test_the_link_is_until_the_expiry_auth_answers(self, courier, store, mailer, clock):
        payload = payloads.user_invited()
        use_cases.record(store, "auth", "user_invited", payload, clock.now())
        use_cases.deliver_due(courier)
        # FakeDirectory.password_link answers an expiry 30 minutes from now
        expected = human_datetime(datetime.now(UTC) + timedelta(minutes=30))
        assert f"(until {expected})" in _text(mailer.sent[0])

    def test_a_redelivered_invitation_sends_no_second_email(self, notify, mailer) -> None:
        payload = payloads.user_invited()
        notify.on_user_invited(payload)
        notify.on_user_invited(payload)
        notify.deliver_due()
        assert len(mailer.sent) == 1

    def test_a_resent_invitation_is_a_new_event_and_a_new_email(self, notify, mailer) -> None:
        first = payloads.user_invited("grace@acme.test")
        again = {**payloads.user_invited("grace@acme.test"), "user": first["user"]}
        notify.on_user_invited(first)
        notify.on_user_invited(again)
        assert len(mailer.to("grace@acme.test")) == 2

    def test_staff_invitations_name_the_portal_team(self, notify, mailer) -> None:
        notify.on_user_invited(payloads.user_invited(role="owner", invited_by="staff"))
        (message,) = mailer.sent
        assert message["Subject"] == "The License Portal team invited you to Acme's license portal"
        assert "as Owner. This role lets you do everything" in _text(message)

    def test_a_link_voided_before_the_send_fails_for_good(
        self, courier, store, mailer, directory, clock
    ) -> None:
        payload = payloads.user_invited()
        directory.closed.add(payload["request_id"])
        use_cases.record(store, "auth", "user_invited", payload, clock.now())
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == "failed" and mailer.attempts == 0
        assert "(invalid_token)" in _rows(store, payload["event_id"])[0].last_error

    def test_auth_unavailable_for_the_link_is_retried(
        self, courier, store, mailer, directory, clock
    ) -> None:
        payload = payloads.user_invited()
        use_cases.record(store, "auth", "user_invited", payload, clock.now())
        directory.unavailable = True
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == domain.RETRY
        directory.unavailable = False
        clock.advance(seconds=30)
        assert [o.status for o in use_cases.deliver_due(courier)] == ["sent"]
        assert directory.link_calls == [payload["request_id"]] * 2

    def test_an_invitation_without_its_user_is_parked(self, store, clock) -> None:
        payload = payloads.user_invited()
        del payload["user"]
        assert use_cases.record(store, "auth", "user_invited", payload, clock.now()).parked


# --- role changed, access disabled -------------------------------------------------------------


def test_a_role_change_tells_the_user_their_new_role_and_what_it_allows(notify, mailer) -> None:
    payload = payloads.user_role_changed("bob@acme.test", old_role="viewer", new_role="billing")
    notify.on_user_role_changed(payload)
    (message,) = mailer.to("bob@acme.test")
    assert message["Subject"] == "Your role at Acme is now Billing"
    text = _text(message)
    assert (
        "Your role in Acme's license portal was changed from Viewer to Billing by an owner of"
        " the account (ada@acme.test)." in text
    )
    assert "As Billing you can view payments and receipts, manage recurring payments" in text
    assert "Billing" in _html(message)


def test_a_role_change_by_staff_says_so(notify, mailer) -> None:
    notify.on_user_role_changed(
        payloads.user_role_changed(new_role="license_admin", changed_by="staff")
    )
    text = _text(mailer.sent[0])
    assert "to License admin by our support team" in text


def test_a_disabled_user_is_told_an_owner_disabled_their_access(notify, mailer) -> None:
    payload = payloads.user_disabled("bob@acme.test", disabled_by="ada@acme.test")
    notify.on_user_disabled(payload)
    (message,) = mailer.to("bob@acme.test")
    assert message["Subject"] == "Your access to Acme's license portal was disabled"
    text = _text(message)
    assert "was disabled by an owner of the account (ada@acme.test)" in text
    assert "can no longer sign in" in text


@pytest.mark.parametrize("kind", ["user_invited", "user_role_changed", "user_disabled"])
def test_user_emails_go_to_the_user_never_the_contact(notify, mailer, directory, kind) -> None:
    payload = payloads.user_events()[kind]
    getattr(notify, f"on_{kind}")(payload)
    (message,) = mailer.sent
    assert message["To"].addresses[0].addr_spec == payload["user"]["email"]
    assert directory.calls == [] and directory.notice_calls == []


# --- passwords: the user whose password it is -------------------------------------------------


@pytest.mark.parametrize("kind", ["password_reset_requested", "password_changed"])
def test_password_emails_go_to_the_user_named_in_the_event(notify, mailer, kind) -> None:
    user = payloads.user("Bob@Acme.TEST", name="Bob")
    payload = getattr(payloads, kind)("contact@acme.test", user=user)
    getattr(notify, f"on_{kind}")(payload)
    (message,) = mailer.sent
    assert message["To"].addresses[0].addr_spec == "bob@acme.test"
    assert "Hello Bob," in _text(message)
    assert mailer.to("contact@acme.test") == []


@pytest.mark.parametrize("kind", ["password_reset_requested", "password_changed"])
def test_password_events_without_a_user_still_go_to_the_contact(notify, mailer, kind) -> None:
    getattr(notify, f"on_{kind}")(getattr(payloads, kind)("contact@acme.test"))
    assert len(mailer.to("contact@acme.test")) == 1


def test_a_users_changed_password_speaks_of_their_own_sessions(notify, mailer) -> None:
    payload = payloads.password_changed(user=payloads.user("bob@acme.test"))
    notify.on_password_changed(payload)
    assert "your other sessions have been signed out" in _text(mailer.sent[0])


# --- notices: one delivery per recipient --------------------------------------------------------


def _two_recipients(directory, company: dict, notice: str) -> list[dict]:
    users = [
        {"user_id": "U-AAAA-0001", "email": company["contact_email"], "name": "Ada"},
        {"user_id": "U-AAAA-0002", "email": "Lin@Acme.TEST", "name": "Lin"},
    ]
    directory.recipients[company["customer_id"]] = {notice: users}
    return users


def _notice_event(kind: str, customer_id: str) -> dict:
    if kind in ("installation_activated", "license_expiring", "seats_exhausted"):
        return payloads.licensing_events(customer_id)[kind]
    return payloads.billing_events(customer_id)[kind]


@pytest.mark.parametrize(
    ("kind", "notice"),
    [
        ("installation_activated", "installation_activated"),
        ("license_expiring", "license_expiring"),
        ("payment_succeeded", "receipts"),
        ("offline_payment_recorded", "receipts"),
        ("payment_refunded", "receipts"),
        ("payment_failed", "payment_failed"),
        ("seats_exhausted", "seats_exhausted"),
    ],
)
def test_a_notice_goes_to_each_recipient_auth_names(
    notify, mailer, directory, store, kind, notice
) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    _two_recipients(directory, company, notice)
    payload = _notice_event(kind, company["customer_id"])
    getattr(notify, f"on_{kind}")(payload)
    assert directory.notice_calls == [(company["customer_id"], notice)]
    assert sorted(m["To"].addresses[0].addr_spec for m in mailer.sent) == [
        "ada@acme.test",
        "lin@acme.test",
    ]
    (lin,) = mailer.to("lin@acme.test")
    assert "Hello Lin," in _text(lin)
    # each recipient's email is its own message
    assert len({m["Message-ID"] for m in mailer.sent}) == 2
    rows = _rows(store, payload["event_id"])
    assert [(r.user_id, r.status, r.recipient) for r in rows] == [
        ("", "done", None),
        ("U-AAAA-0001", "sent", "ada@acme.test"),
        ("U-AAAA-0002", "sent", "lin@acme.test"),
    ]
    assert all(r.payload is None for r in rows)


def test_a_notice_says_which_setting_sent_it(notify, mailer, directory) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    notify.on_installation_activated(payloads.installation_activated(company["customer_id"]))
    (message,) = mailer.sent
    assert '"New activations" is on in your notification settings' in _text(message)
    assert "New activations" in _html(message)


def test_other_emails_still_go_to_the_contact_without_a_notice_lookup(
    notify, mailer, directory
) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    _two_recipients(directory, company, "receipts")
    billing = payloads.billing_events(company["customer_id"])
    notify.on_recurring_payment_cancelled(billing["recurring_payment_cancelled"])
    notify.on_license_issued(payloads.license_issued(company["customer_id"]))
    assert len(mailer.to("ada@acme.test")) == 2 and mailer.to("lin@acme.test") == []
    assert directory.notice_calls == []


def test_nobody_to_notify_sends_nothing_and_is_done(
    courier, store, mailer, directory, clock
) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    directory.recipients[company["customer_id"]] = {}  # every user turned it off
    payload = payloads.license_expiring(company["customer_id"])
    recorded = use_cases.record(store, "licensing", "license_expiring", payload, clock.now())
    (outcome,) = use_cases.deliver_due(courier, only_id=recorded.delivery_id)
    assert outcome.status == domain.DONE and outcome.recipients == ()
    assert mailer.attempts == 0
    (row,) = _rows(store, payload["event_id"])
    assert (row.status, row.next_attempt_at, row.last_error) == ("done", None, None)
    clock.advance(seconds=7200)
    assert use_cases.deliver_due(courier) == []


def test_a_redelivered_notice_sends_nobody_a_second_email(notify, mailer, directory) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    _two_recipients(directory, company, "receipts")
    payload = payloads.billing_events(company["customer_id"])["payment_succeeded"]
    notify.on_payment_succeeded(payload)
    notify.on_payment_succeeded(payload)
    notify.deliver_due()
    assert len(mailer.sent) == 2
    assert len(directory.notice_calls) == 1


def test_splitting_twice_adds_no_recipient_twice(courier, store, directory, clock) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    users = _two_recipients(directory, company, "license_expiring")
    payload = payloads.license_expiring(company["customer_id"])
    use_cases.record(store, "licensing", "license_expiring", payload, clock.now())
    with store.repository() as repo:
        claim = repo.claim_next(clock.now(), courier.options.lease)
    recipients = domain.notice_recipients(users, company)
    with store.repository() as repo:
        assert len(repo.add_notice_deliveries(claim, recipients, clock.now())) == 2
    # a worker whose lease ran out splits the same notice again: nothing new
    with store.repository() as repo:
        assert repo.add_notice_deliveries(claim, recipients, clock.now()) == []
    assert len(_rows(store, payload["event_id"])) == 3


def test_a_stale_split_records_no_recipients(courier, store, directory, clock, options) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    payload = payloads.license_expiring(company["customer_id"])
    use_cases.record(store, "licensing", "license_expiring", payload, clock.now())
    with store.repository() as repo:
        stale = repo.claim_next(clock.now(), options.lease)
    clock.advance(seconds=options.lease.total_seconds())
    # another worker took the row over and split it
    assert [o.status for o in use_cases.deliver_due(courier)][0] == domain.DONE
    assert use_cases.deliver(courier, stale).status == domain.DONE
    # the stale worker's split was not recorded: one row per recipient, still
    assert len(_rows(store, payload["event_id"])) == 2


def test_one_refused_address_stops_no_other_recipient(
    courier, store, mailer, directory, clock
) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    _two_recipients(directory, company, "installation_activated")
    mailer.refused.add("ada@acme.test")
    payload = payloads.installation_activated(company["customer_id"])
    recorded = use_cases.record(store, "licensing", "installation_activated", payload, clock.now())
    outcomes = use_cases.deliver_due(courier, only_id=recorded.delivery_id)
    assert [o.status for o in outcomes] == [domain.DONE, domain.RETRY, domain.SENT]
    assert [m["To"].addresses[0].addr_spec for m in mailer.sent] == ["lin@acme.test"]
    _, ada, lin = _rows(store, payload["event_id"])
    assert (ada.status, ada.attempts) == ("pending", 1)
    assert "refused the recipient ada@acme.test" in ada.last_error
    assert lin.status == "sent"
    # the retry sends Ada's email, and Lin's is not sent again
    mailer.refused.clear()
    clock.advance(seconds=30)
    assert [o.status for o in use_cases.deliver_due(courier)] == [domain.SENT]
    assert sorted(m["To"].addresses[0].addr_spec for m in mailer.sent) == [
        "ada@acme.test",
        "lin@acme.test",
    ]
    assert len(directory.notice_calls) == 1  # the recipients were asked once


def test_a_retried_recipient_keeps_the_message_id_of_its_first_attempt(
    courier, store, mailer, directory, clock
) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    _two_recipients(directory, company, "receipts")
    payload = payloads.billing_events(company["customer_id"])["payment_succeeded"]
    use_cases.record(store, "billing", "payment_succeeded", payload, clock.now())
    mailer.refused.add("lin@acme.test")
    use_cases.deliver_due(courier)
    mailer.refused.clear()
    clock.advance(seconds=30)
    use_cases.deliver_due(courier)
    ada, lin = mailer.sent
    sender = courier.options.sender
    assert lin["Message-ID"] == domain.message_id(
        payload["event_id"], "payment_succeeded", sender, "U-AAAA-0002"
    )
    assert ada["Message-ID"] != lin["Message-ID"]


def test_auth_down_while_asking_for_recipients_is_retried(
    courier, store, mailer, directory, clock
) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    payload = payloads.license_expiring(company["customer_id"])
    use_cases.record(store, "licensing", "license_expiring", payload, clock.now())
    directory.unavailable = True
    (outcome,) = use_cases.deliver_due(courier)
    assert outcome.status == domain.RETRY and outcome.halts_pass
    (row,) = _rows(store, payload["event_id"])
    assert row.last_error == "Cannot look up the recipients: auth answered service_unavailable."
    assert row.status == "pending" and row.payload == payload
    directory.unavailable = False
    clock.advance(seconds=30)
    assert [o.status for o in use_cases.deliver_due(courier)] == [domain.DONE, domain.SENT]


def test_a_notice_for_an_unknown_company_fails_for_good(courier, store, mailer, clock) -> None:
    payload = payloads.license_expiring("C0000000")
    use_cases.record(store, "licensing", "license_expiring", payload, clock.now())
    (outcome,) = use_cases.deliver_due(courier)
    assert outcome.status == "failed" and mailer.attempts == 0
    assert "(company_not_found)" in outcome.error


def test_an_unusable_recipients_answer_is_retried(courier, store, mailer, directory, clock):
    company = directory.add(payloads.company("ada@acme.test"))
    directory.recipients[company["customer_id"]] = {
        "license_expiring": [{"user_id": "U-1", "email": "not an address"}]
    }
    payload = payloads.license_expiring(company["customer_id"])
    use_cases.record(store, "licensing", "license_expiring", payload, clock.now())
    (outcome,) = use_cases.deliver_due(courier)
    assert outcome.status == domain.RETRY and mailer.attempts == 0
    assert outcome.error == "auth's notice_recipients answer for license_expiring is unusable."


def test_a_user_named_twice_gets_one_email(notify, mailer, directory) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    ada = {"user_id": "U-AAAA-0001", "email": "ada@acme.test", "name": "Ada"}
    directory.recipients[company["customer_id"]] = {"receipts": [ada, ada]}
    notify.on_offline_payment_recorded(
        payloads.billing_events(company["customer_id"])["offline_payment_recorded"]
    )
    assert len(mailer.sent) == 1


def test_notices_are_listed_per_recipient(notify, directory) -> None:
    company = directory.add(payloads.company("ada@acme.test"))
    _two_recipients(directory, company, "payment_failed")
    notify.on_payment_failed(payloads.billing_events(company["customer_id"])["payment_failed"])
    rows = notify.list_deliveries()
    assert sorted((r["status"], r["user_id"], r["recipient"]) for r in rows) == [
        ("done", None, None),
        ("sent", "U-AAAA-0001", "ada@acme.test"),
        ("sent", "U-AAAA-0002", "lin@acme.test"),
    ]
    assert len(notify.list_deliveries(recipient="LIN@acme.test")) == 1


def test_message_ids_differ_per_recipient_and_stay_valid() -> None:
    sender = "License Portal <portal@portal.test>"
    own = domain.message_id("3f0c", "license_expiring", sender)
    ada = domain.message_id("3f0c", "license_expiring", sender, "U-AAAA-0001")
    assert own == "<3f0c.license_expiring@portal.test>"
    assert ada == "<3f0c.U-AAAA-0001.license_expiring@portal.test>"
    odd = domain.message_id("3f0c", "license_expiring", sender, "U 1\r\n")
    assert "\r" not in odd and " " not in odd
