"""What a vendor's user meets after the first activation: a license of another product refused
before a seat is taken, activating again after a deactivation without repeating the server
or the machine's name, and messages that say what happened, since when and what to do."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta, timezone

import pytest

from license_client import LicenseError, NoSeatsAvailable, WrongProduct

START = datetime(2030, 1, 15, 9, 0, tzinfo=timezone.utc)
PASSWORD = "Copper-Kettle-17"
LICENSE = "LIC-AAAA-1111"  # cadpro, one seat, expires START + 365 days
PERPETUAL = "LIC-PERP-2222"
FLOATING = "LIC-FLOT-3333"
SERVER = "http://portal.test"


def sent(portal, path: str) -> list[dict]:
    return [payload for method, where, payload in portal.requests if where == path]


# --- the product, checked before a seat is taken ---------------------------------------------


def test_another_products_license_is_refused_before_a_seat_is_taken(make_client, portal):
    client = make_client(product="femsolver")
    with pytest.raises(WrongProduct) as caught:
        client.activate(LICENSE, PASSWORD)
    assert caught.value.product == "cadpro"
    assert "No seat was taken" in caught.value.message
    assert portal.licenses[LICENSE].installations == {}
    assert client.certificate is None
    assert sent(portal, "/api/v1/activations")[-1]["product"] == "femsolver"


def test_the_kits_product_goes_with_every_activation(make_client, portal):
    assert make_client().activate(LICENSE, PASSWORD).valid
    assert sent(portal, "/api/v1/activations")[-1]["product"] == "cadpro"
    make_client("pc-2", product=None).activate(PERPETUAL, PASSWORD)
    assert "product" not in sent(portal, "/api/v1/activations")[-1]


def test_a_check_out_for_another_product_takes_no_lease(make_client, portal):
    portal.add_license(FLOATING, PASSWORD, seats=1, model="floating", lease_seconds=60)
    client = make_client(product="femsolver")
    with pytest.raises(WrongProduct):
        client.checkout(FLOATING, PASSWORD, heartbeat=False)
    assert sent(portal, "/api/v1/leases")[-1]["product"] == "femsolver"
    assert portal.live_leases(FLOATING) == []
    # refused by the server, not taken and given back
    assert [method for method, _, _ in portal.requests if method == "DELETE"] == []


# --- activating again --------------------------------------------------------------------------


def test_after_a_deactivation_in_the_portal_activating_again_needs_no_server(make_client, portal):
    make_client().activate(LICENSE, PASSWORD, machine_name="Drafting PC")
    portal.deactivate_installation(LICENSE, "inst-pc-1")
    again = make_client(base_url=None)  # `license-client activate` without --server
    assert again.validate().code == "DEACTIVATED"
    assert again.activate(LICENSE, PASSWORD).valid
    assert portal.licenses[LICENSE].installations == {"inst-pc-1": "Drafting PC"}


def test_after_deactivating_here_the_server_and_the_name_are_kept(make_client, portal):
    make_client().activate(LICENSE, PASSWORD, machine_name="Drafting PC")
    make_client().deactivate()
    client = make_client(base_url=None)
    assert client.certificate is None
    assert client.activate(LICENSE, PASSWORD).valid
    assert portal.licenses[LICENSE].installations == {"inst-pc-1": "Drafting PC"}
    assert json.loads((client.data_dir / "activation.json").read_text())["server"] == SERVER


def test_only_a_first_activation_is_named_after_the_host(make_client, portal, monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "host-7")
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    assert portal.licenses[LICENSE].installations == {"inst-pc-1": "host-7"}
    portal.licenses[LICENSE].installations.clear()
    client.activate(LICENSE, PASSWORD, machine_name="Drafting PC")
    monkeypatch.setattr(socket, "gethostname", lambda: "renamed-host")
    client.activate(LICENSE, PASSWORD)
    assert portal.licenses[LICENSE].installations == {"inst-pc-1": "Drafting PC"}


def test_without_any_server_the_message_says_what_to_give(make_client):
    with pytest.raises(LicenseError) as caught:
        make_client(base_url=None).activate(LICENSE, PASSWORD)
    assert caught.value.code == "no_server"
    assert "base_url" not in caught.value.message
    assert "--server URL" in caught.value.message


# --- what happened, since when, what next ------------------------------------------------------


def test_an_activation_is_checked_online(make_client):
    result = make_client().activate(LICENSE, PASSWORD)
    assert result.valid and result.online
    assert result.reason == (
        f"Activated online: the license server at {SERVER} issued this certificate just now; "
        "it is valid until 2031-01-15T09:00:00Z."
    )


def test_deactivated_says_who_when_and_what_next(make_client, portal, clock):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    clock.advance(hours=3)
    portal.deactivate_installation(LICENSE, "inst-pc-1")
    clock.advance(hours=1)
    online = client.validate()
    assert online.code == "DEACTIVATED"
    assert online.reason == (
        "This machine was deactivated on the license server (from the portal, at "
        "2030-01-15T12:00:00Z). Activate again with `license-client activate`, or ask your "
        f"administrator at {SERVER} for a seat."
    )
    offline = client.validate(online=False)
    assert offline.reason.startswith(online.reason)
    assert "(Checked online on 2030-01-15T13:00:00Z; validate online to update.)" in offline.reason


def test_a_deactivation_by_this_program_says_so(make_client, portal):
    first = make_client()
    first.activate(LICENSE, PASSWORD)
    token = first.certificate
    first.deactivate()
    copy = make_client()
    copy.store.write_json(
        "activation.json",
        {"certificate": token, "server": SERVER, "license_id": LICENSE},
    )
    assert "(by this program, at 2030-01-15T09:00:00Z)" in copy.validate().reason


def test_suspended_says_since_when_why_and_whom_to_call(make_client, portal, clock):
    client = make_client()
    client.activate(PERPETUAL, PASSWORD)
    clock.advance(days=2)
    portal.suspend(PERPETUAL, "Payment overdue.")
    result = client.validate()
    assert result.code == "SUSPENDED"
    assert result.reason == (
        "License LIC-PERP-2222 is suspended since 2030-01-17T09:00:00Z (reason: Payment "
        "overdue.): contact your vendor."
    )


def test_expired_says_since_when_and_to_renew_in_the_portal(make_client, clock):
    client = make_client()
    client.activate(LICENSE, PASSWORD)
    clock.advance(days=400)
    online = client.validate()
    assert online.code == "EXPIRED"
    assert online.reason == (
        f"The license expired on 2031-01-15T09:00:00Z: renew it in the portal ({SERVER}), "
        "then validate online again."
    )
    offline = make_client("pc-1").validate(online=False)
    assert offline.code == "EXPIRED"
    assert offline.reason.startswith(online.reason[: online.reason.index(", then")])


def test_the_grace_period_says_until_when_and_how_much_is_left(make_client, portal, clock):
    client = make_client(grace_period=timedelta(days=7))
    client.activate(LICENSE, PASSWORD)
    portal.down = True
    clock.advance(days=4, hours=1)
    result = client.validate()
    assert result.valid and not result.online
    assert result.reason.startswith("Checked offline: the license server could not be reached")
    assert result.reason.endswith("valid until 2030-01-22T09:00:00Z (2 days of grace left).")
    clock.advance(days=2, hours=12)
    assert client.validate().reason.endswith("(11 hours of grace left).")
    clock.advance(days=1)
    late = client.validate()
    assert late.code == "GRACE_EXPIRED"
    assert "was last confirmed online on 2030-01-15T09:00:00Z: its grace period of 7 days " in (
        late.reason
    )
    assert "ended on 2030-01-22T09:00:00Z" in late.reason


def test_no_seat_says_how_many_who_holds_them_and_whom_to_ask(make_client):
    make_client("pc-1").activate(LICENSE, PASSWORD, machine_name="Drafting PC")
    with pytest.raises(NoSeatsAvailable) as caught:
        make_client("pc-2").activate(LICENSE, PASSWORD)
    assert caught.value.message == (
        "The one seat of license LIC-AAAA-1111 is in use (on Drafting PC): ask your "
        f"administrator to free a seat in the portal ({SERVER})."
    )
