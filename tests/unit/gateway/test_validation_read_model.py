"""`ValidationReadModel`'s decisions (gateway/read_model.py), with a fake licensing and real
keys: what it answers itself, what it sends to licensing's `validate` (bypass), when it
fetches the keys, and what it stores; the consumer's ordering on kombu's memory transport."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import eventlet
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kombu import Connection, Producer
from nameko.standalone.events import get_event_exchange

from common import metrics
from common.jws import VALIDATION_TYP, Keyring, b64url, raw_private
from common.validation import Facts, facts_to_wire
from gateway import read_model as module
from gateway.read_model import SEEN_BATCH, ValidationReadModel
from gateway.validation import BYPASS, HIT, MISS

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
VALID = Facts(expires_at=NOW + timedelta(days=30), features=("steel",), last_seen_at=NOW)
KEY = ("L-1", "i-1")
ANSWERED_BY_LICENSING = {"code": "FROM_LICENSING"}


class FakeLicensing:
    """Licensing's gateway RPCs: counts the calls; `during_facts` runs inside the fetch."""

    def __init__(self, keyring: Keyring, facts: Facts | None = VALID) -> None:
        self.keyring = keyring
        self.facts = facts
        self.calls: list[str] = []
        self.during_facts = lambda: None
        self.keys_fail = False
        self.seen_fail = False
        self.seen: list[list[list[str]]] = []

    def validate(self, certificate: Any, nonce: str | None = None) -> dict[str, Any]:
        self.calls.append("validate")
        return ANSWERED_BY_LICENSING

    def validation_facts(self, license_id: str, installation_id: str) -> dict[str, Any] | None:
        self.calls.append("validation_facts")
        self.during_facts()
        return facts_to_wire(self.facts)

    def validation_keys(self) -> dict[str, Any]:
        self.calls.append("validation_keys")
        if self.keys_fail:
            raise RuntimeError("licensing is down")
        return {
            "signing_key": b64url(raw_private(self.keyring.signing_key)),
            "kid": self.keyring.signing_kid,
            "jwks": self.keyring.jwks(),
        }

    def mark_seen(self, seen: list[list[str]]) -> dict[str, int]:
        self.calls.append("mark_seen")
        if self.seen_fail:
            raise RuntimeError("licensing is down")
        self.seen.append(seen)
        return {"marked": len(seen)}


def new_keyring() -> Keyring:
    return Keyring.build(Ed25519PrivateKey.generate())


def certificate(keyring: Keyring, **claims: Any) -> str:
    body = {"license_id": KEY[0], "installation_id": KEY[1], "iat": int(NOW.timestamp())}
    return keyring.sign({**body, **claims})


def connected_model() -> ValidationReadModel:
    model = ValidationReadModel()
    model.setup()
    model.cache.connected = True
    model.cache.heard()
    return model


def counted(result: str) -> float:
    return metrics.VALIDATION_CACHE.labels(result)._value.get()


@pytest.fixture
def keyring() -> Keyring:
    return new_keyring()


def test_the_first_validation_fetches_the_keys_then_a_miss_stores_and_a_hit_answers(
    keyring: Keyring,
) -> None:
    model, licensing = connected_model(), FakeLicensing(keyring)
    misses, hits = counted(MISS), counted(HIT)
    first = model.validate(licensing, certificate(keyring), "n" * 16, NOW)
    assert first["code"] == "VALID" and first["features"] == ["steel"]
    assert licensing.calls == ["validation_keys", "validation_facts"]
    second = model.validate(licensing, certificate(keyring), None, NOW)
    assert second["code"] == "VALID"
    assert licensing.calls == ["validation_keys", "validation_facts"]  # no RPC at all
    assert (counted(MISS) - misses, counted(HIT) - hits) == (1, 1)
    claims = keyring.verify(second["signed_answer"], typ=VALIDATION_TYP)
    assert claims["code"] == "VALID"


def test_without_keys_or_while_disconnected_licensing_answers(keyring: Keyring) -> None:
    model, licensing = connected_model(), FakeLicensing(keyring)
    licensing.keys_fail = True
    bypasses = counted(BYPASS)
    assert model.validate(licensing, certificate(keyring), None, NOW) == ANSWERED_BY_LICENSING
    assert licensing.calls == ["validation_keys", "validate"]
    # the next request does not retry the fetch at once (KEYS_RETRY_SECONDS)
    assert model.validate(licensing, certificate(keyring), None, NOW) == ANSWERED_BY_LICENSING
    assert licensing.calls == ["validation_keys", "validate", "validate"]
    model.cache.connected = False
    licensing.keys_fail = False
    model.keyring = keyring
    assert model.validate(licensing, certificate(keyring), None, NOW) == ANSWERED_BY_LICENSING
    assert counted(BYPASS) - bypasses == 3


def test_a_lease_certificate_goes_to_licensing(keyring: Keyring) -> None:
    model, licensing = connected_model(), FakeLicensing(keyring)
    model.keyring = keyring
    lease = certificate(keyring, lease_id="LS-7KQX-M2PD")
    assert model.validate(licensing, lease, None, NOW) == ANSWERED_BY_LICENSING
    assert licensing.calls == ["validate"]


def test_a_tampered_certificate_with_a_known_kid_is_bad_signature_here(keyring: Keyring) -> None:
    model, licensing = connected_model(), FakeLicensing(keyring)
    model.keyring = keyring
    header, body, signature = certificate(keyring).split(".")
    forged = b64url(b'{"license_id":"L-2","installation_id":"i-1"}')
    tampered = f"{header}.{forged}.{signature}"
    result = model.validate(licensing, tampered, None, NOW)
    assert result["code"] == "BAD_SIGNATURE"
    assert keyring.verify(result["signed_answer"], typ=VALIDATION_TYP)["code"] == "BAD_SIGNATURE"
    assert model.validate(licensing, "not a jws", None, NOW)["code"] == "BAD_SIGNATURE"
    assert licensing.calls == []
    assert not model.keys_wanted


def test_an_unknown_kid_goes_to_licensing_and_the_timer_fetches_the_keys(
    keyring: Keyring,
) -> None:
    """A rotation: licensing signs with a key the gateway does not hold yet. The request is
    not answered BAD_SIGNATURE, and does not wait for the keys: licensing answers it."""
    model = connected_model()
    model.keyring = keyring
    model.keys_at = time.monotonic()
    rotated = Keyring.build(Ed25519PrivateKey.generate(), [keyring.signing_key.public_key()])
    licensing = FakeLicensing(rotated)
    new = certificate(rotated)
    for _ in range(3):  # repeated: still licensing's answer, never a local BAD_SIGNATURE
        assert model.validate(licensing, new, None, NOW) == ANSWERED_BY_LICENSING
    assert licensing.calls == ["validate"] * 3
    assert model.keys_wanted
    model.refresh_keys(licensing)  # the timer's turn
    assert model.keyring.signing_kid == rotated.signing_kid and not model.keys_wanted
    assert model.validate(licensing, new, None, NOW)["code"] == "VALID"
    # a fetch tried within KEYS_RETRY_SECONDS is not repeated (random kids cost no fetch)
    model.keys_wanted = True
    model.refresh_keys(licensing)
    assert licensing.calls.count("validation_keys") == 1


def test_the_timer_fetches_keys_only_when_due(keyring: Keyring, monkeypatch) -> None:
    model, licensing = connected_model(), FakeLicensing(keyring)
    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    model.refresh_keys(licensing)
    model.refresh_keys(licensing)  # fresh keys: nothing to do
    assert licensing.calls == ["validation_keys"]
    clock[0] += module.KEYS_REFRESH_SECONDS + 1
    model.refresh_keys(licensing)
    assert licensing.calls == ["validation_keys"] * 2
    # a hit never waits for a stale key set: it answers with the one it has
    model.keys_at = float("-inf")
    assert model.validate(licensing, certificate(keyring), None, NOW)["code"] == "VALID"
    assert "validation_keys" not in licensing.calls[2:]


def test_an_event_that_overtakes_the_fetch_keeps_its_facts_out(keyring: Keyring) -> None:
    model, licensing = connected_model(), FakeLicensing(keyring)
    model.keyring = keyring
    licensing.during_facts = lambda: model.cache.invalidate(KEY[0])  # the change's event
    assert model.validate(licensing, certificate(keyring), None, NOW)["code"] == "VALID"
    assert model.cache.lookup(KEY)[0] == MISS


def test_installation_events_drop_one_key_license_events_all(keyring: Keyring) -> None:
    model, licensing = connected_model(), FakeLicensing(keyring)
    model.keyring = keyring
    other = ("L-1", "i-2")
    for key in (KEY, other):
        model.validate(licensing, certificate(keyring, installation_id=key[1]), None, NOW)
    assert model.cache.lookup(KEY)[0] == model.cache.lookup(other)[0] == HIT

    class Message:
        def __init__(self, routing_key: str) -> None:
            self.delivery_info = {"routing_key": routing_key}

    event = {"license": {"license_id": "L-1"}, "installation": {"installation_id": "i-1"}}
    model._on_event(event, Message("installation_deactivated"))
    assert model.cache.lookup(KEY)[0] == MISS and model.cache.lookup(other)[0] == HIT
    model._on_event({"license_id": "L-1"}, Message("license_suspended"))
    assert model.cache.lookup(other)[0] == MISS
    model._on_event({"receipt_number": "R-1"}, Message("payment_received"))  # no license


def test_due_hits_queue_seen_marks_sent_in_batches_and_retried(keyring: Keyring) -> None:
    model = connected_model()
    model.keyring = keyring
    stale = Facts(expires_at=VALID.expires_at, last_seen_at=NOW - timedelta(hours=2))
    licensing = FakeLicensing(keyring, stale)
    model.validate(licensing, certificate(keyring), None, NOW)  # miss: licensing marks it
    assert not model.seen.pending
    model.validate(licensing, certificate(keyring), None, NOW)  # hit, due: queued once
    model.validate(licensing, certificate(keyring), None, NOW)  # now stamped: not again
    assert list(model.seen.pending) == [KEY]
    licensing.seen_fail = True
    assert model.flush_seen(licensing) == 0
    assert list(model.seen.pending) == [KEY]  # kept for the next round
    licensing.seen_fail = False
    for number in range(SEEN_BATCH + 5):
        model.seen.add(("L-x", f"i-{number}"))
    assert model.flush_seen(licensing, batches=1) == SEEN_BATCH
    assert licensing.seen[0][0] == list(KEY)
    assert model.flush_seen(licensing, batches=1) == 6
    assert model.flush_seen(licensing) == 0
    for number in range(3 * SEEN_BATCH):
        model.seen.add(("L-y", f"i-{number}"))
    assert model.flush_seen(licensing) == 3 * SEEN_BATCH  # several batches a tick
    assert [len(batch) for batch in licensing.seen[-3:]] == [SEEN_BATCH] * 3


def test_ids_licensing_would_refuse_go_to_validate(keyring: Keyring) -> None:
    model, licensing = connected_model(), FakeLicensing(keyring)
    model.keyring = keyring
    for claims in ({"license_id": ""}, {"installation_id": "i" * 201}):
        assert model.validate(licensing, certificate(keyring, **claims), None, NOW) == (
            ANSWERED_BY_LICENSING
        )
    assert licensing.calls == ["validate", "validate"]


def test_stop_ends_the_consumer_from_its_own_thread(monkeypatch) -> None:
    """On kombu's memory transport: the loop binds, flushes, then answers; an event drops
    the license's entries; `stop()` ends the loop (which closes its own connection) and
    the cache is bypassed again."""
    monkeypatch.setattr(module.settings, "amqp_uri", lambda: "memory://")
    monkeypatch.setattr(module, "HEARTBEAT_SECONDS", 0)
    model = ValidationReadModel()
    model.setup()

    class Container:
        def spawn_managed_thread(self, run: Any) -> Any:
            return eventlet.spawn(run)

    model.container = Container()
    model.cache.store(KEY, VALID, model.cache.ticket())  # refused: not connected yet
    model.start()
    deadline = time.monotonic() + 5
    while not model.cache.usable and time.monotonic() < deadline:
        eventlet.sleep(0.05)
    assert model.cache.usable and len(model.cache) == 0
    assert model.cache.store(KEY, VALID, model.cache.ticket())
    with Connection("memory://") as connection:
        Producer(connection.channel()).publish(
            {"license_id": KEY[0]},
            exchange=get_event_exchange("licensing"),
            routing_key="license_suspended",
            serializer="json",
        )
    deadline = time.monotonic() + 5
    while len(model.cache) and time.monotonic() < deadline:
        eventlet.sleep(0.05)
    assert len(model.cache) == 0
    model.stop()
    assert model.stopped.ready() and not model.cache.usable


def test_stop_sends_the_queued_seen_marks_once(monkeypatch) -> None:
    sent: list[tuple[str, str, list]] = []

    class Client:
        def call(self, service: str, method: str, seen: list) -> None:
            sent.append((service, method, seen))

    @contextmanager
    def client(timeout: float) -> Any:
        assert timeout == module.STOP_SECONDS
        yield Client()

    monkeypatch.setattr(module, "standalone_client", client)
    model = ValidationReadModel()
    model.setup()
    model.stop()  # nothing queued: no client at all
    assert sent == []
    for number in range(SEEN_BATCH + 1):
        model.seen.add(("L-1", f"i-{number}"))
    model.stop()
    assert [(service, method, len(seen)) for service, method, seen in sent] == [
        ("licensing", "mark_seen", SEEN_BATCH),
        ("licensing", "mark_seen", 1),
    ]
    assert not model.seen.pending
