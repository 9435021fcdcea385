"""Events on the real bus become emails at a real SMTP server, once, with retries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.notify import domain
from services.notify.service import NotifyService
from tests.integration.notify.conftest import FAST, queue_depth
from tests.support.smtp_sink import SmtpSink, free_port, html_body, text_body
from tests.support.waiting import eventually
from tests.unit.notify import payloads

pytestmark = pytest.mark.integration


def _deliveries(rpc, recipient: str) -> list[dict]:
    return rpc.call("notify", "list_deliveries", 10, recipient)


def test_welcome_email_of_the_old_shape_arrives_with_its_link_and_the_link_leaves_the_database(
    start_notify, dispatch, sink, rpc, tables
) -> None:
    """An event published before issue 11 (with the link itself) still in flight at the
    upgrade. Links made by auth at send time: test_notify_with_auth."""
    start_notify()
    email = payloads.unique_email()
    payload = payloads.legacy_company_created(email)
    dispatch("auth", "company_created", payload)

    message = sink.wait_for(to=email)
    assert message["Subject"] == "Welcome to License Portal"
    assert message["From"] == "License Portal <portal@portal.test>"
    assert message["To"].addresses[0].addr_spec == email
    assert message["Message-ID"] == f"<{payload['event_id']}.company_created@portal.test>"
    link = payload["set_password_url"]
    assert link in text_body(message)
    assert f'href="{link}"' in html_body(message)
    assert payload["company"]["customer_id"] in text_body(message)

    (row,) = eventually(lambda: [r for r in _deliveries(rpc, email) if r["status"] == "sent"])
    assert (row["attempts"], row["kind"], row["last_error"]) == (1, "company_created", None)
    assert row["sent_at"] is not None
    stored = tables.delivery(payload["event_id"])
    assert stored.payload is None  # the set-password link is gone from the database


def test_a_redelivered_event_sends_one_email(start_notify, dispatch, sink, rpc) -> None:
    start_notify()
    email = payloads.unique_email()
    payload = payloads.password_changed(email)
    dispatch("auth", "password_changed", payload)
    sink.wait_for(to=email)
    # the same event again (a redelivery), then a marker behind it on the same queue
    dispatch("auth", "password_changed", payload)
    marker = payloads.unique_email("marker")
    dispatch("auth", "password_changed", payloads.password_changed(marker))
    sink.wait_for(to=marker)

    assert len(sink.messages(to=email)) == 1
    (row,) = _deliveries(rpc, email)
    assert (row["status"], row["attempts"]) == ("sent", 1)


def test_a_poison_event_is_parked_and_the_next_one_is_delivered(
    config, start_notify, dispatch, sink, rpc, tables
) -> None:
    start_notify()
    poison = payloads.legacy_company_created()
    del poison["company"]
    dispatch("auth", "company_created", poison)
    email = payloads.unique_email()
    dispatch("auth", "company_created", payloads.company_created(email, with_link=False))

    sink.wait_for(to=email)
    (parked,) = eventually(lambda: tables.parked(poison["event_id"]))
    assert parked.source == "auth" and parked.event_type == "company_created"
    assert "company: Missing data for required field." in parked.error
    assert parked.payload["set_password_url"] == domain.REDACTED
    listed = rpc.call("notify", "list_parked_events", 50)
    assert poison["event_id"] in [p["event_id"] for p in listed]
    # acked, not requeued in a loop
    assert queue_depth(config, "auth", "company_created") == 0
    assert tables.delivery(poison["event_id"]) is None


def test_smtp_refusing_at_first_is_retried_until_delivered(
    config, container_factory, dispatch, rpc, tmp_path
) -> None:
    with SmtpSink(tmp_path / "flaky", fail_first=2) as flaky:
        container = container_factory(NotifyService, {**flaky.settings, **FAST})
        container.start()
        email = payloads.unique_email()
        dispatch("auth", "password_changed", payloads.password_changed(email, how="reset"))

        message = flaky.wait_for(to=email)
        assert message["Subject"] == "Your License Portal password was changed"
        (row,) = eventually(lambda: [r for r in _deliveries(rpc, email) if r["status"] == "sent"])
        assert row["attempts"] == 3
        assert re.search(r"answered 451", row["last_error"])
        assert len(flaky.messages(to=email)) == 1


def test_a_mail_server_that_comes_up_later_gets_the_mail(
    config, container_factory, dispatch, rpc, tmp_path
) -> None:
    port = free_port()
    late = SmtpSink(tmp_path / "late", port=port)
    container = container_factory(NotifyService, {**late.settings, **FAST})
    container.start()
    email = payloads.unique_email()
    dispatch("auth", "password_changed", payloads.password_changed(email))

    row = eventually(lambda: next((r for r in _deliveries(rpc, email) if r["last_error"]), None))
    assert row["status"] in ("pending", "sending")
    assert f"cannot reach SMTP server 127.0.0.1:{port}" in row["last_error"]
    with late:
        late.wait_for(to=email, timeout=10)
    (row,) = eventually(lambda: [r for r in _deliveries(rpc, email) if r["status"] == "sent"])
    assert row["attempts"] >= 2


def test_several_instances_send_each_email_once(start_notify, dispatch, sink) -> None:
    start_notify()
    start_notify()
    emails = [payloads.unique_email(f"many{n}") for n in range(8)]
    for email in emails:
        dispatch("auth", "password_changed", payloads.password_changed(email))
    for email in emails:
        sink.wait_for(to=email)
    last = payloads.unique_email("last")
    dispatch("auth", "password_changed", payloads.password_changed(last))
    sink.wait_for(to=last)
    assert [len(sink.messages(to=email)) for email in emails] == [1] * len(emails)


def test_without_smtp_host_mail_is_written_as_eml_files(start_notify, dispatch, tmp_path) -> None:
    var_dir = tmp_path / "var"
    start_notify(SMTP_HOST="", SMTP_PORT="", VAR_DIR=str(var_dir))
    email = payloads.unique_email()
    dispatch("auth", "password_changed", payloads.password_changed(email))

    def written() -> list[Path]:
        return [p for p in (var_dir / "mail").glob("*.eml") if email in p.read_text()]

    (path,) = eventually(written)
    assert "Subject: Your License Portal password was changed" in path.read_text()
    assert not list((var_dir / "mail").glob(".*.tmp"))


def test_unique_event_ids_make_unique_messages(start_notify, dispatch, sink) -> None:
    start_notify()
    email = payloads.unique_email()
    for _ in range(2):  # two genuine events for one address: two emails
        dispatch("auth", "password_changed", payloads.password_changed(email))
    eventually(lambda: len(sink.messages(to=email)) == 2)
    assert len({m["Message-ID"] for m in sink.messages(to=email)}) == 2
