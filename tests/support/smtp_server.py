"""The SMTP server behind `tests.support.smtp_sink.SmtpSink`: aiosmtpd, in its own process.

    python -m tests.support.smtp_server --port 2525 --dir /tmp/mail [--fail-first 2]

Every accepted message is saved as `<dir>/<receive time ns>-<n>.eml` (written to a
temporary name, then renamed), with the SMTP envelope added as two headers,
`X-Sink-Mail-From` and `X-Sink-Rcpt-To`. `--fail-first N` answers `451` (a temporary
failure, so a well-behaved sender retries) to the first N messages for each recipient.

A process of its own because the tests run under eventlet's monkey patch, which does not
mix with asyncio: only this module imports asyncio, and the tests never import it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session


class SinkHandler:
    """aiosmtpd handler: saves each message, or refuses the first N per recipient with 451."""

    def __init__(self, directory: Path, fail_first: int) -> None:
        self.directory = directory
        self.fail_first = fail_first
        self.attempts: dict[str, int] = {}
        self.saved = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        recipients = ",".join(sorted(address.lower() for address in envelope.rcpt_tos))
        self.attempts[recipients] = self.attempts.get(recipients, 0) + 1
        if self.attempts[recipients] <= self.fail_first:
            return "451 4.3.0 Temporarily unable to accept the message (test sink)"
        self.saved += 1
        name = f"{time.time_ns():020d}-{self.saved:06d}.eml"
        header = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\nX-Sink-Rcpt-To: {recipients}\r\n"
        ).encode()
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(header + envelope.original_content)
        os.replace(temporary, self.directory / name)
        return "250 2.0.0 Message accepted"


async def serve(host: str, port: int, directory: Path, fail_first: int) -> None:
    """Accept mail on `host:port` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    handler = SinkHandler(directory, fail_first)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="smtp-sink.test", enable_SMTPUTF8=True), host, port
    )
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    server.close()
    await server.wait_closed()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="An SMTP server that saves mail as .eml files.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args.host, args.port, args.dir, args.fail_first))


if __name__ == "__main__":
    main()
