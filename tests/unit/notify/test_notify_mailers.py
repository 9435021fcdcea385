"""The file mailer against a temporary folder, mailer selection, and SMTP error reporting."""

from __future__ import annotations

import smtplib
import stat
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from nameko import config as nameko_config

from services.notify import mailers
from services.notify.exceptions import DeliveryError
from services.notify.mailers import FileMailer, Mailer, SmtpMailer, mailer_from_settings
from tests.support.smtp_sink import free_port


def _message(subject: str = "Hello") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "portal@portal.test"
    message["To"] = "ada@acme.test"
    message["Subject"] = subject
    message.set_content("text body")
    message.add_alternative("<p>html body</p>", subtype="html")
    return message


class TestFileMailer:
    def test_writes_one_complete_eml_file_per_message(self, tmp_path: Path) -> None:
        mailer = FileMailer(tmp_path / "mail")
        mailer.send(_message("first"))
        mailer.send(_message("second"))
        files = sorted((tmp_path / "mail").iterdir())
        # no temporary file is left behind, and names sort in sending order
        assert [path.suffix for path in files] == [".eml", ".eml"]
        parsed = [message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]
        assert [m["Subject"] for m in parsed] == ["first", "second"]
        assert parsed[0].get_body(("html",)).get_content().strip() == "<p>html body</p>"

    def test_files_are_private_to_the_user(self, tmp_path: Path) -> None:
        FileMailer(tmp_path).send(_message())
        (path,) = tmp_path.glob("*.eml")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_names_sort_by_time(self) -> None:
        early = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
        names = [mailers.eml_name(early + timedelta(microseconds=n)) for n in (0, 1, 999_999)]
        assert names == sorted(names)
        assert names[0].startswith("20260102T030405.000006Z-") and names[0].endswith(".eml")

    def test_an_unwritable_folder_is_a_delivery_error(self, tmp_path: Path) -> None:
        blocker = tmp_path / "mail"
        blocker.write_text("a file where the folder should be")
        with pytest.raises(DeliveryError, match="cannot write mail"):
            FileMailer(blocker).send(_message())


class TestSelection:
    def test_without_smtp_host_mail_goes_to_files_under_var(self, tmp_path: Path) -> None:
        with nameko_config.patch({"VAR_DIR": str(tmp_path), "SMTP_HOST": ""}):
            mailer = mailer_from_settings()
        assert isinstance(mailer, FileMailer)
        assert mailer.directory == tmp_path / "mail"

    def test_smtp_host_selects_smtp_with_its_options(self) -> None:
        settings = {
            "SMTP_HOST": "mail.example",
            "SMTP_PORT": "587",
            "SMTP_USER": "portal",
            "SMTP_PASSWORD": "s3cret-pw",
            "SMTP_STARTTLS": "true",
        }
        with nameko_config.patch(settings):
            mailer = mailer_from_settings()
        assert isinstance(mailer, SmtpMailer)
        assert (mailer.host, mailer.port, mailer.username, mailer.starttls) == (
            "mail.example",
            587,
            "portal",
            True,
        )
        assert "s3cret-pw" not in mailer.describe() and "mail.example:587" in mailer.describe()

    def test_defaults(self) -> None:
        with nameko_config.patch({"SMTP_HOST": "mail.example", "MAIL_FROM": ""}):
            mailer = mailer_from_settings()
            assert mailers.mail_from() == "portal@localhost"
        assert (mailer.port, mailer.username, mailer.starttls) == (25, None, False)

    def test_both_mailers_keep_the_interface(self, tmp_path: Path) -> None:
        for mailer in (FileMailer(tmp_path), SmtpMailer("localhost")):
            assert isinstance(mailer, Mailer)
            assert callable(mailer.send) and isinstance(mailer.describe(), str)


class TestSmtpErrors:
    def test_nobody_listening_is_a_delivery_error(self) -> None:
        mailer = SmtpMailer("127.0.0.1", free_port(), username="u", password="s3cret-pw")
        with pytest.raises(DeliveryError) as caught:
            mailer.send(_message())
        assert "cannot reach SMTP server 127.0.0.1" in str(caught.value)
        assert "s3cret-pw" not in str(caught.value)

    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (smtplib.SMTPDataError(451, b"try later"), "answered 451: try later"),
            (
                smtplib.SMTPAuthenticationError(535, b"user:s3cret-pw rejected"),
                "rejected the login (535)",
            ),
            (
                smtplib.SMTPRecipientsRefused({"a@b": (550, b"no such user")}),
                "refused the recipient (550)",
            ),
            (smtplib.SMTPServerDisconnected("bye"), "closed the connection"),
            (TimeoutError(), "did not answer in time"),
            (ConnectionRefusedError(111, "Connection refused"), "Connection refused"),
        ],
    )
    def test_errors_are_described_without_secrets(self, error: Exception, expected: str) -> None:
        text = mailers.describe_smtp_error(error, "mail.example", 25)
        assert expected in text
        assert "s3cret-pw" not in text
        assert "mail.example:25" in text
