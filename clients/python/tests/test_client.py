"""LicenseClient against the fake portal: activation, errors, online and offline validation,
the grace period and the clock-rollback check."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from license_client import (
    InvalidCertificate,
    InvalidCredentials,
    LicenseExpired,
    LicenseSuspended,
    NetworkError,
    NoSeatsAvailable,
    NotActivated,
    TooManyAttempts,
    jws,
)
from license_client.transport import Transport

# the same as conftest.py's (importlib mode cannot import conftest)
START = datetime(2030, 1, 15, 9, 0, tzinfo=timezone.utc)
PASSWORD = "Copper-Kettle-17"
LICENSE = "LIC-AAAA-1111"
PERPETUAL = "LIC-PERP-2222"


class NoNetwork(Transport):
    def send(self, *args, **kwargs):
        raise AssertionError("offline validation must not touch the network")


def test_activation_stores_a_verified_certificate(make_client, portal):
    client = make_client()
    result = client.activate(LICENSE, PASSWORD, machine_name="Drafting PC")
    assert result.valid and result.code == "VALID"
    assert (result.license_id, result.machine_name, result.product) == (
        LICENSE,
        "Drafting PC",
        "cadpro",
    )
    assert result.expires_at == START + timedelta(days=365)
    assert portal.licenses[LICENSE].installations == {"inst-pc-1": "Drafting PC"}
    stored = json.loads((client.data_dir / "activation.json").read_text())
    assert stored["certificate"] == client.certificate
    assert stored["installation_id"] == "inst-pc-1"
    for name in ("activation.json", "keys.json", "state.json"):
        assert (client.data_dir / name).stat().st_mode & 0o777 == 0o600
    paths = [path for _, path, _ in portal.requests]
    assert paths == ["/api/v1/signing-keys", "/api/v1/activations"]


def test_machine_name_defaults_to_the_hostname(make_client, portal, monkeypatch):
    monkeypatch.setattr("license_client.client.socket.gethostname", lambda: "host-42")
    make_client().activate(LICENSE, PASSWORD)
    assert portal.licenses[LICENSE].installations == {"inst-pc-1": "host-42"}


def test_reactivating_is_idempotent_and_uses_no_new_seat(make_client, portal, clock):
    client = make_client()
    first = client.activate(LICENSE, PASSWORD)
    clock.advance(hours=1)
    again = make_client().activate(LICENSE, PASSWORD)  # after a restart too
    assert first.valid and again.valid
    assert list(portal.licenses[LICENSE].installations) == ["inst-pc-1"]
    statuses = [status for path, status in portal.answers if path == "/api/v1/activations"]
    assert statuses == [201, 200]  # the second found the seat already held


def test_wrong_password_and_unknown_license_are_invalid_credentials(make_client):
    client = make_client()
    with pytest.raises(InvalidCredentials):
        client.activate(LICENSE, "wrong")
    with pytest.raises(InvalidCredentials):
        client.activate("LIC-NOPE", PASSWORD)
    assert client.certificate is None
    assert client.validate().code == "NOT_ACTIVATED"


def test_no_seats_names_the_machines_that_hold_them(make_client):
    make_client("pc-1").activate(LICENSE, PASSWORD, machine_name="Alice's laptop")
    with pytest.raises(NoSeatsAvailable) as caught:
        make_client("pc-2").activate(LICENSE, PASSWORD, machine_name="Bob's PC")
    assert caught.value.machines == ["Alice's laptop"]
    assert caught.value.status == 409


def test_expired_and_suspended_licenses_refuse_activation(make_client, portal, clock):
    portal.licenses[PERPETUAL].status = "suspended"
    with pytest.raises(LicenseSuspended):
        make_client().activate(PERPETUAL, PASSWORD)
    clock.advance(days=400)
    with pytest.raises(LicenseExpired):
        make_client().activate(LICENSE, PASSWORD)


def test_too_many_attempts_is_not_retried(make_client, portal, sleeps):
    portal.fail_next(1, status=429)
    with pytest.raises(TooManyAttempts):
        make_client().activate(LICENSE, PASSWORD)
    assert sleeps == []


def test_activation_retries_through_503(make_client, portal, sleeps):
    portal.fail_next(2, status=503)
    assert make_client().activate(LICENSE, PASSWORD).valid
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] / 2


def test_activation_with_the_server_down_raises_network_error(make_client, portal, sleeps):
    portal.down = True
    with pytest.raises(NetworkError):
        make_client(retries=2).activate(LICENSE, PASSWORD)
    assert len(sleeps) == 2


def test_a_certificate_signed_by_another_key_is_refused_and_not_stored(make_client, portal):
    portal.key = Ed25519PrivateKey.generate()  # signs with a key the JWKS no longer matches
    client = make_client(
        jwks={"keys": [jws.public_jwk(Ed25519PrivateKey.generate().public_key(), "k1")]}
    )
    with pytest.raises(InvalidCertificate):
        client.activate(LICENSE, PASSWORD)
    assert client.certificate is None


def test_deactivate_frees_the_seat_and_forgets_the_activation(make_client, portal):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    client.deactivate()
    assert portal.licenses[LICENSE].installations == {}
    assert client.certificate is None
    assert client.validate(online=False).code == "NOT_ACTIVATED"
    with pytest.raises(NotActivated):
        client.deactivate()
    assert make_client("pc-2").activate(LICENSE, PASSWORD).valid  # the seat is free


def test_deactivate_keeps_the_activation_when_the_server_refuses(make_client, portal):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    portal.licenses[LICENSE].password = "rotated-password"
    with pytest.raises(InvalidCredentials):
        client.deactivate()
    assert client.certificate is not None
    client.deactivate(password="rotated-password")
    assert client.certificate is None


def test_without_a_remembered_password_deactivation_needs_one(make_client):
    client = make_client(remember_password=False)
    client.activate(LICENSE, PASSWORD)
    assert "password" not in json.loads((client.data_dir / "activation.json").read_text())
    with pytest.raises(Exception, match="password"):
        client.deactivate()
    client.deactivate(password=PASSWORD)


# -- online validation ----------------------------------------------------------------------


def test_online_validation_asks_the_server(make_client, portal):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    result = client.validate()
    assert result.valid and result.online and result.code == "VALID"
    assert portal.requests[-1][1] == "/api/v1/validations"


def test_deactivation_from_the_portal_shows_online_and_then_offline(make_client, portal):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    portal.licenses[LICENSE].installations.clear()  # the company freed the seat in the portal
    online = client.validate()
    assert not online and online.code == "DEACTIVATED" and online.online
    offline = client.validate(online=False)  # unplugging the network does not bring it back
    assert not offline and offline.code == "DEACTIVATED"
    assert client.activate(LICENSE, PASSWORD).valid  # activating again takes a seat again
    assert client.validate(online=False).valid


def test_suspension_shows_online(make_client, portal):
    client = make_client()
    client.activate(PERPETUAL, PASSWORD)
    portal.licenses[PERPETUAL].status = "suspended"
    assert client.validate().code == "SUSPENDED"
    portal.licenses[PERPETUAL].status = "active"
    assert client.validate().code == "VALID"
    assert client.validate(online=False).valid


def test_an_extended_license_gets_a_fresh_certificate_online(make_client, portal, clock):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    new_expiry = START + timedelta(days=730)
    portal.licenses[LICENSE].expires_at = new_expiry
    assert client.validate().valid
    assert client.validate(online=False).expires_at == new_expiry
    clock.advance(days=500)  # past the first expiry, within the extension
    assert client.validate(online=False).valid


def test_stale_keys_are_refreshed_when_online(make_client, portal, clock):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    clock.advance(days=2)
    assert client.validate().valid
    assert [p for _, p, _ in portal.requests].count("/api/v1/signing-keys") == 2


# -- offline validation ---------------------------------------------------------------------


def test_offline_validation_with_pinned_keys_needs_no_network(make_client, portal, tmp_path):
    make_client().activate(LICENSE, PASSWORD)
    (tmp_path / "pc-1" / "keys.json").unlink()  # pinned keys only
    client = make_client(jwks=json.dumps(portal.jwks), transport=NoNetwork(), base_url=None)
    result = client.validate(online=False)
    assert result.valid and not result.online
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(portal.jwks))
    assert make_client(jwks=jwks_file, transport=NoNetwork()).validate(online=False).valid


def test_offline_validation_uses_the_cached_keys(make_client, portal):
    make_client().activate(PERPETUAL, PASSWORD)
    result = make_client(transport=NoNetwork()).validate(online=False)
    assert result.valid and result.expires_at is None
    assert "perpetual" in result.reason


def tamper(client, **claims) -> None:
    path = client.data_dir / "activation.json"
    stored = json.loads(path.read_text())
    header, payload, signature = stored["certificate"].split(".")
    document = json.loads(jws.b64url_decode(payload))
    document.update(claims)
    forged = jws._b64encode(json.dumps(document).encode())
    stored["certificate"] = f"{header}.{forged}.{signature}"
    path.write_text(json.dumps(stored))


def test_a_tampered_certificate_is_invalid(make_client):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    tamper(client, exp=int((START + timedelta(days=9999)).timestamp()))
    result = client.validate(online=False)
    assert not result and result.code == "BAD_SIGNATURE"
    assert client.validate().code == "BAD_SIGNATURE"  # the server agrees


def test_an_expired_certificate_is_invalid(make_client, clock):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    clock.advance(days=364)
    assert client.validate(online=False).valid
    clock.advance(days=2)
    result = client.validate(online=False)
    assert not result and result.code == "EXPIRED"


def test_a_certificate_copied_to_another_machine_is_invalid(make_client, tmp_path):
    make_client("pc-1").activate(LICENSE, PASSWORD)
    shutil.copytree(tmp_path / "pc-1", tmp_path / "pc-2")
    other = make_client("pc-2", transport=NoNetwork())
    result = other.validate(online=False)
    assert not result and result.code == "WRONG_MACHINE"
    assert make_client("pc-2").validate().code == "WRONG_MACHINE"  # online too


def test_a_certificate_for_another_product_is_invalid(make_client, portal):
    portal.licenses[LICENSE].product = "viewer"
    make_client(product=None, namespace="cadpro").activate(LICENSE, PASSWORD)
    result = make_client(transport=NoNetwork()).validate(online=False)
    assert not result and result.code == "WRONG_PRODUCT"


def test_an_unknown_signing_key_is_invalid(make_client):
    make_client().activate(LICENSE, PASSWORD)
    other = {"keys": [jws.public_jwk(Ed25519PrivateKey.generate().public_key(), "other")]}
    result = make_client(jwks=other, transport=NoNetwork()).validate(online=False)
    assert not result and result.code == "UNKNOWN_KEY"


def test_without_any_keys_offline_validation_says_so(make_client, tmp_path):
    make_client().activate(LICENSE, PASSWORD)
    (tmp_path / "pc-1" / "keys.json").unlink()
    result = make_client(transport=NoNetwork()).validate(online=False)
    assert not result and result.code == "UNKNOWN_KEY" and "validate online" in result.reason


@pytest.mark.parametrize("certificate", ["", "garbage", "a.b.c", "x" * 50_000, None, 12, {"a": 1}])
def test_a_garbage_certificate_is_invalid_not_a_crash(make_client, certificate):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    path = client.data_dir / "activation.json"
    stored = json.loads(path.read_text())
    stored["certificate"] = certificate
    path.write_text(json.dumps(stored))
    for online in (False, True):
        result = client.validate(online=online)
        assert not result
        assert result.code in ("MALFORMED", "NOT_ACTIVATED", "BAD_SIGNATURE")


@pytest.mark.parametrize("content", ["{not json", "[]", "", "\x00\xff"])
def test_a_damaged_activation_file_reads_as_not_activated(make_client, content):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    (client.data_dir / "activation.json").write_text(content, errors="ignore")
    assert client.validate(online=False).code == "NOT_ACTIVATED"
    assert client.validate().code == "NOT_ACTIVATED"


def test_another_process_replacing_the_activation_is_noticed(make_client):
    app = make_client()
    app.activate(LICENSE, PASSWORD)
    assert app.validate(online=False).valid
    make_client().deactivate()  # e.g. the CLI, in another process
    assert app.validate(online=False).code == "NOT_ACTIVATED"


# -- grace period ---------------------------------------------------------------------------


def test_unreachable_server_falls_back_to_offline_within_the_grace_period(
    make_client, portal, clock
):
    client = make_client(grace_period=timedelta(days=7))
    client.activate(LICENSE, PASSWORD)
    assert client.validate().online
    checked = clock.now
    portal.down = True
    clock.advance(days=6)
    result = client.validate()
    assert result.valid and not result.online
    assert result.grace_until == checked + timedelta(days=7)
    assert "could not be reached" in result.reason
    clock.advance(days=2)
    late = client.validate()
    assert not late and late.code == "GRACE_EXPIRED"
    assert client.validate(online=False).valid  # the certificate itself is still good
    portal.down = False
    assert client.validate().valid and client.validate().online  # back online: a new grace


def test_503_after_retries_also_falls_back_within_grace(make_client, portal, sleeps):
    client = make_client(retries=1)
    client.activate(LICENSE, PASSWORD)
    portal.fail_next(2, status=503)
    result = client.validate()
    assert result.valid and not result.online and result.grace_until
    assert len(sleeps) == 1


def test_no_server_configured_validates_offline_within_grace(make_client, portal, tmp_path):
    make_client().activate(LICENSE, PASSWORD)
    path = tmp_path / "pc-1" / "activation.json"
    stored = json.loads(path.read_text())
    del stored["server"]
    path.write_text(json.dumps(stored))
    state_path = tmp_path / "pc-1" / "state.json"
    state = json.loads(state_path.read_text())
    del state["server"]
    state_path.write_text(json.dumps(state))
    result = make_client(base_url=None, transport=NoNetwork()).validate()
    assert result.valid and not result.online


def test_grace_does_not_rescue_an_expired_certificate(make_client, portal, clock):
    client = make_client(grace_period=timedelta(days=30))
    client.activate(LICENSE, PASSWORD)
    clock.advance(days=360)
    assert client.validate().valid
    portal.down = True
    clock.advance(days=10)
    assert client.validate().code == "EXPIRED"


# -- clock rollback -------------------------------------------------------------------------


def test_a_clock_turned_back_is_caught(make_client, clock):
    client = make_client(clock_tolerance=timedelta(hours=1))
    client.activate(LICENSE, PASSWORD)
    clock.advance(days=30)
    assert client.validate(online=False).valid
    clock.advance(minutes=-30)  # within the tolerance (NTP, a manual correction)
    assert client.validate(online=False).valid
    clock.advance(days=-20)
    result = client.validate(online=False)
    assert not result and result.code == "CLOCK_ROLLBACK"
    assert "behind" in result.reason


def test_the_rollback_check_survives_a_restart(make_client, clock):
    make_client().activate(LICENSE, PASSWORD)
    clock.advance(days=30)
    assert make_client().validate(online=False).valid  # persisted (a minute has passed)
    clock.advance(days=-10)
    result = make_client(transport=NoNetwork()).validate(online=False)
    assert result.code == "CLOCK_ROLLBACK"


def test_a_successful_online_check_clears_a_clock_that_once_ran_ahead(make_client, clock):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    clock.advance(days=100)  # the clock was wrong, far ahead
    assert client.validate(online=False).valid
    clock.advance(days=-99)  # and then corrected
    assert client.validate(online=False).code == "CLOCK_ROLLBACK"
    assert client.validate().valid  # the server confirms the license
    assert client.validate(online=False).valid


def test_a_clock_before_the_certificate_was_issued_is_caught(make_client, clock):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    state = client.data_dir / "state.json"
    state.unlink()  # even without any remembered time
    client = make_client(transport=NoNetwork())
    clock.advance(days=-3)
    result = client.validate(online=False)
    assert result.code == "CLOCK_ROLLBACK" and "before the certificate" in result.reason


def test_frequent_validations_do_not_rewrite_the_state_file(make_client, clock):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    state = client.data_dir / "state.json"
    before = state.stat().st_mtime_ns, state.stat().st_ino
    for _ in range(50):
        clock.advance(seconds=0.5)
        assert client.validate(online=False).valid
    assert (state.stat().st_mtime_ns, state.stat().st_ino) == before


# -- status ---------------------------------------------------------------------------------


def test_status_reports_the_activation(make_client, clock):
    client = make_client()
    assert not client.status().activated
    client.activate(LICENSE, PASSWORD, machine_name="Drafting PC")
    status = client.status()
    assert status.activated and status.valid
    assert (status.license_id, status.machine_name, status.product) == (
        LICENSE,
        "Drafting PC",
        "cadpro",
    )
    assert status.last_online_check == START
    assert status.grace_until == START + timedelta(days=7)
    assert status.server == "http://portal.test"
    document = status.to_dict()
    json.dumps(document)
    assert document["validation"]["code"] == "VALID"
    assert document["expires_at"].endswith("Z")
