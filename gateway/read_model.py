"""The gateway answers validations itself: `ValidationReadModel`, a nameko dependency.

`POST /api/v1/validations` used to be one RPC to licensing's `validate`; now the gateway
verifies the certificate with licensing's keys, takes the facts of the (license,
installation) from its cache (gateway/validation.py; on a miss one `validation_facts` RPC),
computes the answer with the function licensing uses (common/validation.py) and signs it
with licensing's signing key: the same answer, field for field, signed by the same key.

- **Keys**: `validation_keys` (a gateway-only RPC) hands over the signing key and the JWKS.
  Only the first validation waits for them (no keys at all); after that they are fetched off
  the request path, by the `refresh_validation_keys` timer (every KEYS_CHECK_SECONDS it looks
  whether a fetch is due): when older than KEYS_REFRESH_SECONDS (a rotated key, i.e.
  licensing restarted with another) and soon after a certificate named an unknown `kid`, at
  most once per KEYS_RETRY_SECONDS. A certificate whose `kid` is unknown is never answered
  BAD_SIGNATURE here: it goes to licensing's `validate` (it may hold a newer key).
- **Invalidation**: a greenthread consumes every `licensing.events` event on an exclusive,
  auto-delete queue of its own (`gateway-validation-<uuid>`); an event naming a license
  drops that license's entries (an `installation_*` event: that installation's only). On
  each (re)connect it declares and binds the queue, flushes the cache, then consumes; while
  it is disconnected, or nothing (event or heartbeat) came for SILENCE_SECONDS, the cache is
  bypassed. `stop()` asks the loop to end and waits (STOP_SECONDS): the consumer closes its
  own connection.
- **Bypass** (licensing's `validate` RPC, as before): `VALIDATION_CACHE_SIZE=0` (then the
  gateway never asks for the key), the consumer disconnected, no keys yet, and lease
  certificates (their lease changes at every heartbeat: they stay on licensing).
- **last_seen_at**: a hit whose installation is due to be marked seen queues a mark;
  `flush_seen_marks` sends them in one `mark_seen` RPC every SEEN_FLUSH_SECONDS; `stop()`
  sends what is left once (a standalone client, at most STOP_SECONDS; marks it cannot send
  are lost, harmlessly: the next validation brings them back).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
import uuid
from typing import Any, Protocol

import eventlet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventlet.event import Event
from kombu import Connection, Consumer, Queue
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange

from common import metrics, settings
from common.bus import EVERY_EVENT, GATEWAY_VALIDATION_QUEUES
from common.jws import VALIDATION_TYP, BadSignature, Keyring, b64url_decode, header_kid
from common.jws import public_keys_of as jwks_keys
from common.rpc import standalone_client
from common.validation import (
    BAD_SIGNATURE,
    answer,
    facts_from_wire,
    validation_claims,
    validation_view,
)
from gateway.validation import (
    BYPASS,
    DEFAULT_MAX_AGE,
    DEFAULT_SIZE,
    HIT,
    FactsCache,
    SeenMarks,
    installation_of,
    license_of,
)

log = logging.getLogger(__name__)

KEYS_REFRESH_SECONDS = 60.0  # keys older than this are fetched again (off the request path)
KEYS_CHECK_SECONDS = 1.0  # the `refresh_validation_keys` timer: is a fetch due?
KEYS_RETRY_SECONDS = 5.0  # at most one fetch this often (a failing one, or unknown kids)
SEEN_FLUSH_SECONDS = 2.0
SEEN_BATCH = 500  # below licensing's MAX_SEEN
SEEN_BATCHES = 8  # at most this many batches a tick (4000 marks / 2 s per gateway)
ID_MAX = 200  # licensing's bound on the ids `validation_facts` takes (its schemas.py)
# the broker sends a heartbeat every HEARTBEAT_SECONDS / 2 when it has nothing else to send:
# the cache stops answering after SILENCE_SECONDS without a frame (gateway/validation.py)
HEARTBEAT_SECONDS = 2
DRAIN_SECONDS = 0.5  # how long one wait for a frame lasts: how soon the loop sees `stop`
STOP_SECONDS = 2.0  # how long `stop()` waits for the consumer, then for the last seen marks
RECONNECT_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)  # the n-th reconnect in a row waits this long


class Licensing(Protocol):
    """The licensing methods the read model calls (the gateway's `RpcClient`)."""

    def validate(self, certificate: Any, nonce: str | None = None) -> dict[str, Any]: ...

    def validation_facts(self, license_id: str, installation_id: str) -> dict[str, Any] | None: ...

    def validation_keys(self) -> dict[str, Any]: ...

    def mark_seen(self, seen: list[list[str]]) -> dict[str, int]: ...


def _frames_received(connection: Connection) -> int | None:
    """How many frames py-amqp has read on `connection` (None for a transport that does not
    count them: the tests' `memory://`, which cannot go silent)."""
    return getattr(connection.connection, "bytes_recv", None)


class ValidationReadModel(DependencyProvider):
    """Dependency: `read_model = ValidationReadModel()`; workers get the provider itself."""

    def setup(self) -> None:
        size = settings.get_int("VALIDATION_CACHE_SIZE", DEFAULT_SIZE)
        max_age = settings.get_float("VALIDATION_CACHE_MAX_AGE_SECONDS", DEFAULT_MAX_AGE)
        self.cache = FactsCache(max(size, 0), max_age)
        self.seen = SeenMarks()
        self.keyring: Keyring | None = None
        self.keys_at = float("-inf")  # when the keys were last fetched (monotonic)
        self.keys_tried_at = float("-inf")
        self.keys_wanted = False  # a certificate named a kid we do not hold
        self.running = False
        self.failures = 0  # reconnects in a row (reset once consuming)
        self.stopped = Event()

    @property
    def enabled(self) -> bool:
        return self.cache.size > 0

    def start(self) -> None:
        if self.enabled:
            self.running = True
            self.container.spawn_managed_thread(self._consume)

    def stop(self) -> None:
        """Ask the consumer to end (it closes its own connection within DRAIN_SECONDS) and
        wait for it at most STOP_SECONDS; then send the seen marks still queued."""
        if self.running:
            self.running = False
            self.cache.connected = False
            with eventlet.Timeout(STOP_SECONDS, False):
                self.stopped.wait()
        self._flush_seen_on_stop()

    def kill(self) -> None:
        self.running = False
        self.cache.connected = False

    def get_dependency(self, worker_ctx: object) -> ValidationReadModel:
        return self

    # --- the event consumer ---------------------------------------------------------

    def _consume(self) -> None:
        try:
            while self.running:
                try:
                    self._consume_once()
                except Exception as exc:  # reconnect whatever broke
                    if self.running:
                        log.warning("validation cache: event consumer disconnected (%s)", exc)
                finally:
                    self.cache.connected = False
                    self.cache.flush()
                if self.running:
                    delay = RECONNECT_SECONDS[min(self.failures, len(RECONNECT_SECONDS) - 1)]
                    self.failures += 1
                    eventlet.sleep(delay)
        finally:
            if not self.stopped.ready():
                self.stopped.send(None)

    def _consume_once(self) -> None:
        queue = Queue(
            GATEWAY_VALIDATION_QUEUES + uuid.uuid4().hex,
            exchange=get_event_exchange("licensing"),
            routing_key=EVERY_EVENT,
            durable=False,
            exclusive=True,
            auto_delete=True,
        )
        with Connection(settings.amqp_uri(), heartbeat=HEARTBEAT_SECONDS) as connection:
            connection.ensure_connection(max_retries=1)
            channel = connection.channel()
            with Consumer(
                channel,
                [queue],
                callbacks=[self._on_event],
                no_ack=True,
                accept=["application/json"],  # nothing but JSON is ever decoded
            ):
                # bound before the flush: an event published from now on reaches us
                self.cache.flush()
                self.cache.heard()
                self.cache.connected = True
                self.failures = 0  # consuming: the next disconnection starts the backoff anew
                log.info("validation cache: consuming licensing events on %s", queue.name)
                received = _frames_received(connection)
                while self.running:
                    # at every turn, events or not: a consumer that only receives must still
                    # send heartbeats, or the broker drops it under a steady flow of events
                    connection.heartbeat_check()
                    with contextlib.suppress(TimeoutError, socket.timeout):  # nothing came
                        connection.drain_events(timeout=DRAIN_SECONDS)
                    frames = _frames_received(connection)
                    if frames is None or frames != received:  # an event or a heartbeat came
                        received = frames
                        self.cache.heard()

    def _on_event(self, body: Any, message: Any) -> None:
        license_id = license_of(body)
        if license_id is not None:
            event_type = message.delivery_info.get("routing_key")
            self.cache.invalidate(license_id, installation_of(event_type, body))

    # --- keys ------------------------------------------------------------------------

    def refresh_keys(self, licensing: Licensing) -> Keyring | None:
        """The keyring, fetched again when there is none, when older than
        KEYS_REFRESH_SECONDS, or when a certificate named an unknown `kid`; at most once per
        KEYS_RETRY_SECONDS. None while none could be had. The `refresh_validation_keys`
        timer calls it; a request only while there are no keys at all."""
        now = time.monotonic()
        due = self.keyring is None or self.keys_wanted or now - self.keys_at > KEYS_REFRESH_SECONDS
        if due and now - self.keys_tried_at > KEYS_RETRY_SECONDS:
            self.keys_tried_at = now
            self.keys_wanted = False
            try:
                keys = licensing.validation_keys()
                raw = b64url_decode(keys["signing_key"])
                private = Ed25519PrivateKey.from_private_bytes(raw)
                self.keyring = Keyring.build(private, jwks_keys(keys["jwks"]))
                self.keys_at = now
            except Exception as exc:  # the RPC path still answers
                log.warning("validation cache: cannot fetch licensing's keys (%s)", exc)
        return self.keyring

    # --- answering -------------------------------------------------------------------

    def validate(
        self, licensing: Licensing, certificate: Any, nonce: str | None, now: Any
    ) -> dict[str, Any]:
        """`validate`'s answer with `signed_answer`, from the cache when it may answer, else
        from licensing's `validate`; counted in `portal_validations_total`."""
        result = self._answer(licensing, certificate, nonce, now)
        metrics.VALIDATIONS.labels(str(result.get("code"))).inc()
        return result

    def _answer(
        self, licensing: Licensing, certificate: Any, nonce: str | None, now: Any
    ) -> dict[str, Any]:
        if not self.cache.usable:
            return self._bypass(licensing, certificate, nonce)
        # the request waits for the keys only when there are none (then licensing answers
        # if they cannot be had); fetching them again is the timer's (refresh_keys)
        keyring = self.keyring or self.refresh_keys(licensing)
        if keyring is None:
            return self._bypass(licensing, certificate, nonce)
        try:
            claims = keyring.verify(certificate)
        except BadSignature:
            kid = header_kid(certificate)
            if kid is not None and kid not in keyring.verify_keys:
                # licensing may hold a key we do not have yet (a rotation): it answers, and
                # the timer fetches the keys again
                self.keys_wanted = True
                return self._bypass(licensing, certificate, nonce)
            # a known key (tampered, wrong typ or alg), or no usable kid at all
            return self._signed(keyring, validation_view(BAD_SIGNATURE), now, nonce)
        if "lease_id" in claims:
            return self._bypass(licensing, certificate, nonce)
        license_id, installation_id = claims.get("license_id"), claims.get("installation_id")
        if not (isinstance(license_id, str) and isinstance(installation_id, str)):
            return self._signed(keyring, answer(None, license_id, installation_id, now), now, nonce)
        if not (0 < len(license_id) <= ID_MAX and 0 < len(installation_id) <= ID_MAX):
            # only a legacy certificate could: `validation_facts` would refuse its ids, and
            # `validate` answers every certificate
            return self._bypass(licensing, certificate, nonce)
        key = (license_id, installation_id)
        result, facts = self.cache.lookup(key, claims.get("iat"))
        if result == BYPASS:
            return self._bypass(licensing, certificate, nonce)
        if result == HIT:
            if self.seen.due(facts, now):
                self.seen.add(key)
                self.cache.mark_seen(key, now)
        else:
            ticket = self.cache.ticket()
            # licensing marks the installation seen while reading its facts
            facts = facts_from_wire(licensing.validation_facts(license_id, installation_id))
            self.cache.store(key, facts, ticket)
        metrics.VALIDATION_CACHE.labels(result).inc()
        return self._signed(keyring, answer(facts, license_id, installation_id, now), now, nonce)

    def _bypass(self, licensing: Licensing, certificate: Any, nonce: str | None) -> dict[str, Any]:
        metrics.VALIDATION_CACHE.labels(BYPASS).inc()
        return licensing.validate(certificate, nonce)

    @staticmethod
    def _signed(
        keyring: Keyring, result: dict[str, Any], now: Any, nonce: str | None
    ) -> dict[str, Any]:
        claims = validation_claims(result, now, nonce)
        return {**result, "signed_answer": keyring.sign(claims, typ=VALIDATION_TYP)}

    # --- last_seen_at ----------------------------------------------------------------

    def flush_seen(self, licensing: Licensing, batches: int = SEEN_BATCHES) -> int:
        """Send the pending seen marks, SEEN_BATCH a `mark_seen`, at most `batches` of them;
        a failure keeps that batch for the next round (bounded: `SeenMarks`) and ends this
        one. → how many were sent."""
        sent = 0
        for _ in range(batches):
            taken = self.seen.take(SEEN_BATCH)
            if not taken:
                break
            try:
                licensing.mark_seen([list(key) for key, _ in taken])
            except Exception as exc:  # retried next round
                self.seen.failed(taken)
                log.warning("validation cache: %d seen marks not sent (%s)", len(taken), exc)
                break
            sent += len(taken)
        return sent

    def _flush_seen_on_stop(self) -> None:
        """Send the marks still queued (the timer has stopped), over a client of our own:
        at most STOP_SECONDS, then they are dropped (the next validation re-marks them)."""
        if not self.seen.pending:
            return
        with eventlet.Timeout(STOP_SECONDS, False):
            try:
                with standalone_client(timeout=STOP_SECONDS) as rpc:
                    while taken := self.seen.take(SEEN_BATCH):
                        rpc.call("licensing", "mark_seen", [list(key) for key, _ in taken])
            except Exception as exc:  # stopping anyway
                log.warning("validation cache: seen marks not sent at stop (%s)", exc)
