"""Features (modules) inside a license: from the certificate, from a newer online answer, and
never when the license is not valid."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from license_client import jws

START = datetime(2030, 1, 15, 9, 0, tzinfo=timezone.utc)
PASSWORD = "Copper-Kettle-17"
LICENSE = "LIC-AAAA-1111"


def test_the_certificate_carries_the_features(make_client, portal):
    portal.licenses[LICENSE].features = ["steel", "dynamics"]
    client = make_client()
    result = client.activate(LICENSE, PASSWORD)
    assert result.features == ("dynamics", "steel")
    assert jws.parse(client.certificate)[1]["features"] == ["dynamics", "steel"]
    assert client.has_feature("steel") and client.has_feature("dynamics")
    assert not client.has_feature("thermal")
    assert client.status().features == ("dynamics", "steel")


def test_a_newer_online_answer_wins_over_the_certificate(make_client, portal, clock):
    license_ = portal.licenses[LICENSE]
    license_.features = ["steel", "dynamics"]
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    clock.advance(hours=1)
    license_.features = ["dynamics", "thermal"]  # staff changed the modules
    online = client.validate()
    assert online.online and online.features == ("dynamics", "thermal")
    # and offline afterwards too, though the certificate still says steel
    assert "steel" in jws.parse(client.certificate)[1]["features"]
    assert not client.has_feature("steel") and client.has_feature("thermal")
    # a certificate issued later is newer than that answer
    clock.advance(hours=1)
    license_.features = ["steel"]
    client.activate(LICENSE, PASSWORD)
    assert client.validate(online=False).features == ("steel",)


def test_an_online_answer_without_features_keeps_the_certificates(make_client, portal, clock):
    portal.licenses[LICENSE].features = ["steel"]
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    verdict = portal._verdict

    def old_server(token):
        answer = verdict(token)
        answer.pop("features")
        return answer

    portal._verdict = old_server
    clock.advance(minutes=5)
    assert client.validate().features == ("steel",)
    assert client.has_feature("steel")


def test_an_old_certificate_without_features_still_works(make_client, portal):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    claims = dict(jws.parse(client.certificate)[1])
    del claims["features"]
    old = jws.sign(claims, portal.key, portal.kid)
    stored = client.store.read_json("activation.json")
    client.store.write_json("activation.json", {**stored, "certificate": old})
    result = client.validate(online=False)
    assert result.valid and result.features == ()
    assert not client.has_feature("steel")
    assert client.status().to_dict()["features"] == []


def test_an_invalid_license_unlocks_nothing(make_client, portal, clock):
    license_ = portal.licenses[LICENSE]
    license_.features = ["steel"]
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    license_.status = "suspended"
    clock.advance(minutes=5)
    assert client.validate().features == ()
    assert not client.has_feature("steel")  # the server's verdict holds offline
    license_.status = "active"
    clock.advance(minutes=5)
    assert client.validate().valid and client.has_feature("steel")


def test_no_features_once_the_grace_period_is_over(make_client, portal, clock):
    portal.licenses[LICENSE].features = ["steel"]
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    portal.down = True
    clock.advance(days=3)
    assert client.validate().features == ("steel",)  # within the grace period
    clock.advance(days=8)
    late = client.validate()
    assert late.code == "GRACE_EXPIRED" and late.features == ()


def test_features_of_an_expired_certificate_do_not_count(make_client, portal, clock):
    portal.licenses[LICENSE].features = ["steel"]
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    clock.advance(days=366)
    assert client.validate(online=False).code == "EXPIRED"
    assert not client.has_feature("steel")
    assert START + timedelta(days=366) == clock.now
