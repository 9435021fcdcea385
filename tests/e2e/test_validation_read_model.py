"""The gateway's validation read model end to end (gateway/read_model.py): for every code its
answer is licensing's `validate` answer field for field, signed by the same key with the
nonce; `VALIDATION_CACHE_SIZE=0` sends every validation to licensing; a broker that drops
every connection leaves no stale answer behind (the cache is flushed on reconnect); a gateway
ends cleanly on SIGTERM; `last_seen_at` is still written."""

from __future__ import annotations

import base64
import json
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlparse

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

from common.bus import vhost_of
from common.jws import Keyring
from common.rpc import standalone_client
from tests.support import infra
from tests.support.blips import close_all_connections
from tests.support.suite import free_port

pytestmark = pytest.mark.e2e

PASSWORD = "Quarry-Lighthouse-31"
NONCE = "n0nce-read-model"
ANSWER_TYP = "license-validation+jwt"


def scrape(address: str) -> dict[str, float]:
    text_ = requests.get(f"http://{address}/metrics", timeout=5).text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text_.splitlines()
        if line and not line.startswith("#")
    }


def cache_count(address: str, result: str) -> float:
    return scrape(address).get(f'portal_validation_cache_total{{result="{result}"}}', 0.0)


@pytest.fixture(scope="module")
def gateway(suite):
    """A gateway of this module's own, with its metrics: (api, metrics address)."""
    address = f"127.0.0.1:{free_port()}"
    api = suite.start_gateway(env={"METRICS_ADDRESS": address})
    wait_for_read_model(api, address)
    yield api, address
    # the event consumer ends from its own greenthread: the gateway drains and exits 0
    assert suite.terminate("gateway", len(suite.processes["gateway"]) - 1) == 0


def wait_for_read_model(api, address: str) -> None:
    """Until the gateway's event consumer is up: it sends everything to licensing till then."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        bypassed = cache_count(address, "bypass")
        api.post("/api/v1/validations", json={"certificate": "a.b.c"})
        if cache_count(address, "bypass") == bypassed:
            return
        time.sleep(0.2)
    raise AssertionError("the gateway's validation read model never connected")


@pytest.fixture(scope="module")
def customer(suite) -> tuple[str, str]:
    code = f"rm{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "Read Model CAD")
    suite.portalctl(
        "product", "feature", "add", "--product", code, "--code", "steel", "--name", "S"
    )
    email = f"rm.{uuid.uuid4().hex[:10]}@example.test"
    company = suite.portalctl(
        "company", "create", "--name", "RM", "--contact-name", "Ada", "--email", email,
        "--password", PASSWORD,
    )  # fmt: skip
    return code, company["customer_id"]


def activated(suite, api, customer) -> tuple[dict, str, str]:
    product, customer_id = customer
    license = suite.portalctl(
        "license", "issue", "--customer", customer_id, "--product", product, "--seats", "2",
        "--features", "steel",
    )  # fmt: skip
    installation = f"rm-{uuid.uuid4().hex[:10]}"
    answer = api.post(
        "/api/v1/activations",
        json={
            "license_id": license["license_id"],
            "password": license["activation_password"],
            "installation_id": installation,
            "machine_name": "RM-01",
        },
    )
    assert answer.status_code in (200, 201), answer.text
    return license, installation, answer.json()["certificate"]


def licensing_answer(suite, certificate: str, nonce: str | None = NONCE) -> dict:
    with standalone_client(10, suite.env_of("staff")["AMQP_URI"]) as rpc:
        return rpc.call("licensing", "validate", certificate, nonce)


def signed_claims(api, answer: dict) -> tuple[dict, dict]:
    """The header and the claims of `signed_answer`, verified with the JWKS."""
    token = answer["signed_answer"]
    header = jwt.get_unverified_header(token)
    jwks = api.get("/api/v1/signing-keys").json()
    [jwk] = [key for key in jwks["keys"] if key["kid"] == header["kid"]]
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, key, algorithms=["EdDSA"], options={"verify_exp": True})
    return header, claims


def assert_same_answer(api, ours: dict, theirs: dict) -> None:
    fields = set(theirs) - {"signed_answer"}
    assert {name: ours.get(name) for name in fields} == {name: theirs[name] for name in fields}
    header, claims = signed_claims(api, ours)
    their_header, their_claims = signed_claims(api, theirs)
    assert header == their_header and header["typ"] == ANSWER_TYP
    assert claims["nonce"] == NONCE
    assert abs(claims["iat"] - their_claims["iat"]) <= 5
    assert {k: v for k, v in claims.items() if k not in ("iat", "exp")} == {
        k: v for k, v in their_claims.items() if k not in ("iat", "exp")
    }


def validate(api, certificate: str, nonce: str | None = NONCE) -> dict:
    body = {"certificate": certificate, **({"nonce": nonce} if nonce else {})}
    answer = api.post("/api/v1/validations", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_each_code_is_answered_as_licensing_answers_it(suite, gateway, customer):
    api, address = gateway
    hits, misses = cache_count(address, "hit"), cache_count(address, "miss")
    license, installation, certificate = activated(suite, api, customer)
    license_id = license["license_id"]
    codes = []

    def check(expected: str, cached: bool = True) -> None:
        """A miss, then (`cached`) until one is answered from the cache: the activation's
        event comes after its answer and may drop what the first miss stored."""
        deadline = time.monotonic() + 15
        for turn in range(1000):
            before = cache_count(address, "hit")
            ours = validate(api, certificate)
            assert ours["code"] == expected, ours
            assert_same_answer(api, ours, licensing_answer(suite, certificate))
            if turn and (not cached or cache_count(address, "hit") > before):
                break
            assert time.monotonic() < deadline, f"{expected} was never answered from the cache"
        codes.append(expected)

    check("VALID")
    suite.portalctl("license", "suspend", license_id, "--reason", "Invoice unpaid")
    check("SUSPENDED")
    suite.portalctl("license", "resume", license_id)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    suite.portalctl("license", "extend", license_id, "--until", yesterday, "--force")
    check("EXPIRED")
    suite.portalctl("license", "deactivate", license_id, installation)
    # a certificate issued within REACTIVATION_MARGIN of its deactivation may come from a
    # re-activation: its DEACTIVATED is never answered from the cache
    check("DEACTIVATED", cached=False)
    assert codes == ["VALID", "SUSPENDED", "EXPIRED", "DEACTIVATED"]
    assert cache_count(address, "hit") >= hits + 3
    assert cache_count(address, "miss") >= misses + 4


def test_bad_signatures_and_unknown_keys_are_answered_as_licensing_answers_them(
    suite, gateway, customer
):
    api, address = gateway
    _, _, certificate = activated(suite, api, customer)
    header, payload, signature = certificate.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    stranger = Keyring.build(Ed25519PrivateKey.generate())
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    unknown_kid = stranger.sign(claims)
    for token in (tampered, unknown_kid, "not.a.jws"):
        bypassed = cache_count(address, "bypass")
        ours = validate(api, token)
        assert ours["code"] == "BAD_SIGNATURE"
        assert_same_answer(api, ours, licensing_answer(suite, token))
        # an unknown kid may be a key licensing has and we do not yet: licensing answers it
        assert cache_count(address, "bypass") - bypassed == (token == unknown_kid)
    # a bad nonce is still refused before anything is validated
    refused = api.post("/api/v1/validations", json={"certificate": certificate, "nonce": "é" * 3})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "validation_error"


def test_no_cache_sends_every_validation_to_licensing(suite, customer):
    address = f"127.0.0.1:{free_port()}"
    api = suite.start_gateway(env={"METRICS_ADDRESS": address, "VALIDATION_CACHE_SIZE": "0"})
    try:
        _, _, certificate = activated(suite, api, customer)
        for _ in range(3):
            ours = validate(api, certificate)
            assert_same_answer(api, ours, licensing_answer(suite, certificate))
        assert cache_count(address, "bypass") >= 3
        assert cache_count(address, "hit") == cache_count(address, "miss") == 0
        counted = scrape(address).get('portal_validations_total{code="VALID"}', 0)
        assert counted >= 3
    finally:
        assert suite.terminate("gateway", len(suite.processes["gateway"]) - 1) == 0


@contextmanager
def read_model_refused(suite):
    """While inside: the gateway's bus user may not declare its `gateway-validation-*`
    queue (its RPCs still work), so its event consumer cannot reconnect."""
    api = urlparse(infra.RABBIT_API)
    auth = (api.username or "guest", api.password or "guest")
    user = urlparse(suite.uris["gateway"]).username
    vhost = vhost_of(suite.env["AMQP_URI"])
    where = f"{quote(vhost, safe='')}/{quote(user, safe='')}"
    url = f"{api.scheme}://{api.hostname}:{api.port}/api/permissions/{where}"
    granted = requests.get(url, auth=auth, timeout=10)
    granted.raise_for_status()
    permissions = {name: granted.json()[name] for name in ("configure", "write", "read")}
    refused = {
        **permissions,
        "configure": f"^(?!gateway-validation-)(?:{permissions['configure']})",
    }
    requests.put(url, json=refused, auth=auth, timeout=10).raise_for_status()
    try:
        yield
    finally:
        requests.put(url, json=permissions, auth=auth, timeout=10).raise_for_status()


def test_no_stale_answer_after_the_broker_drops_every_connection(suite, gateway, customer):
    """The change is made while the consumer cannot rebind: its event is lost to this
    gateway for good, and only the flush on reconnect keeps the cached VALID from coming
    back."""
    api, address = gateway
    license, _, certificate = activated(suite, api, customer)
    license_id = license["license_id"]
    deadline = time.monotonic() + 15
    while True:  # cached (the activation's late event may drop the first store)
        hits = cache_count(address, "hit")
        assert validate(api, certificate)["code"] == "VALID"
        if cache_count(address, "hit") > hits:
            break
        assert time.monotonic() < deadline, "VALID was never answered from the cache"
    with read_model_refused(suite):
        close_all_connections(vhost_of(suite.env["AMQP_URI"]), "read model test")
        suspended = change_once_the_bus_is_back(
            suite, "license", "suspend", license_id, "--reason", "Dropped"
        )
        assert suspended["status"] == "suspended"
        bypassed = cache_count(address, "bypass")
        for _ in range(5):
            assert validate(api, certificate)["code"] == "SUSPENDED"
        assert cache_count(address, "bypass") >= bypassed + 5  # licensing answered
    wait_for_read_model(api, address)
    hits = cache_count(address, "hit")
    for _ in range(20):
        assert validate(api, certificate)["code"] == "SUSPENDED"
    assert cache_count(address, "hit") > hits  # from the cache again, and fresh
    suite.portalctl("license", "resume", license_id)
    for _ in range(5):
        assert validate(api, certificate)["code"] == "VALID"


def change_once_the_bus_is_back(suite, *args: str) -> dict:
    """`portalctl *args`, retried while the services reconnect."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return suite.portalctl(*args)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_validations_from_the_cache_still_mark_the_machine_seen(suite, customer):
    address = f"127.0.0.1:{free_port()}"
    # this gateway's clock runs two hours ahead: what it cached is due to be marked seen
    env = {"METRICS_ADDRESS": address, "LICENSING_CLOCK_OFFSET_SECONDS": "7200"}
    api = suite.start_gateway(env=env)
    engine = create_engine(suite.env["LICENSING_DATABASE_URL"])
    try:
        wait_for_read_model(api, address)
        _, installation, certificate = activated(suite, api, customer)
        # until a validation is answered from the cache with last_seen_at 3 hours old in
        # the database: a miss (the first, or one after the activation's late event dropped
        # the entry) has licensing mark the machine seen itself, so it does not count
        deadline = time.monotonic() + 15
        while True:
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "UPDATE installations SET last_seen_at = now() - interval '3 hours' "
                        "WHERE installation_id = :installation"
                    ),
                    {"installation": installation},
                )
            hits = cache_count(address, "hit")
            assert validate(api, certificate)["code"] == "VALID"
            if cache_count(address, "hit") > hits:
                break
            assert time.monotonic() < deadline, "never answered from the cache"
        deadline = time.monotonic() + 10
        seen = None
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                seen = connection.execute(
                    text("SELECT last_seen_at FROM installations WHERE installation_id = :i"),
                    {"i": installation},
                ).scalar_one()
            if seen > datetime.now(UTC) - timedelta(minutes=5):
                break
            time.sleep(0.3)
        assert seen > datetime.now(UTC) - timedelta(minutes=5), seen
    finally:
        engine.dispose()
        suite.terminate("gateway", len(suite.processes["gateway"]) - 1)
