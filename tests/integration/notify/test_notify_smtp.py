"""The SMTP mailer against a real SMTP server (the test sink), and the sink's own promises."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from services.notify.exceptions import DeliveryError
from services.notify.mailers import SmtpMailer
from tests.support.smtp_sink import SmtpSink, html_body, text_body

pytestmark = pytest.mark.integration


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "License Portal <portal@portal.test>"
    message["To"] = f"Ada Lovelace <{to}>"
    message["Subject"] = "Grüße from the sink test"
    message.set_content("plain text ✓")
    message.add_alternative("<p>html ✓</p>", subtype="html")
    return message


def test_smtp_mailer_delivers_text_and_html(sink: SmtpSink) -> None:
    SmtpMailer(sink.host, sink.port).send(_message("ada@acme.test"))
    received = sink.wait_for(to="ada@acme.test")
    assert received["Subject"] == "Grüße from the sink test"
    assert received["X-Sink-Mail-From"] == "portal@portal.test"
    assert text_body(received).strip() == "plain text ✓"
    assert html_body(received).strip() == "<p>html ✓</p>"


def test_a_temporary_refusal_is_a_delivery_error_then_it_goes_through(tmp_path) -> None:
    with SmtpSink(tmp_path / "mail", fail_first=1) as sink:
        mailer = SmtpMailer(sink.host, sink.port, username=None, password="never-shown")
        with pytest.raises(DeliveryError) as caught:
            mailer.send(_message("bob@acme.test"))
        assert "answered 451" in str(caught.value)
        assert "never-shown" not in str(caught.value)
        assert sink.messages() == []
        mailer.send(_message("bob@acme.test"))
        assert len(sink.messages(to="bob@acme.test")) == 1
        # refusals count per recipient: a new address is refused its first time too
        with pytest.raises(DeliveryError):
            mailer.send(_message("carol@acme.test"))


def test_wait_for_says_what_did_arrive(sink: SmtpSink) -> None:
    SmtpMailer(sink.host, sink.port).send(_message("dave@acme.test"))
    sink.wait_for(to="dave@acme.test")
    with pytest.raises(AssertionError, match="dave@acme.test"):
        sink.wait_for(to="nobody@acme.test", timeout=0)


def test_a_stopped_sink_refuses_connections(tmp_path) -> None:
    sink = SmtpSink(tmp_path / "mail").start()
    sink.stop()
    assert not sink.running
    with pytest.raises(DeliveryError, match="cannot reach"):
        SmtpMailer(sink.host, sink.port).send(_message("erin@acme.test"))
