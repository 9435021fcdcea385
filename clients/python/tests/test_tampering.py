"""Edits to the kit's own files must not unlock anything: the decisions rest on what the
portal signed (the certificate's `source` and `nonce` claims, the last online validation's
signed answer), never on fields the kit wrote itself."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from license_client import ResponseMismatch, jws, offline
from license_client.transport import Transport

PASSWORD = "Copper-Kettle-17"
LICENSE = "LIC-AAAA-1111"


class NoNetwork(Transport):
    def send(self, *args, **kwargs):
        raise AssertionError("offline activation must not touch the network")


@pytest.fixture
def airgapped(make_client, portal):
    def make(machine: str = "ws-7", **kwargs):
        options = {"transport": NoNetwork(), "jwks": portal.jwks, "base_url": None}
        options.update(kwargs)
        return make_client(machine, **options)

    return make


def _edit(client, name: str, **changes) -> None:
    """Change fields of one of the kit's files, as anyone with access to the folder can."""
    path = client.data_dir / name
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document))


# --- 1. the grace period: from the certificate's `source` claim -----------------------------


def test_a_flipped_source_gives_an_online_activation_no_endless_grace(make_client, portal, clock):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    portal.down = True
    clock.advance(days=8)  # past the grace period
    assert client.validate().code == "GRACE_EXPIRED"
    _edit(client, "activation.json", source="offline")
    result = client.validate()
    assert not result.valid and result.code == "GRACE_EXPIRED", result
    assert client.status(online=True).source == "online"  # the certificate says so


def test_a_flipped_source_does_not_take_an_offline_activation_its_state(airgapped, portal, clock):
    client = airgapped()
    client.install_offline_response(
        portal.respond_offline(LICENSE, client.offline_request(LICENSE))
    )
    _edit(client, "activation.json", source="online")
    clock.advance(days=30)
    result = client.validate()
    assert result.valid and "activated offline" in result.reason
    assert client.status().source == "offline"


def test_offline_certificates_carry_source_and_nonce(airgapped, portal, make_client):
    client = airgapped()
    request = json.loads(client.offline_request(LICENSE))
    response = json.loads(portal.respond_offline(LICENSE, json.dumps(request)))
    claims = jws.parse(response["certificate"])[1]
    assert (claims["source"], claims["nonce"]) == ("offline", request["nonce"])
    online = make_client("pc-9")
    online.activate("LIC-PERP-2222", PASSWORD)
    assert not {"source", "nonce"} & set(jws.parse(online.certificate)[1])


# --- 2. features: only from a signed answer ---------------------------------------------------


def test_forged_features_in_the_state_unlock_nothing(make_client, portal, clock):
    portal.licenses[LICENSE].features = ["steel"]
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    clock.advance(minutes=5)
    assert client.validate().features == ("steel",)
    forged = {
        "codes": ["steel", "thermal", "everything"],
        "at": "2099-01-01T00:00:00Z",
        "license_id": LICENSE,
        "installation_id": client.installation_id,
    }
    _edit(client, "state.json", features=forged)
    assert not client.has_feature("thermal")
    assert client.validate(online=False).features == ("steel",)


def test_a_forged_signed_answer_in_the_state_unlocks_nothing(make_client, portal, clock):
    portal.licenses[LICENSE].features = ["steel"]
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    clock.advance(minutes=5)
    client.validate()
    state = json.loads((client.data_dir / "state.json").read_text())
    claims = dict(jws.parse(state["answer"])[1])
    claims.update(features=["steel", "thermal"], iat=claims["iat"] + 10**6)
    forger = Ed25519PrivateKey.generate()
    _edit(client, "state.json", answer=jws.sign(claims, forger, portal.kid, typ=jws.VALIDATION_TYP))
    assert client.validate(online=False).features == ("steel",)
    # nor a certificate (signed, but not an answer) in its place
    _edit(client, "state.json", answer=client.certificate)
    assert client.validate(online=False).features == ("steel",)


def test_a_genuine_answer_for_another_installation_is_ignored(make_client, portal, clock):
    portal.licenses["LIC-PERP-2222"].features = ["steel", "thermal"]
    other = make_client("pc-2")
    other.activate("LIC-PERP-2222", PASSWORD)
    clock.advance(minutes=5)
    other.validate()
    foreign = json.loads((other.data_dir / "state.json").read_text())["answer"]
    portal.licenses[LICENSE].features = ["steel"]
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    _edit(client, "state.json", answer=foreign)
    assert client.validate(online=False).features == ("steel",)


def test_the_signed_answer_keeps_newer_features_across_restarts(make_client, portal, clock):
    license_ = portal.licenses[LICENSE]
    license_.features = ["steel"]
    make_client().activate(LICENSE, PASSWORD)
    clock.advance(hours=1)
    license_.features = ["steel", "thermal"]
    assert make_client().validate().features == ("steel", "thermal")
    portal.down = True
    assert make_client().validate(online=False).features == ("steel", "thermal")


# --- 3. the certificate answers this request ------------------------------------------------


def test_an_old_certificate_wrapped_with_the_new_nonce_is_refused(airgapped, portal):
    client = airgapped()
    old = json.loads(portal.respond_offline(LICENSE, client.offline_request(LICENSE)))
    pending = json.loads(client.offline_request(LICENSE))  # a newer request
    old["nonce"] = pending["nonce"]  # the outer file now names the pending request
    with pytest.raises(ResponseMismatch) as caught:
        client.install_offline_response(json.dumps(old))
    assert caught.value.details["problem"] == "nonce"
    assert client.certificate is None


def test_a_certificate_without_a_nonce_is_refused(airgapped, portal):
    client = airgapped()
    response = json.loads(portal.respond_offline(LICENSE, client.offline_request(LICENSE)))
    claims = jws.parse(response["certificate"])[1]
    del claims["nonce"]
    response["certificate"] = jws.sign(claims, portal.key, portal.kid)
    with pytest.raises(ResponseMismatch) as caught:
        client.install_offline_response(json.dumps(response))
    assert "not the answer to this request" in caught.value.message
    assert client.certificate is None


# --- 4. times in the kit's files carry a zone ----------------------------------------------


def test_times_without_a_zone_are_refused():
    assert offline.parse_time("2030-01-15T09:00:00") is None
    assert offline.parse_time("2030-01-15T09:00:00Z") == offline.parse_time(
        "2030-01-15T10:00:00+01:00"
    )
    assert offline.parse_time(17) is None and offline.parse_time("") is None


def test_a_last_online_check_without_a_zone_does_not_count(make_client, portal, clock):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    portal.down = True
    clock.advance(days=8)
    # "the last online check was a day ago", written without a zone
    naive = (clock.now - timedelta(days=1)).replace(tzinfo=None).isoformat()
    _edit(client, "state.json", last_online_ok=naive)
    assert client.validate().code == "GRACE_EXPIRED"
