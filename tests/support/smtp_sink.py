"""A real SMTP server on loopback for tests, in its own process, and a small API to read its mail.

The server (`tests.support.smtp_server`, aiosmtpd) runs as a subprocess because the tests
run under eventlet's monkey patch, which does not mix with asyncio in one process; this
module starts it and reads the `.eml` files it saves, and never imports asyncio itself.

In tests:

    sink = SmtpSink(tmp_path / "mail", fail_first=1).start()
    config = {**sink.settings, ...}          # {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port}
    message = sink.wait_for(to="ada@acme.test", timeout=10)
    assert message["Subject"] == "Welcome to License Portal"
    sink.stop()

or `with SmtpSink(path) as sink: ...`. To have mail refused for a while, give a `port`
(`free_port()`) to the code under test first and `start()` the sink later.
"""

from __future__ import annotations

import contextlib
import email
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

Predicate = Callable[[EmailMessage], bool]


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (a race only with other port pickers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class SmtpSink:
    """Runs the sink server in a subprocess and reads what it received.

    `directory` is where messages land (created if needed); `port` is picked when not given;
    `fail_first` makes the server answer 451 to the first N messages for each recipient.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        port: int | None = None,
        fail_first: int = 0,
        host: str = HOST,
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port or free_port(host)
        self._port_chosen = port is None
        self.fail_first = fail_first
        self._process: subprocess.Popen | None = None
        self._parsed: dict[str, EmailMessage] = {}

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> SmtpSink:
        """Start the server and return once it accepts connections (greets with 220)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            self._process = self._spawn()
            if self._wait_until_ready(timeout):
                return self
            self.stop()
            if not self._port_chosen:
                break
            self.port = free_port(self.host)  # someone took the port meanwhile: pick again
        raise RuntimeError(f"the SMTP sink did not start; see {self.log_path}")

    def stop(self) -> None:
        """Stop the server (messages already received stay readable)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def settings(self) -> dict[str, str | int]:
        """The notify configuration that sends mail here."""
        return {"SMTP_HOST": self.host, "SMTP_PORT": self.port}

    @property
    def log_path(self) -> Path:
        return self.directory / "sink.log"

    def __enter__(self) -> SmtpSink:
        return self.start() if not self.running else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self) -> subprocess.Popen:
        command = [
            sys.executable,
            "-m",
            "tests.support.smtp_server",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.directory),
            "--fail-first",
            str(self.fail_first),
        ]
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)

    def _wait_until_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=1) as probe,
            ):
                if probe.recv(3) == b"220":
                    probe.sendall(b"QUIT\r\n")
                    return True
            time.sleep(0.05)
        return False

    # --- reading mail ---------------------------------------------------------------------

    def messages(self, to: str | None = None) -> list[EmailMessage]:
        """Every received message in arrival order, or those whose envelope includes `to`."""
        found = []
        for path in sorted(self.directory.glob("*.eml")):
            # a saved file never changes (written aside, then renamed): each is parsed once. A
            # long session's sink holds a thousand messages; parsing them all at every poll
            # blocked the test process for seconds (and the hub of an eventlet test with it)
            message = self._parsed.get(path.name)
            if message is None:
                message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
                self._parsed[path.name] = message
            if to is None or to.lower() in envelope_recipients(message):
                found.append(message)
        return found

    def wait_for(
        self,
        predicate: Predicate | None = None,
        *,
        to: str | None = None,
        timeout: float = 10.0,
    ) -> EmailMessage:
        """The first message (sent `to`, if given) matching `predicate`; waits up to `timeout`.

        Raises `AssertionError` listing what did arrive, so a failing test says why.
        """
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages(to):
                if predicate is None or predicate(message):
                    return message
            if time.monotonic() >= deadline:
                seen = [(m["X-Sink-Rcpt-To"], m["Subject"]) for m in self.messages()]
                raise AssertionError(
                    f"no matching message to {to or 'anyone'} within {timeout}s; got {seen}"
                )
            time.sleep(0.05)


def envelope_recipients(message: EmailMessage) -> list[str]:
    """The SMTP envelope recipients the sink recorded for `message`, lower-cased."""
    value = message.get("X-Sink-Rcpt-To", "")
    return [address.strip().lower() for address in str(value).split(",") if address.strip()]


def text_body(message: EmailMessage) -> str:
    """The text/plain part of `message` (empty if it has none)."""
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def html_body(message: EmailMessage) -> str:
    """The text/html part of `message` (empty if it has none)."""
    part = message.get_body(preferencelist=("html",))
    return part.get_content() if part is not None else ""
