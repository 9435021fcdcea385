"""The pure rules of notify: backoff, claims and leases, subjects, redaction, message IDs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notify import domain, schemas
from services.notify.mailers import SMTP_TIMEOUT
from tests.unit.notify import payloads

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


class TestBackoff:
    def test_doubles_from_the_base(self) -> None:
        base = timedelta(seconds=30)
        delays = [domain.retry_delay(attempts, base) for attempts in (1, 2, 3, 4)]
        assert delays == [timedelta(seconds=s) for s in (30, 60, 120, 240)]

    def test_is_capped_at_one_hour(self) -> None:
        assert domain.retry_delay(7) == timedelta(seconds=1920)
        assert domain.retry_delay(8) == timedelta(hours=1)
        assert domain.retry_delay(10_000) == timedelta(hours=1)

    def test_a_large_base_never_overflows(self) -> None:
        assert domain.retry_delay(10_000, timedelta(hours=1)) == timedelta(hours=1)
        assert domain.retry_delay(50, timedelta(days=30)) == timedelta(hours=1)

    def test_default_base_is_thirty_seconds(self) -> None:
        assert domain.retry_delay(1) == timedelta(seconds=30)

    def test_no_attempt_no_wait(self) -> None:
        assert domain.retry_delay(0) == timedelta(0)

    def test_retry_outcome_is_scheduled_after_the_delay(self) -> None:
        outcome = domain.retry(3, NOW, "boom", base=timedelta(seconds=1))
        assert outcome.status == domain.RETRY
        assert outcome.retry_at == NOW + timedelta(seconds=4)
        assert outcome.error == "boom"


class TestClaims:
    @pytest.mark.parametrize(
        ("status", "offset", "due"),
        [
            ("pending", -1, True),
            ("pending", 0, True),
            ("pending", 1, False),
            # a sending row is someone's claim until its lease runs out
            ("sending", 1, False),
            ("sending", -1, True),
            ("sent", -1, False),
            ("failed", -1, False),
        ],
    )
    def test_is_due(self, status: str, offset: int, due: bool) -> None:
        assert domain.is_due(status, NOW + timedelta(seconds=offset), NOW) is due

    def test_finished_rows_have_no_time_and_are_never_due(self) -> None:
        assert not domain.is_due("pending", None, NOW)

    def test_lease(self) -> None:
        assert domain.lease_until(NOW) == NOW + domain.DEFAULT_LEASE
        assert domain.lease_until(NOW, timedelta(seconds=7)) == NOW + timedelta(seconds=7)

    def test_the_lease_outlasts_a_slow_smtp_conversation(self) -> None:
        # connect, EHLO, STARTTLS, EHLO, AUTH, MAIL, RCPT, DATA: each may take the timeout
        assert domain.DEFAULT_LEASE.total_seconds() > 8 * SMTP_TIMEOUT


class TestErrors:
    def test_one_line_and_bounded(self) -> None:
        error = domain.clean_error("first line\nsecond\tline " + "x" * 1000)
        assert "\n" not in error and "\t" not in error
        assert error.startswith("first line second line")
        assert len(error) == domain.MAX_ERROR_LENGTH


class TestPayloads:
    def test_redact_hides_links_at_any_depth(self) -> None:
        payload = {
            "reset_url": "http://x/#token=secret",
            "nested": {"set_password_url": "http://x/#token=other", "keep": 1},
            "items": [{"reset_url": "http://y"}],
            "company": {"name": "Acme"},
        }
        redacted = domain.redact(payload)
        assert "secret" not in repr(redacted) and "other" not in repr(redacted)
        assert redacted["reset_url"] == domain.REDACTED
        assert redacted["nested"] == {"set_password_url": domain.REDACTED, "keep": 1}
        assert redacted["items"] == [{"reset_url": domain.REDACTED}]
        assert redacted["company"] == {"name": "Acme"}
        assert payload["reset_url"].endswith("secret")  # the original is untouched

    def test_redact_leaves_missing_links_missing(self) -> None:
        assert domain.redact({"set_password_url": None}) == {"set_password_url": None}
        assert domain.redact("not a dict") == "not a dict"

    def test_an_expired_reset_link_is_not_sent(self) -> None:
        data = {"expires_at": NOW - timedelta(seconds=1)}
        assert domain.link_expired("password_reset_requested", data, NOW)
        assert not domain.link_expired(
            "password_reset_requested", {"expires_at": NOW + timedelta(minutes=1)}, NOW
        )
        # other emails have no link that could go stale before sending
        assert not domain.link_expired("password_changed", data, NOW)

    def test_recipient_from_payload_lowercases_the_address(self) -> None:
        company = payloads.company("Ada@Example.TEST", contact_name="Ada", name="Acme")
        recipient = domain.recipient_from_payload({"company": company})
        assert recipient.email == "ada@example.test"
        assert (recipient.name, recipient.company_name) == ("Ada", "Acme")
        assert recipient.customer_id == company["customer_id"]

    def test_recipient_from_company_needs_an_address(self) -> None:
        with pytest.raises(ValueError, match="contact email"):
            domain.recipient_from_company({"customer_id": "C1", "name": "Acme"})
        recipient = domain.recipient_from_company(payloads.company("x@y.test"))
        assert recipient.email == "x@y.test"


def _data(kind: str, payload: dict) -> dict:
    return schemas.load_event(kind, payload)


class TestSubjects:
    def test_every_kind_has_a_subject_and_templates(self) -> None:
        events = {
            "company_created": payloads.company_created(),
            "company_invited": payloads.company_invited(),
            "password_reset_requested": payloads.password_reset_requested(),
            "password_changed": payloads.password_changed(),
            **payloads.licensing_events("C1234567"),
            **payloads.billing_events("C1234567"),
            **payloads.user_events(),
        }
        assert set(events) == set(domain.EVENT_SOURCES)
        suspended = events["license_suspended"]["license_id"]
        resumed = events["license_resumed"]["license_id"]
        changed = events["license_features_changed"]["license_id"]
        # billing's recurring payment here names no product: the license stands in
        renewing = events["payment_failed"]["recurring_payment"]["license_id"]
        subjects = {kind: domain.subject(kind, _data(kind, p)) for kind, p in events.items()}
        assert subjects == {
            "company_created": "Welcome to License Portal",
            "password_reset_requested": "Reset your License Portal password",
            "password_changed": "Your License Portal password was changed",
            "license_issued": "Your new CAD Pro license is ready",
            "license_extended": "Your CAD Pro license has been extended",
            "installation_activated": "New activation on WS-042",
            "license_expiring": "Your CAD Pro license expires in 7 days",
            "payment_succeeded": "Your receipt R-2026-000123",
            "payment_failed": f"Your renewal payment for license {renewing} did not go through",
            "recurring_payment_cancelled": f"Automatic renewal of license {renewing} cancelled",
            "offline_payment_recorded": "Your receipt R-2026-000123",
            "company_invited": "Set your License Portal password",
            "license_suspended": f"Your CAD Pro license {suspended} is suspended",
            "license_resumed": f"Your CAD Pro license {resumed} is active again",
            "license_features_changed": f"Modules of your CAD Pro license {changed} changed",
            "seats_exhausted": "All 2 seats of CAD Pro are in use",
            "payment_refunded": "We refunded your payment R-2026-000124",
            "payment_disputed": "Your payment R-2026-000125 is disputed at your bank",
            "payment_dispute_closed": (
                "Dispute of payment R-2026-000125 closed: the payment stands"
            ),
            "recurring_payment_resumed": "Automatic renewal of CAD Pro resumed",
            "recurring_payment_card_changed": "New card for the automatic renewal of CAD Pro",
            "user_invited": "ada@acme.test invited you to Acme's license portal",
            "user_role_changed": "Your role at Acme is now Billing",
            "user_disabled": "Your access to Acme's license portal was disabled",
        }
        for kind in events:
            assert domain.template_names(kind) == (f"{kind}.txt", f"{kind}.html")

    @pytest.mark.parametrize(
        ("days", "phrase"),
        [(30, "expires in 30 days"), (1, "expires tomorrow"), (0, "expires today")],
    )
    def test_expiry_phrase(self, days: int, phrase: str) -> None:
        data = _data("license_expiring", payloads.license_expiring("C1", days_left=days))
        assert domain.subject("license_expiring", data) == f"Your CAD Pro license {phrase}"

    def test_a_machine_name_cannot_inject_headers(self) -> None:
        payload = payloads.installation_activated("C1", machine_name="PC\r\nBcc: evil@x.test")
        line = domain.subject("installation_activated", _data("installation_activated", payload))
        assert "\r" not in line and "\n" not in line
        assert line == "New activation on PC Bcc: evil@x.test"

    def test_long_subjects_are_shortened(self) -> None:
        payload = payloads.installation_activated("C1", machine_name="M" * 190)
        line = domain.subject("installation_activated", _data("installation_activated", payload))
        assert len(line) == domain.MAX_SUBJECT_LENGTH and line.endswith("…")

    def test_unknown_kinds_have_no_email(self) -> None:
        with pytest.raises(ValueError):
            domain.template_names("invoice_overdue")
        with pytest.raises(ValueError):
            domain.subject("invoice_overdue", {"license": {"product": {"name": "X"}}})


class TestLinksAndIds:
    def test_links_are_built_from_the_portal_url(self) -> None:
        assert domain.sign_in_url("https://portal.example") == "https://portal.example/"
        assert (
            domain.license_url("https://portal.example", "L123")
            == "https://portal.example/licenses/L123"
        )
        assert domain.license_url("http://p", "L/1?x") == "http://p/licenses/L%2F1%3Fx"

    def test_message_id_is_stable_and_uses_the_sender_domain(self) -> None:
        first = domain.message_id("abc123", "company_created", "Portal <portal@acme.test>")
        again = domain.message_id("abc123", "company_created", "Portal <portal@acme.test>")
        assert first == again == "<abc123.company_created@acme.test>"

    def test_message_id_never_carries_odd_characters(self) -> None:
        value = domain.message_id("a b>c@d", "license_issued", "portal@localhost")
        local = value[1:].split(".", 1)[0]
        assert local.isalnum() and value.endswith("@localhost>")
        assert domain.message_id("x", "k", "no-at-sign").endswith("@license-portal.invalid>")
