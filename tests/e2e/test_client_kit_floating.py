"""The client kit's floating licenses against the running suite over real HTTP: an
engineering office with 3 seats and 5 workstations, who holds the seats, check-in, the
heartbeat, two processes of one workstation sharing its lease, a revoked lease lost (its seat
not taken back), a laptop that borrows a seat and validates it with no network, and a
workstation configured for another product that is refused before it takes a seat.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from license_client import (
    BorrowNotAllowed,
    LicenseClient,
    NodeLockedLicense,
    NoSeatsAvailable,
    WrongProduct,
    jws,
)
from tests.support.suite import free_port
from tests.support.team import staff_rpc

pytestmark = pytest.mark.e2e

COMPANY_PASSWORD = "Winter-Orchard-42"


@pytest.fixture(scope="module")
def product(suite) -> str:
    code = f"flt{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "Floating CAD")
    return code


@pytest.fixture(scope="module")
def company(suite) -> dict:
    email = f"floating.{uuid.uuid4().hex[:10]}@example.test"
    return suite.portalctl(
        "company", "create", "--name", "Floating Engineering", "--contact-name", "Ada",
        "--email", email, "--password", COMPANY_PASSWORD,
    )  # fmt: skip


def rpc(suite: Any, method: str, *args: Any) -> Any:
    """A licensing call as staff (what portalctl does)."""
    with staff_rpc(suite) as client:
        return client.call("licensing", method, *args)


def issue(suite: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """Issue a license as `portalctl license issue` does: the license with its password."""
    license = rpc(suite, "issue_license", payload)
    return rpc(suite, "get_license", license["license_id"])


@pytest.fixture
def floating(suite, company, product) -> dict:
    """A floating license with 3 seats, 60 s leases, borrowing up to 7 days."""
    return issue(
        suite,
        {
            "customer_id": company["customer_id"],
            "product": product,
            "seats": 3,
            "expires_at": "2099-12-31",
            "model": "floating",
            "lease_seconds": 60,
            "max_borrow_days": 7,
        },
    )


@pytest.fixture
def office(suite, product, tmp_path) -> Iterator[Any]:
    """Workstations: kit clients with their own data folders and installation IDs; every
    lease still held is checked in at the end (and its heartbeat thread stopped)."""
    made: list[LicenseClient] = []

    def workstation(machine: str, **kwargs: Any) -> LicenseClient:
        base_url = kwargs.pop("base_url", suite.url)
        options = {
            "product": product,
            "data_dir": tmp_path / machine,
            "installation_id": f"e2e-{machine}-{uuid.uuid4().hex[:12]}",
            "retries": 1,
        }
        options.update(kwargs)
        client = LicenseClient(base_url, **options)
        made.append(client)
        return client

    yield workstation
    for client in made:
        if client.lease_status().state != "none":
            try:
                client.checkin()
            except Exception as error:  # a dead URL's client, a lost lease: nothing to return
                print(f"checkin at teardown: {error!r}")


def live_leases(suite, license_id: str) -> list[dict]:
    return rpc(suite, "list_leases", license_id)


def test_an_engineering_office_shares_three_seats(suite, floating, office):
    license_id, password = floating["license_id"], floating["activation_password"]
    assert floating["model"] == "floating" and floating["seats"] == 3
    stations = {n: office(f"ws-{n}") for n in range(1, 6)}

    leases = {}
    for n in (1, 2, 3):
        leases[n] = stations[n].checkout(license_id, password, machine_name=f"CAD-WS-0{n}")
        assert leases[n].license_id == license_id and not leases[n].borrowed
        assert leases[n].heartbeat_interval == timedelta(seconds=20)
        assert stations[n].lease_status().state == "live"
        assert stations[n].validate(online=False).valid
    # the lease certificate verifies with the published keys, as any product would check it
    keys = jws.KeySet.from_jwks(suite.api.get("/api/v1/signing-keys").json())
    certificate = keys.verify(leases[1].certificate)
    assert certificate.claims["lease_id"] == leases[1].lease_id
    assert certificate.claims["model"] == "floating" and certificate.claims["borrowed"] is False
    assert certificate.expires_at == leases[1].expires_at
    assert leases[1].expires_at - datetime.now(UTC) <= timedelta(seconds=61)

    # the 4th and 5th are told who holds the seats, and until when
    for n in (4, 5):
        with pytest.raises(NoSeatsAvailable) as caught:
            stations[n].checkout(license_id, password, machine_name=f"CAD-WS-0{n}")
        machines = caught.value.machines
        assert sorted(machines) == ["CAD-WS-01", "CAD-WS-02", "CAD-WS-03"]
        for holder in machines:
            assert holder.expires_at is not None and not holder.borrowed
            assert holder.expires_at > datetime.now(UTC)
        assert "CAD-WS-01 (until " in caught.value.describe_machines()
        assert stations[n].lease is None
    assert len(live_leases(suite, license_id)) == 3

    # the same workstation again (a second start of the product) takes no second seat
    again = office("ws-1", installation_id=stations[1].installation_id)  # same folder too
    assert again.checkout(license_id, password, heartbeat=False).lease_id == leases[1].lease_id
    status = stations[1].heartbeat()  # its token was replaced: it adopts the stored one
    assert status.state == "live", status.reason
    assert stations[1].lease.lease_id == leases[1].lease_id
    assert again.heartbeat().state == "live"  # both keep the one lease, no check-out loop
    assert stations[1].heartbeat().state == "live"

    # one checks in: the seat is free at once, and the 4th gets in
    assert stations[2].checkin().lease_id == leases[2].lease_id
    assert stations[2].validate(online=False).code == "NOT_ACTIVATED"
    fourth = stations[4].checkout(license_id, password, machine_name="CAD-WS-04")
    assert stations[4].validate().valid and stations[4].validate().online
    holders = sorted(lease["machine_name"] for lease in live_leases(suite, license_id))
    assert holders == ["CAD-WS-01", "CAD-WS-03", "CAD-WS-04"]
    assert fourth.lease_id not in (leases[1].lease_id, leases[3].lease_id)

    # a heartbeat extends the lease by one period
    before = stations[3].lease.expires_at
    status = stations[3].heartbeat()
    assert status.state == "live" and status.lease.expires_at >= before
    assert status.last_heartbeat_at is not None

    # the server's word on a lease certificate, online
    result = stations[1].validate()
    assert result.valid and result.online and result.code == "VALID"


def test_a_laptop_borrows_a_seat_and_runs_offline(suite, floating, office):
    license_id, password = floating["license_id"], floating["activation_password"]
    for n in (1, 2):
        office(f"ws-{n}").checkout(license_id, password, machine_name=f"CAD-WS-0{n}")
    laptop = office("laptop")

    with pytest.raises(BorrowNotAllowed) as caught:
        laptop.borrow(8, license_id, password, machine_name="LAPTOP-ADA")
    assert caught.value.max_borrow_days == 7 and caught.value.latest is not None
    lease = laptop.borrow(7, license_id, password, machine_name="LAPTOP-ADA")
    assert lease.borrowed
    assert lease.expires_at - datetime.now(UTC) > timedelta(days=6, hours=23)
    assert laptop.lease_status().state == "borrowed"
    assert laptop.lease_status().next_heartbeat_at is None  # no heartbeat needed

    # the office is full now, and says so: the laptop borrowed until next week
    with pytest.raises(NoSeatsAvailable) as refused:
        office("ws-3").checkout(license_id, password, machine_name="CAD-WS-03")
    borrowed = [holder for holder in refused.value.machines if holder == "LAPTOP-ADA"]
    assert borrowed and borrowed[0].borrowed
    assert abs(borrowed[0].expires_at - lease.expires_at) <= timedelta(seconds=1)

    # on the train: a later process, and no network at all (a URL where nothing listens)
    dead = f"http://127.0.0.1:{free_port()}"
    offline = office("laptop", base_url=dead, installation_id=laptop.installation_id, retries=0)
    result = offline.validate(online=False)
    assert result.valid and result.code == "VALID" and "borrowed lease" in result.reason
    assert result.license_id == license_id
    assert offline.validate().valid  # online cannot reach the server: the lease holds
    assert offline.checkout().lease_id == lease.lease_id  # the product's usual start
    assert offline.lease_status().state == "borrowed"
    # the day after its end: the lease is over, with no grace period
    after = lease.expires_at + timedelta(seconds=1)
    later = office(
        "laptop", base_url=dead, installation_id=laptop.installation_id, clock=lambda: after
    )
    assert later.validate(online=False).code == "LEASE_EXPIRED"

    # back in the office: returned early, the seat is free at once
    assert laptop.checkin().lease_id == lease.lease_id
    holders = [x["machine_name"] for x in live_leases(suite, license_id)]
    assert "LAPTOP-ADA" not in holders and len(holders) == 2
    assert offline.validate(online=False).code == "NOT_ACTIVATED"


def test_a_revoked_lease_is_lost_and_its_seat_stays_free(suite, floating, office):
    license_id, password = floating["license_id"], floating["activation_password"]
    told: list[Any] = []
    first = office("ws-1")
    lease = first.checkout(
        license_id, password, machine_name="CAD-WS-01", heartbeat=False, on_lost=told.append
    )
    rpc(suite, "revoke_lease", None, license_id, lease.lease_id)
    status = first.heartbeat()  # 410, reason revoked: lost, never checked out again
    assert status.state == "lost" and first.lease_lost, status.reason
    assert "revoked" in status.reason
    assert told == [status]
    assert live_leases(suite, license_id) == []  # the seat the admin freed stays free
    assert first.validate(online=False).code == "LEASE_EXPIRED"
    assert first.validate().code == "LEASE_EXPIRED"
    assert first.heartbeat().state == "lost" and len(told) == 1


def test_a_node_locked_license_is_activated_not_leased(suite, company, product, office):
    license = issue(suite, {"customer_id": company["customer_id"], "product": product, "seats": 1})
    with pytest.raises(NodeLockedLicense):
        office("ws-1").checkout(license["license_id"], license["activation_password"])


def test_a_workstation_of_another_product_checks_out_no_seat(suite, floating, office, product):
    license_id, password = floating["license_id"], floating["activation_password"]
    station = office("ws-other", product="femsolver")
    with pytest.raises(WrongProduct) as caught:
        station.checkout(license_id, password, heartbeat=False)
    assert caught.value.product == product
    assert caught.value.details["requested"] == "femsolver"
    assert live_leases(suite, license_id) == []
    events = rpc(suite, "history", license_id)["events"]
    assert [(e["type"], e["reason"]) for e in events] == [("lease_refused", "wrong_product")]
