"""notify killed (SIGKILL) while it delivers: no email is lost, and the emails sent twice are
no more than notify delivers at once (issue 12, "notify's duplicate emails after a crash
stay within its concurrency and are measured").

How notify delivers (services/notify/use_cases.py, repository.py): a worker claims ONE due
row at a time (`claim_next`, a lease in `next_attempt_at`), sends it over SMTP outside any
transaction, then records the outcome (`finish`). A crash between the SMTP server's 250 and
`finish` leaves the row `sending` until its lease runs out; then it is claimed and sent again.
Every claim is held by a nameko worker (event handlers send at once, the delivery timer sends
the rest), and a container runs at most `max_workers` workers, so at most `max_workers`
emails can be in that window when the process dies: the bound is config.yaml's
`max_workers: ${MAX_WORKERS:10}`.

To make the kill hit that window for real, notify talks to the SMTP sink through a proxy of
this module that holds back the sink's reply to the end of DATA (the message is already
saved at the sink) for `HOLD_SECONDS`: while the process is killed, its in-flight emails are
at the sink but not recorded as sent.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import eventlet
import pytest
from eventlet.greenpool import GreenPool
from sqlalchemy import create_engine, text

from common.rpc import standalone_client
from tests.support.smtp_sink import envelope_recipients
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
EMAILS = 40  # companies created without a password: one invitation email each
KILL_AFTER = 12  # SIGKILL by this many at the sink, if the peak of the first wave was missed
HOLD_SECONDS = 1.0  # the sink's "250 accepted" reaches notify this much later
LEASE_SECONDS = 8  # the killed notify's lease: its unfinished claims are retaken after it
SUBJECT = "Welcome to License Portal"


def max_workers(env: dict[str, str]) -> int:
    """notify's concurrency: config.yaml's `max_workers: ${MAX_WORKERS:<default>}`."""
    line = re.search(
        r"^max_workers:\s*\$\{MAX_WORKERS:(\d+)\}\s*$",
        (ROOT / "config.yaml").read_text(),
        re.MULTILINE,
    )
    assert line, "config.yaml no longer reads max_workers from MAX_WORKERS"
    return int(env.get("MAX_WORKERS") or line.group(1))


class HoldingSmtpProxy:
    """A TCP proxy in front of the SMTP sink that holds back the reply to the end of DATA.

    `held` counts the messages the sink has saved whose "250" has not reached the sender yet;
    `held_peak` is its highest value (how many sends were in the crash window at once).
    """

    def __init__(self, target_port: int, hold: float, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.hold = hold
        self.listener = eventlet.listen((host, 0))
        self.port = self.listener.getsockname()[1]
        self.held = 0
        self.held_peak = 0
        self.connections = 0
        self.pool = GreenPool(200)
        self.acceptor = eventlet.spawn(self._accept)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self.pool.spawn_n(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        try:
            server = eventlet.connect(self.target)
        except OSError:
            client.close()
            return
        state = {"data_end": False}
        upstream = eventlet.spawn(self._client_to_server, client, server, state)
        try:
            while True:
                chunk = server.recv(65536)
                if not chunk:
                    break
                if state["data_end"] and chunk.startswith(b"250"):
                    state["data_end"] = False
                    self.held += 1
                    self.held_peak = max(self.held_peak, self.held)
                    try:
                        eventlet.sleep(self.hold)
                    finally:
                        self.held -= 1
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            upstream.kill()
            for end in (client, server):
                end.close()

    @staticmethod
    def _client_to_server(client: socket.socket, server: socket.socket, state: dict) -> None:
        tail = b""
        try:
            while True:
                chunk = client.recv(65536)
                if not chunk:
                    break
                tail = (tail + chunk)[-5:]
                if tail.endswith(b"\r\n.\r\n"):
                    state["data_end"] = True  # before forwarding: the 250 comes after
                server.sendall(chunk)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                server.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()
        self.acceptor.kill()
        self.pool.waitall()


@contextmanager
def env_overrides(suite, **values: str) -> Iterator[None]:
    """`suite.start()` starts processes with these settings until the block ends."""
    before = {key: suite.env.get(key) for key in values}
    suite.env.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                suite.env.pop(key, None)
            else:
                suite.env[key] = value


def mine(smtp_sink, emails: set[str]) -> list:
    """The messages at the sink sent to one of `emails`, in arrival order."""
    return [
        message for message in smtp_sink.messages() if set(envelope_recipients(message)) & emails
    ]


def delivery_states(engine, emails: set[str]) -> Counter:
    """The states of notify's delivery rows of the invitations to `emails`."""
    with engine.connect() as connection:
        by_recipient = connection.execute(
            text("SELECT status, recipient FROM deliveries WHERE kind = 'company_created'")
        ).all()
    return Counter(status for status, recipient in by_recipient if recipient in emails)


def unsent(engine) -> int:
    """How many of notify's deliveries are being sent or due within seconds (a retry due
    much later is not waited for)."""
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM deliveries WHERE status = 'sending' OR (status = 'pending'"
                " AND (next_attempt_at IS NULL OR next_attempt_at < now() + interval '10 s'))"
            )
        ).scalar_one()


def test_notify_killed_while_delivering_loses_no_email_and_duplicates_stay_within_max_workers(
    suite, smtp_sink
) -> None:
    started = time.monotonic()
    bound = max_workers(suite.env_of("notify"))
    run = uuid.uuid4().hex[:8]
    emails = {f"crash.{run}.{number:02d}@example.test" for number in range(EMAILS)}
    engine = create_engine(suite.env["NOTIFY_DATABASE_URL"])
    proxy = HoldingSmtpProxy(smtp_sink.port, HOLD_SECONDS)
    victim = None
    try:
        # 0. the emails of the tests before (a load test's activation notices) sent first:
        # otherwise the kill below hits their sends, not this test's
        eventually(lambda: unsent(engine) == 0, 180, "notify's earlier emails sent")
        # the sink's earlier messages parsed now, not in the polls below: this process also
        # runs the proxy, and seconds of parsing there would hold every reply past the lease
        smtp_sink.messages()

        # 1. notify stopped (gracefully): the invitations pile up in its durable event queue
        while suite.processes.get("notify"):
            suite.terminate("notify", 0)

        # as `portalctl company create` (no --password) does, in this process: 2 CPUs spend
        # about a second starting each portalctl process
        staff = {"request_key": uuid.uuid4().hex}
        with standalone_client(20, suite.env_of("staff")["AMQP_URI"], staff) as rpc:
            for email in sorted(emails):
                company = {"name": f"Crash {email[6:17]}", "contact_name": "Ada"}
                rpc.call("auth", "create_company", {**company, "contact_email": email})
        created = time.monotonic()

        # 2. a notify whose SMTP replies are held back, with a short lease
        with env_overrides(
            suite, SMTP_PORT=str(proxy.port), NOTIFY_LEASE_SECONDS=str(LEASE_SECONDS)
        ):
            suite.start("notify")
        victim = suite.processes["notify"][-1]

        deadline = time.monotonic() + 40
        # at the peak of the first wave (every worker between the sink's 250 and `finish`),
        # or, should it never come, a while later with at least one send in that window
        while not (
            proxy.held >= bound or (len(mine(smtp_sink, emails)) >= KILL_AFTER and proxy.held >= 1)
        ):
            assert victim.poll() is None, suite.log("notify")[-3000:]
            assert time.monotonic() < deadline, "notify sent nothing through the proxy"
            eventlet.sleep(0.02)

        # 3. SIGKILL in the middle of delivering
        held_at_kill = proxy.held
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(10)
        suite.processes["notify"].remove(victim)
        killed = time.monotonic()
        arrived_at_kill = len(mine(smtp_sink, emails))
        eventlet.sleep(0.3)  # anything the sink was still saving
        states_at_kill = delivery_states(engine, emails)
        assert arrived_at_kill < EMAILS, "every email was sent before the kill: kill earlier"
        assert held_at_kill >= 1 and states_at_kill["sending"] >= 1, (
            f"the kill hit no delivery in flight: {held_at_kill} held, {states_at_kill}"
        )

        # 4. notify again, as the suite runs it (the sink directly, the default lease)
        suite.start("notify")
        suite.wait_ready(timeout=30, services=("notify",))

        deadline = time.monotonic() + 45
        while True:
            states = delivery_states(engine, emails)
            arrived = {r for m in mine(smtp_sink, emails) for r in envelope_recipients(m)}
            done = states["sent"] == EMAILS and emails <= arrived
            if done or time.monotonic() >= deadline:
                break
            eventlet.sleep(0.2)
        eventlet.sleep(0.5)  # a late duplicate would still be counted
        finished = time.monotonic()

        messages = mine(smtp_sink, emails)
        per_recipient = Counter(
            (recipient, str(message["Subject"]))
            for message in messages
            for recipient in envelope_recipients(message)
        )
        per_message_id = Counter(str(message["Message-ID"]) for message in messages)
        lost = sorted(email for email in emails if (email, SUBJECT) not in per_recipient)
        duplicates = sum(count - 1 for count in per_recipient.values())
        duplicate_ids = sum(count - 1 for count in per_message_id.values())
        states = delivery_states(engine, emails)

        print(
            f"\nnotify crash: {EMAILS} emails expected, {len(messages)} received,"
            f" {len(per_recipient)} distinct, lost {len(lost)};"
            f" duplicates {duplicates} (by recipient+subject), {duplicate_ids} (by Message-ID);"
            f" bound {bound} (notify's max_workers, config.yaml ${{MAX_WORKERS:10}});"
            f" at the kill: {arrived_at_kill} at the sink, {held_at_kill} sends held"
            f" between the sink's 250 and notify, rows {dict(states_at_kill)};"
            f" proxy held peak {proxy.held_peak};"
            f" final rows {dict(states)};"
            f" times: create {created - started:.1f}s, to kill {killed - created:.1f}s,"
            f" recovery {finished - killed:.1f}s"
        )
        assert not lost, f"emails lost after the crash: {lost}; rows {dict(states)}"
        assert states == Counter(sent=EMAILS), states
        assert duplicates == duplicate_ids  # the same email twice, not two different ones
        assert duplicates <= bound, (
            f"{duplicates} duplicate emails after one crash, more than notify's"
            f" max_workers ({bound}): {[k for k, v in per_recipient.items() if v > 1]}"
        )
    finally:
        if victim is not None and victim in suite.processes.get("notify", []):
            os.killpg(victim.pid, signal.SIGKILL)  # the test failed before its kill
            victim.wait(10)
            suite.processes["notify"].remove(victim)
        proxy.close()
        engine.dispose()
        if not suite.processes.get("notify"):  # the suite's other tests need a notify
            suite.start("notify")
            suite.wait_ready(timeout=30, services=("notify",))
