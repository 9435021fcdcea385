"""Offline activation with the client kit: request file, response file, deactivation proof, and
the tampered, truncated and foreign responses it must refuse. No network in any of it."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from license_client import (
    InvalidResponseFile,
    LicenseError,
    NotActivated,
    NotOfflineActivation,
    OfflineFileError,
    ResponseMismatch,
    StorageError,
    UntrustedResponse,
    jws,
    offline,
)
from license_client.transport import Transport

START = datetime(2030, 1, 15, 9, 0, tzinfo=timezone.utc)
PASSWORD = "Copper-Kettle-17"
LICENSE = "LIC-AAAA-1111"
PERPETUAL = "LIC-PERP-2222"


class NoNetwork(Transport):
    def send(self, *args, **kwargs):
        raise AssertionError("offline activation must not touch the network")


@pytest.fixture
def airgapped(make_client, portal):
    """A client of an air-gapped machine: no transport that works, no server URL, and the
    product's shipped JWKS pinned."""

    def make(machine: str = "ws-7", **kwargs):
        options = {"transport": NoNetwork(), "jwks": portal.jwks, "base_url": None}
        options.update(kwargs)
        return make_client(machine, **options)

    return make


def test_request_file_names_this_installation_and_product(airgapped, clock):
    client = airgapped()
    text = client.offline_request(LICENSE, machine_name="CAD-WS-07")
    request = json.loads(text)
    assert set(request) == {
        "type",
        "version",
        "license_id",
        "installation_id",
        "machine_name",
        "product",
        "requested_at",
        "nonce",
    }
    assert request["type"] == "activation_request" and request["version"] == 1
    assert (request["license_id"], request["installation_id"], request["product"]) == (
        LICENSE,
        "inst-ws-7",
        "cadpro",
    )
    assert request["machine_name"] == "CAD-WS-07"
    assert request["requested_at"] == "2030-01-15T09:00:00+00:00"
    assert len(request["nonce"]) >= 22
    pending = json.loads((client.data_dir / "offline-request.json").read_text())
    assert pending["nonce"] == request["nonce"] and pending["license_id"] == LICENSE
    assert (client.data_dir / "offline-request.json").stat().st_mode & 0o777 == 0o600
    # a fresh nonce every time
    assert json.loads(client.offline_request(LICENSE))["nonce"] != request["nonce"]


def test_request_needs_a_product(airgapped):
    with pytest.raises(LicenseError) as caught:
        airgapped(product=None, namespace="cadpro").offline_request(LICENSE)
    assert caught.value.code == "product_required"


def test_the_whole_offline_journey(airgapped, portal):
    portal.licenses[LICENSE].features = ["steel", "dynamics"]
    client = airgapped()
    request = client.offline_request(LICENSE, machine_name="CAD-WS-07")
    response = portal.respond_offline(LICENSE, request)
    assert portal.licenses[LICENSE].installations == {"inst-ws-7": "CAD-WS-07"}

    result = client.install_offline_response(response)
    assert result.valid and result.code == "VALID" and not result.online
    assert result.features == ("dynamics", "steel")
    assert client.has_feature("steel") and not client.has_feature("thermal")
    assert not (client.data_dir / "offline-request.json").exists()
    stored = json.loads((client.data_dir / "activation.json").read_text())
    assert stored["source"] == "offline"
    assert stored["deactivation_secret"] == json.loads(response)["deactivation_secret"]
    assert client.validate(online=False).valid

    status = client.status()
    assert status.source == "offline" and status.features == ("dynamics", "steel")
    assert status.to_dict()["features"] == ["dynamics", "steel"]

    proof = client.deactivate_offline()
    document = json.loads(proof)
    assert document["type"] == "deactivation_proof" and document["license_id"] == LICENSE
    assert document["secret"] == stored["deactivation_secret"]
    assert client.certificate is None
    assert client.validate(online=False).code == "NOT_ACTIVATED"
    assert not client.has_feature("steel")

    view = portal.deactivate_offline(LICENSE, proof)
    assert view["deactivated_by"] == "offline"
    assert portal.licenses[LICENSE].installations == {}
    with pytest.raises(LicenseError) as reused:
        portal.deactivate_offline(LICENSE, proof)
    assert reused.value.code == "invalid_proof"


def test_the_portal_may_answer_the_license_id_in_canonical_case(airgapped, portal):
    client = airgapped()
    request = json.loads(client.offline_request(LICENSE.lower()))
    assert request["license_id"] == LICENSE.lower()  # as typed
    response = json.loads(portal.respond_offline(LICENSE, json.dumps(request)))
    assert response["license_id"] == LICENSE
    assert client.install_offline_response(json.dumps(response)).license_id == LICENSE


def test_an_offline_activation_stays_valid_without_a_server(airgapped, portal, clock):
    client = airgapped()
    client.install_offline_response(
        portal.respond_offline(LICENSE, client.offline_request(LICENSE))
    )
    clock.advance(days=300)  # far beyond any grace period: air-gapped is the normal state
    result = client.validate()  # online by default: no server known, so the certificate
    assert result.valid and result.code == "VALID" and not result.online
    assert "activated offline" in result.reason
    clock.advance(days=70)  # but the certificate's expiry still holds
    assert client.validate().code == "EXPIRED"


def test_an_offline_activation_is_checked_online_when_a_server_is_reachable(
    make_client, airgapped, portal, clock
):
    client = airgapped()
    client.install_offline_response(
        portal.respond_offline(LICENSE, client.offline_request(LICENSE))
    )
    connected = make_client("ws-7", jwks=portal.jwks)  # later on the network
    portal.licenses[LICENSE].status = "suspended"
    result = connected.validate()
    assert result.online and result.code == "SUSPENDED"
    assert client.validate(online=False).code == "SUSPENDED"  # the verdict sticks offline


def test_installing_the_same_response_twice_is_harmless(airgapped, portal):
    client = airgapped()
    response = portal.respond_offline(LICENSE, client.offline_request(LICENSE))
    assert client.install_offline_response(response).valid
    assert client.install_offline_response(response.encode()).valid


def test_a_response_to_an_older_request_is_refused(airgapped, portal):
    client = airgapped()
    old = portal.respond_offline(LICENSE, client.offline_request(LICENSE))
    client.offline_request(LICENSE)  # a newer request replaces the pending one
    with pytest.raises(ResponseMismatch) as caught:
        client.install_offline_response(old)
    assert "answers another request; make a new request on this machine" in caught.value.message
    assert client.certificate is None


def test_a_response_without_a_pending_request_is_refused(airgapped, portal):
    other = airgapped("ws-8", installation_id="inst-ws-7")  # same installation, other folder
    response = portal.respond_offline(LICENSE, other.offline_request(LICENSE))
    with pytest.raises(ResponseMismatch) as caught:
        airgapped().install_offline_response(response)
    assert "No activation request is pending" in caught.value.message


def test_a_response_for_another_machine_is_refused(airgapped, portal):
    mine = airgapped()
    mine.offline_request(LICENSE)
    pending = json.loads((mine.data_dir / "offline-request.json").read_text())
    theirs = airgapped("ws-9")
    response = json.loads(portal.respond_offline(LICENSE, theirs.offline_request(LICENSE)))
    response["nonce"] = pending["nonce"]  # even with this machine's nonce copied in
    with pytest.raises(ResponseMismatch) as caught:
        mine.install_offline_response(json.dumps(response))
    assert caught.value.details["field"] == "installation_id"
    assert mine.certificate is None


def _tampered(client, portal, **changes):
    """This machine's genuine response with `changes` applied to its fields."""
    response = json.loads(portal.respond_offline(LICENSE, client.offline_request(LICENSE)))
    response.update(changes)
    return response


def test_edited_names_in_the_response_are_refused(airgapped, portal):
    client = airgapped()
    with pytest.raises(ResponseMismatch):
        client.install_offline_response(json.dumps(_tampered(client, portal, license_id="L-X")))
    with pytest.raises(ResponseMismatch):
        client.install_offline_response(json.dumps(_tampered(client, portal, product="other")))
    with pytest.raises(ResponseMismatch):
        client.install_offline_response(json.dumps(_tampered(client, portal, nonce="n" * 32)))


def test_a_certificate_signed_by_another_key_is_refused(airgapped, portal):
    client = airgapped()
    forger = Ed25519PrivateKey.generate()
    response = _tampered(client, portal)
    claims = jws.parse(response["certificate"])[1]
    claims["features"] = ["steel", "everything"]
    response["certificate"] = jws.sign(claims, forger, portal.kid)  # the real kid, a fake key
    with pytest.raises(UntrustedResponse) as caught:
        client.install_offline_response(json.dumps(response))
    assert caught.value.details["reason"] == "BAD_SIGNATURE"
    assert caught.value.code == "invalid_certificate"
    assert client.certificate is None


def test_a_key_planted_in_the_file_is_never_used(airgapped, portal):
    client = airgapped()
    forger = Ed25519PrivateKey.generate()
    response = _tampered(client, portal)
    claims = jws.parse(response["certificate"])[1]
    response["certificate"] = jws.sign(claims, forger, "planted")
    response["jwks"] = {"keys": [jws.public_jwk(forger.public_key(), "planted")]}
    with pytest.raises(InvalidResponseFile) as caught:
        client.install_offline_response(json.dumps(response))
    assert caught.value.details["field"] == "jwks"
    del response["jwks"]  # and without the planted key, the certificate names an unknown key
    with pytest.raises(UntrustedResponse) as caught:
        client.install_offline_response(json.dumps(response))
    assert caught.value.details["reason"] == "UNKNOWN_KEY"


def test_a_key_in_the_certificate_header_is_never_used(airgapped, portal):
    client = airgapped()
    forger = Ed25519PrivateKey.generate()
    response = _tampered(client, portal)
    header, claims, _, _ = jws.parse(response["certificate"])
    header = {**header, "kid": "planted", "jwk": jws.public_jwk(forger.public_key(), "planted")}
    signing_input = ".".join(jws._b64encode(jws._compact_json(part)) for part in (header, claims))
    signature = jws._b64encode(forger.sign(signing_input.encode()))
    response["certificate"] = f"{signing_input}.{signature}"
    with pytest.raises(UntrustedResponse):
        client.install_offline_response(json.dumps(response))


def test_a_genuine_certificate_for_another_machine_is_refused(airgapped, portal):
    client = airgapped()
    response = _tampered(client, portal)
    license_ = portal.licenses[LICENSE]
    response["certificate"] = portal.certificate(license_, "inst-elsewhere", "other PC")
    with pytest.raises(ResponseMismatch) as caught:
        client.install_offline_response(json.dumps(response))
    assert "another installation" in caught.value.message


def test_without_any_key_nothing_installs(airgapped, portal):
    client = airgapped(jwks=None)
    response = portal.respond_offline(LICENSE, client.offline_request(LICENSE))
    with pytest.raises(LicenseError) as caught:
        client.install_offline_response(response)
    assert caught.value.code == "no_signing_keys"
    assert client.certificate is None


def test_keys_cached_at_an_earlier_online_contact_are_enough(make_client, airgapped, portal):
    make_client("ws-7").activate(PERPETUAL, PASSWORD)  # caches the JWKS, then goes offline
    client = airgapped(jwks=None)
    response = portal.respond_offline(LICENSE, client.offline_request(LICENSE))
    assert client.install_offline_response(response).valid


@pytest.mark.parametrize(
    ("mangle", "field"),
    [
        (lambda text: text[: len(text) // 2], None),  # truncated on the stick
        (lambda text: "", None),
        (lambda text: "[1, 2]", None),
        (lambda text: text.replace('"version": 1', '"version": 2'), "version"),
        (lambda text: text.replace('"version": 1', '"version": "1"'), "version"),
        (lambda text: text.replace("activation_response", "activation_request"), "type"),
        (lambda text: text.replace('"issued_at": "', '"issued_at": "yesterday'), "issued_at"),
        (lambda text: _edit(text, nonce=None), "nonce"),
        (lambda text: _edit(text, certificate=""), "certificate"),
        (lambda text: _edit(text, deactivation_secret="short"), "deactivation_secret"),
        (lambda text: _edit(text, license_id=7), "license_id"),
        (lambda text: _edit(text, extra="x"), "extra"),
        (lambda text: text + " " * (17 * 1024), None),
        (lambda text: b"\xff\xfe" + text.encode(), None),
    ],
)
def test_malformed_responses_say_what_is_wrong(airgapped, portal, mangle, field):
    client = airgapped()
    response = portal.respond_offline(LICENSE, client.offline_request(LICENSE))
    with pytest.raises(InvalidResponseFile) as caught:
        client.install_offline_response(mangle(response))
    assert isinstance(caught.value, OfflineFileError)
    assert caught.value.code == "invalid_response"
    assert caught.value.details["problem"]
    assert caught.value.details.get("field") == field
    assert client.certificate is None
    # the pending request survives a bad file: the right one still installs
    assert client.install_offline_response(response).valid


def _edit(text, **changes):
    document = json.loads(text)
    for name, value in changes.items():
        if value is None:
            document.pop(name)
        else:
            document[name] = value
    return json.dumps(document)


def test_an_online_activation_replaces_the_offline_one(make_client, airgapped, portal):
    client = airgapped()
    client.install_offline_response(
        portal.respond_offline(LICENSE, client.offline_request(LICENSE))
    )
    online = make_client("ws-7")
    online.activate(LICENSE, PASSWORD)
    stored = json.loads((client.data_dir / "activation.json").read_text())
    assert "deactivation_secret" not in stored and stored["source"] == "online"
    with pytest.raises(NotOfflineActivation) as caught:
        online.deactivate_offline()
    assert "deactivate" in caught.value.message
    assert online.certificate is not None


def test_deactivation_proof_is_written_before_the_certificate_goes(airgapped, portal, tmp_path):
    client = airgapped()
    client.install_offline_response(
        portal.respond_offline(LICENSE, client.offline_request(LICENSE))
    )
    nowhere = tmp_path / "no-such-stick" / "proof.json"
    with pytest.raises(StorageError) as caught:
        client.deactivate_offline(out=nowhere)
    assert "nothing was deleted" in caught.value.message
    assert client.validate(online=False).valid  # the certificate is still there

    out = tmp_path / "proof.json"
    proof = client.deactivate_offline(out=out)
    assert out.read_text() == proof
    assert client.certificate is None
    # lost the stick? the kept proof is written again
    again = tmp_path / "again.json"
    assert client.deactivate_offline(out=again) == proof and again.read_text() == proof
    portal.deactivate_offline(LICENSE, proof)
    assert portal.licenses[LICENSE].installations == {}


def test_deactivate_offline_needs_an_activation(airgapped):
    with pytest.raises(NotActivated):
        airgapped().deactivate_offline()


def test_offline_files_are_read_strictly_by_the_fake_portal_too(airgapped, portal):
    client = airgapped()
    request = client.offline_request(LICENSE)
    for text in (request[:40], request.replace("cadpro", "other"), "{}"):
        with pytest.raises(LicenseError) as caught:
            portal.respond_offline(LICENSE, text)
        assert caught.value.code == "invalid_request"
    with pytest.raises(LicenseError) as caught:
        portal.respond_offline(PERPETUAL, request)
    assert "not " + PERPETUAL in caught.value.message


def test_offline_activation_takes_a_seat_once(airgapped, portal):
    client = airgapped()
    first = portal.respond_offline(LICENSE, client.offline_request(LICENSE))
    second = portal.respond_offline(LICENSE, client.offline_request(LICENSE))
    assert first != second and len(portal.licenses[LICENSE].installations) == 1
    with pytest.raises(LicenseError) as caught:
        portal.respond_offline(LICENSE, airgapped("ws-9").offline_request(LICENSE))
    assert caught.value.code == "no_seats_available"
    assert client.install_offline_response(second).valid


def test_the_data_folder_stays_private(airgapped, portal):
    client = airgapped()
    client.install_offline_response(
        portal.respond_offline(LICENSE, client.offline_request(LICENSE))
    )
    for name in os.listdir(client.data_dir):
        assert (client.data_dir / name).stat().st_mode & 0o777 == 0o600, name


def test_request_text_round_trips_through_the_pure_helpers():
    document = offline.request_document(
        "L-1", "inst", "PC", "cadpro", START + timedelta(seconds=0.5), "n" * 32
    )
    assert document["requested_at"] == "2030-01-15T09:00:00+00:00"
    assert json.loads(offline.dumps(document)) == document
