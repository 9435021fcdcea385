"""Where emails go: a `Mailer` interface, SMTP for real mail, `.eml` files for the embedded default.

`mailer_from_settings()` picks one: `SMTP_HOST` set → `SmtpMailer`, otherwise `FileMailer`
writing to `<VAR_DIR>/mail/`. Both raise `DeliveryError` (and nothing else) when a message
was not taken, with a reason that is safe to store: no password, no message content.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
import uuid
from abc import ABC, abstractmethod
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from common import settings
from common.timeutil import utcnow
from services.notify.exceptions import DeliveryError

DEFAULT_MAIL_FROM = "portal@localhost"
# per socket operation; several of them make one send, all well inside domain.DEFAULT_LEASE
SMTP_TIMEOUT = 20.0


class Mailer(ABC):
    """Takes a complete message (headers, text and HTML parts) and delivers it, or raises."""

    @abstractmethod
    def send(self, message: EmailMessage) -> None:
        """Deliver `message`; `DeliveryError` if it was not accepted (the caller retries)."""

    def describe(self) -> str:
        """Where mail goes, for the start-up log line (never includes credentials)."""
        return type(self).__name__


class SmtpMailer(Mailer):
    """Hands every message to an SMTP server, one connection per message.

    A connection per message keeps a worker's failure (timeout, dropped link) to one message,
    and mail volume here is a few messages a minute, not thousands.
    """

    def __init__(
        self,
        host: str,
        port: int = 25,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = SMTP_TIMEOUT,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.starttls = starttls
        self.timeout = timeout

    def describe(self) -> str:
        tls = ", STARTTLS" if self.starttls else ""
        auth = f", as {self.username}" if self.username else ""
        return f"SMTP {self.host}:{self.port}{tls}{auth}"

    def send(self, message: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self._password or "")
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(describe_smtp_error(exc, self.host, self.port)) from None


def describe_smtp_error(exc: BaseException, host: str, port: int) -> str:
    """A one-line reason built from codes and server replies only (never our credentials)."""
    where = f"{host}:{port}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = ", ".join(str(code) for code, _ in exc.recipients.values())
        return f"SMTP server {where} refused the recipient ({codes})"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"SMTP server {where} rejected the login ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return f"SMTP server {where} answered {exc.smtp_code}: {text}"[:300]
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"SMTP server {where} closed the connection"
    if isinstance(exc, TimeoutError):
        return f"SMTP server {where} did not answer in time"
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
        return f"cannot reach SMTP server {where}: {reason}"
    return f"SMTP delivery to {where} failed: {type(exc).__name__}"


class FileMailer(Mailer):
    """Writes each message as `<directory>/<UTC time>-<random>.eml`, so names sort by time.

    The file appears complete or not at all: it is written under a hidden temporary name in
    the same directory, flushed to disk, then renamed.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def describe(self) -> str:
        return f"files in {self.directory}"

    def send(self, message: EmailMessage) -> None:
        # the wall clock, not the service's Clock: it only names the file in the order it was
        # written (for a human listing the directory); no rule of the service reads it
        name = eml_name(utcnow())
        final = self.directory / name
        temporary = self.directory / f".{name}.tmp"
        try:
            self.directory.mkdir(mode=settings.PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            # 0600: the message may hold a password reset link
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.as_bytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            raise DeliveryError(
                f"cannot write mail to {self.directory}: {exc.strerror or type(exc).__name__}"
            ) from None


def eml_name(now: datetime) -> str:
    """`20261128T093316.927209Z-1f2e3d4c.eml`: sortable by time, unique across processes."""
    return f"{now:%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex[:12]}.eml"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def mailer_from_settings() -> Mailer:
    """The mailer the configuration asks for (see the module docstring)."""
    host = settings.get("SMTP_HOST")
    if host:
        return SmtpMailer(
            host=host,
            port=settings.get_int("SMTP_PORT", 25),
            username=settings.get("SMTP_USER"),
            password=settings.get("SMTP_PASSWORD"),
            starttls=_flag(settings.get("SMTP_STARTTLS")),
        )
    return FileMailer(settings.var_dir() / "mail")


def mail_from() -> str:
    return settings.get("MAIL_FROM", DEFAULT_MAIL_FROM)
