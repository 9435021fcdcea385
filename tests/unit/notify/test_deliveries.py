"""The mail queue's use cases on a real (SQLite) repository, with a fake mailer, auth and clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import DataError

from common.db import insert_ignore
from services.notify import domain, repository, use_cases
from services.notify.models import ParkedEvent
from tests.unit.notify import payloads


def _parked(store) -> list[ParkedEvent]:
    with store.repository() as repo:
        return repo.parked(500)


class TestRecord:
    def test_an_event_becomes_one_pending_delivery(self, store, row_of, clock) -> None:
        payload = payloads.company_created("ada@acme.test")
        recorded = use_cases.record(store, "auth", "company_created", payload, clock.now())
        assert recorded.delivery_id is not None and not recorded.parked
        row = row_of(payload["event_id"])
        assert (row.status, row.attempts, row.kind, row.source) == (
            "pending",
            0,
            "company_created",
            "auth",
        )
        assert row.recipient == "ada@acme.test"
        assert row.customer_id == payload["company"]["customer_id"]
        assert row.subject == "Welcome to License Portal"
        assert row.next_attempt_at == row.created_at == clock.now()
        assert row.payload == payload

    def test_a_redelivered_event_adds_nothing(self, store, clock) -> None:
        payload = payloads.password_reset_requested()
        first = use_cases.record(store, "auth", "password_reset_requested", payload, clock.now())
        again = use_cases.record(store, "auth", "password_reset_requested", payload, clock.now())
        assert first.delivery_id is not None
        assert again.duplicate
        with store.repository() as repo:
            assert len(repo.deliveries(500)) == 1

    def test_licensing_events_leave_the_recipient_for_send_time(self, store, row_of, clock) -> None:
        payload = payloads.license_issued("C1234567")
        use_cases.record(store, "licensing", "license_issued", payload, clock.now())
        row = row_of(payload["event_id"])
        assert row.recipient is None and row.customer_id == "C1234567"

    def test_unknown_fields_are_allowed(self, store, clock) -> None:
        payload = payloads.password_changed()
        payload["new_field"] = {"added": "by a newer producer"}
        payload["company"]["region"] = "EU"
        assert use_cases.record(store, "auth", "password_changed", payload, clock.now()).delivery_id

    def test_a_bad_payload_is_parked_with_the_reason(self, store, clock) -> None:
        payload = payloads.legacy_password_reset_requested()
        del payload["company"]["contact_email"]
        recorded = use_cases.record(store, "auth", "password_reset_requested", payload, clock.now())
        assert recorded.parked and recorded.delivery_id is None
        (parked,) = _parked(store)
        assert parked.event_id == payload["event_id"]
        assert (parked.source, parked.event_type) == ("auth", "password_reset_requested")
        assert "company.contact_email: Missing data for required field." in parked.error
        # the reset link in a parked payload (of the shape before issue 11) is not kept
        assert parked.payload["reset_url"] == domain.REDACTED
        assert payload["reset_url"] not in repr(parked.payload)
        with store.repository() as repo:
            assert repo.deliveries(500) == []

    def test_a_poison_message_is_parked_once(self, store, clock) -> None:
        payload = payloads.license_issued("C1", seats="many")
        for _ in range(2):
            assert use_cases.record(
                store, "licensing", "license_issued", payload, clock.now()
            ).parked
        (parked,) = _parked(store)
        assert "license.seats" in parked.error

    def test_payloads_that_are_not_objects_are_parked(self, store, clock) -> None:
        use_cases.record(store, "auth", "company_created", "garbage", clock.now())
        use_cases.record(store, "auth", "company_created", None, clock.now())
        parked = _parked(store)
        assert [p.event_id for p in parked] == [None, None]
        assert all("Expected an object" in p.error for p in parked)

    def test_a_reset_event_without_a_request_or_a_link_is_parked(self, store, clock) -> None:
        payload = payloads.password_reset_requested()
        del payload["request_id"]
        assert use_cases.record(
            store, "auth", "password_reset_requested", payload, clock.now()
        ).parked
        assert "request_id: Missing data for required field." in _parked(store)[0].error

    def test_a_link_that_is_not_a_web_link_is_refused(self, store, clock) -> None:
        payload = payloads.legacy_password_reset_requested()
        payload["reset_url"] = "javascript:alert(1)"
        assert use_cases.record(
            store, "auth", "password_reset_requested", payload, clock.now()
        ).parked
        assert "reset_url" in _parked(store)[0].error


class TestDeliver:
    def test_sends_and_forgets_the_payload(self, courier, store, row_of, mailer, clock):
        payload = payloads.password_reset_requested("ada@acme.test")
        use_cases.record(store, "auth", "password_reset_requested", payload, clock.now())
        outcomes = use_cases.deliver_due(courier)
        assert [o.status for o in outcomes] == ["sent"]
        (message,) = mailer.sent
        assert message["Subject"] == "Reset your License Portal password"
        link = payloads.link_for(payload["request_id"])
        assert link in message.get_body(("plain",)).get_content()
        row = row_of(payload["event_id"])
        assert (row.status, row.attempts, row.sent_at) == ("sent", 1, clock.now())
        assert row.payload is None and row.next_attempt_at is None
        assert use_cases.deliver_due(courier) == []

    @pytest.mark.parametrize("kind", ["company_created", "password_reset_requested"])
    def test_the_link_is_asked_of_auth_at_each_send_and_never_stored(
        self, kind, courier, store, row_of, mailer, directory, clock
    ):
        payload = getattr(payloads, kind)("ada@acme.test")
        use_cases.record(store, "auth", kind, payload, clock.now())
        mailer.failures = 1
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == domain.RETRY
        link = payloads.link_for(payload["request_id"])
        row = row_of(payload["event_id"])
        # the row waiting for its retry holds the event as it came, not the link
        assert row.payload == payload
        assert link not in repr(row.payload) and link not in (row.last_error or "")
        clock.advance(seconds=30)
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == "sent"
        assert directory.link_calls == [payload["request_id"]] * 2  # one per send
        (message,) = mailer.sent
        html = message.get_body(("html",)).get_content()
        assert link in message.get_body(("plain",)).get_content() and f'href="{link}"' in html
        row = row_of(payload["event_id"])
        assert link not in repr([row.payload, row.subject, row.last_error, row.recipient])

    def test_a_request_closed_before_the_send_fails_for_good(
        self, courier, store, row_of, mailer, directory, clock
    ):
        payload = payloads.password_reset_requested()
        directory.closed.add(payload["request_id"])
        use_cases.record(store, "auth", "password_reset_requested", payload, clock.now())
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == "failed" and mailer.attempts == 0
        row = row_of(payload["event_id"])
        assert row.last_error == (
            "The link was used, replaced or expired before the email could be sent (invalid_token)."
        )

    def test_auth_unavailable_for_the_link_is_a_retry(
        self, courier, store, row_of, mailer, directory, clock
    ):
        payload = payloads.company_created()
        use_cases.record(store, "auth", "company_created", payload, clock.now())
        directory.unavailable = True
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == domain.RETRY and outcome.halts_pass
        assert row_of(payload["event_id"]).last_error == (
            "Cannot get the link: auth answered service_unavailable."
        )
        directory.unavailable = False
        clock.advance(seconds=30)
        assert [o.status for o in use_cases.deliver_due(courier)] == ["sent"]

    def test_a_welcome_without_a_request_asks_auth_for_nothing(
        self, courier, store, mailer, directory, clock
    ):
        payload = payloads.company_created(with_link=False)
        use_cases.record(store, "auth", "company_created", payload, clock.now())
        assert [o.status for o in use_cases.deliver_due(courier)] == ["sent"]
        assert directory.link_calls == []
        assert "reset-password" not in mailer.sent[0].get_body(("plain",)).get_content()

    @pytest.mark.parametrize(
        ("kind", "key"),
        [("company_created", "set_password_url"), ("password_reset_requested", "reset_url")],
    )
    def test_an_event_of_the_shape_before_issue_11_is_sent_with_its_own_link(
        self, kind, key, courier, store, row_of, mailer, directory, clock
    ):
        payload = getattr(payloads, f"legacy_{kind}")()
        use_cases.record(store, "auth", kind, payload, clock.now())
        assert [o.status for o in use_cases.deliver_due(courier)] == ["sent"]
        assert directory.link_calls == []
        assert payload[key] in mailer.sent[0].get_body(("plain",)).get_content()
        assert row_of(payload["event_id"]).payload is None

    def test_a_mail_server_failure_is_retried_with_backoff(
        self, courier, store, row_of, mailer, clock
    ):
        payload = payloads.company_created("ada@acme.test")
        use_cases.record(store, "auth", "company_created", payload, clock.now())
        mailer.failures = 3
        start = clock.now()
        expected_waits = [30, 60, 120]
        for attempt, wait in enumerate(expected_waits, start=1):
            (outcome,) = use_cases.deliver_due(courier)
            assert outcome.status == domain.RETRY
            row = row_of(payload["event_id"])
            assert (row.status, row.attempts) == ("pending", attempt)
            assert row.next_attempt_at == clock.now() + timedelta(seconds=wait)
            assert row.last_error == "SMTP server smtp.test:25 answered 451: try later"
            assert row.payload == payload  # kept until it is sent
            # not due before its time
            clock.advance(seconds=wait - 1)
            assert use_cases.deliver_due(courier) == []
            clock.advance(seconds=1)
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == "sent" and len(mailer.sent) == 1
        row = row_of(payload["event_id"])
        assert (row.status, row.attempts, row.payload) == ("sent", 4, None)
        assert clock.now() - start == timedelta(seconds=sum(expected_waits))

    def test_licensing_recipients_come_from_auth(
        self, courier, store, row_of, mailer, directory, clock
    ):
        company = directory.add(payloads.company("Grace@Navy.TEST", contact_name="Grace"))
        payload = payloads.license_issued(company["customer_id"])
        use_cases.record(store, "licensing", "license_issued", payload, clock.now())
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == "sent"
        assert directory.calls == [company["customer_id"]]
        assert directory.notice_calls == []  # not a notice: the contact's
        (message,) = mailer.to("grace@navy.test")
        assert message["Subject"] == "Your new CAD Pro license is ready"
        assert "Hello Grace," in message.get_body(("plain",)).get_content()
        assert row_of(payload["event_id"]).recipient == "grace@navy.test"

    def test_auth_unavailable_is_a_retry_not_a_failure(
        self, courier, store, row_of, mailer, directory, clock
    ):
        company = directory.add(payloads.company())
        payload = payloads.license_issued(company["customer_id"])
        use_cases.record(store, "licensing", "license_issued", payload, clock.now())
        directory.unavailable = True
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == domain.RETRY
        row = row_of(payload["event_id"])
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.last_error == "Cannot look up the recipient: auth answered service_unavailable."
        directory.unavailable = False
        clock.advance(seconds=30)
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == "sent" and len(mailer.sent) == 1

    def test_an_unknown_company_fails_for_good(self, courier, store, row_of, mailer, clock):
        payload = payloads.license_expiring("C0000000")
        use_cases.record(store, "licensing", "license_expiring", payload, clock.now())
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == "failed"
        row = row_of(payload["event_id"])
        assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 1, None)
        assert "No company with customer ID C0000000 (company_not_found)" in row.last_error
        assert mailer.sent == []
        clock.advance(seconds=7200)
        assert use_cases.deliver_due(courier) == []

    def test_an_expired_reset_link_is_failed_and_forgotten(
        self, courier, store, row_of, mailer, clock
    ):
        payload = payloads.password_reset_requested(expires_in=timedelta(minutes=30))
        use_cases.record(store, "auth", "password_reset_requested", payload, clock.now())
        mailer.failures = 100
        clock.advance(seconds=31 * 60)  # the mail server stayed down for longer than the link lives
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == "failed" and mailer.attempts == 0
        row = row_of(payload["event_id"])
        assert row.last_error == "The reset link expired before the email could be sent."
        assert row.payload == payload  # nothing secret in it to redact

    def test_an_unexpected_error_is_retried(self, courier, store, row_of, mailer, clock):
        payload = payloads.company_created()
        use_cases.record(store, "auth", "company_created", payload, clock.now())
        mailer.failures, mailer.error = 1, RuntimeError("bug with s3cret inside")
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == domain.RETRY
        row = row_of(payload["event_id"])
        assert row.last_error == "Unexpected error: RuntimeError"
        assert row.status == "pending"

    def test_a_mail_server_failure_ends_the_pass(self, courier, store, mailer, clock):
        for _ in range(3):
            use_cases.record(
                store, "auth", "company_created", payloads.company_created(), clock.now()
            )
        mailer.failures = 1
        assert [o.status for o in use_cases.deliver_due(courier)] == ["retry"]
        # the other two go out on the next pass
        assert [o.status for o in use_cases.deliver_due(courier)] == [
            "sent",
            "sent",
        ]

    def test_only_id_delivers_just_that_row(self, courier, store, mailer, clock):
        first = use_cases.record(
            store, "auth", "company_created", payloads.company_created(), clock.now()
        )
        second = use_cases.record(
            store, "auth", "company_created", payloads.company_created(), clock.now()
        )
        outcomes = use_cases.deliver_due(courier, only_id=second.delivery_id)
        assert len(outcomes) == 1 and len(mailer.sent) == 1
        with store.repository() as repo:
            statuses = {row.id: row.status for row in repo.deliveries()}
        assert statuses == {first.delivery_id: "pending", second.delivery_id: "sent"}


class TestLeases:
    def test_a_claimed_row_is_not_claimed_again_until_its_lease_runs_out(
        self, courier, store, row_of, mailer, options, clock
    ):
        payload = payloads.company_created()
        use_cases.record(store, "auth", "company_created", payload, clock.now())
        with store.repository() as repo:
            first = repo.claim_next(clock.now(), options.lease)
        assert first.attempts == 1 and first.payload == payload
        row = row_of(payload["event_id"])
        assert (row.status, row.next_attempt_at) == ("sending", clock.now() + options.lease)

        clock.advance(seconds=options.lease.total_seconds() - 1)
        assert use_cases.deliver_due(courier) == []

        # the first worker died: once the lease runs out, another takes over
        clock.advance(seconds=1)
        (outcome,) = use_cases.deliver_due(courier)
        assert outcome.status == "sent" and len(mailer.sent) == 1
        assert row_of(payload["event_id"]).attempts == 2

        # the first worker's late report changes nothing
        with store.repository() as repo:
            assert not repo.finish(first, domain.fail("stale"), clock.now())
        row = row_of(payload["event_id"])
        assert (row.status, row.last_error) == ("sent", None)

    def test_a_worker_whose_lease_ran_out_cannot_overwrite_the_new_claim(
        self, store, row_of, clock, options
    ) -> None:
        payload = payloads.company_created()
        use_cases.record(store, "auth", "company_created", payload, clock.now())
        with store.repository() as repo:
            stale = repo.claim_next(clock.now(), options.lease)
        clock.advance(seconds=options.lease.total_seconds())
        with store.repository() as repo:
            current = repo.claim_next(clock.now(), options.lease)
        assert (stale.attempts, current.attempts) == (1, 2)
        # both think they own the row; only the newer claim may record an outcome
        with store.repository() as repo:
            assert not repo.finish(stale, domain.fail("stale worker"), clock.now())
        row = row_of(payload["event_id"])
        assert (row.status, row.attempts, row.last_error) == ("sending", 2, None)
        with store.repository() as repo:
            assert repo.finish(current, domain.sent("ada@acme.test"), clock.now())
        assert row_of(payload["event_id"]).status == "sent"


def test_values_the_database_refuses_are_parked(store, clock, monkeypatch) -> None:
    def refuse_deliveries(session, table, values):
        if table.name == "deliveries":
            raise DataError("INSERT INTO deliveries ...", {}, ValueError("value too long"))
        return insert_ignore(session, table, values)

    monkeypatch.setattr(repository, "insert_ignore", refuse_deliveries)
    payload = payloads.company_created()
    assert use_cases.record(store, "auth", "company_created", payload, clock.now()).parked
    (parked,) = _parked(store)
    assert parked.error == "The database refused the payload: ValueError"
    assert parked.event_id == payload["event_id"]


def test_a_payload_the_database_refuses_is_parked_without_it(store, clock, monkeypatch) -> None:
    def refuse_payloads(session, table, values):
        if table.name == "deliveries" or values["payload"] is not None:
            raise DataError("INSERT ...", {}, ValueError("A string literal contains NUL"))
        return insert_ignore(session, table, values)

    monkeypatch.setattr(repository, "insert_ignore", refuse_payloads)
    payload = payloads.company_created()
    assert use_cases.record(store, "auth", "company_created", payload, clock.now()).parked
    (parked,) = _parked(store)
    assert parked.error == "The database refused the payload: ValueError (payload not storable)"
    assert (parked.event_id, parked.payload) == (None, None)


def test_auth_being_down_ends_the_pass(courier, store, directory, clock) -> None:
    company = directory.add(payloads.company())
    for _ in range(3):
        payload = payloads.license_issued(company["customer_id"])
        use_cases.record(store, "licensing", "license_issued", payload, clock.now())
    directory.unavailable = True
    # one lookup (one RPC timeout) per pass, not one per waiting email
    assert [o.status for o in use_cases.deliver_due(courier)] == ["retry"]
    assert len(directory.calls) == 1
