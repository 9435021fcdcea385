"""Floating licenses against the fake portal: check-out, seats and who holds them, the
heartbeat (driven by hand and by its thread with a recording wait), network gaps, a revoked
or lapsed lease checked out again or lost, borrowing and offline validation, check-in at
exit and on SIGTERM. No test sleeps: the clock is moved by hand and waits are recorded."""

from __future__ import annotations

import json
import signal
import threading
from datetime import datetime, timedelta, timezone

import pytest

from license_client import (
    BorrowNotAllowed,
    FloatingLicense,
    LeaseExpired,
    LicenseError,
    NetworkError,
    NodeLockedLicense,
    NoSeatsAvailable,
    NotCheckedOut,
    SeatHolder,
    jws,
)
from license_client import leases as lease_module
from license_client.errors import from_response
from license_client.transport import Transport

START = datetime(2030, 1, 15, 9, 0, tzinfo=timezone.utc)
PASSWORD = "Copper-Kettle-17"
FLOATING = "LIC-FLOT-3333"
NODE_LOCKED = "LIC-AAAA-1111"
PERIOD = timedelta(seconds=60)


class NoNetwork(Transport):
    def send(self, *args, **kwargs):
        raise AssertionError("this must not touch the network")


@pytest.fixture
def floating(portal):
    return portal.add_license(
        FLOATING,
        PASSWORD,
        seats=3,
        model="floating",
        lease_seconds=60,
        max_borrow_days=7,
        expires_at=START + timedelta(days=365),
    )


@pytest.fixture
def office(make_client, floating):
    """Checks out on workstation `name` without a thread (tests drive the heartbeat)."""

    def checkout(name: str, **kwargs):
        client = make_client(name)
        lease = client.checkout(FLOATING, PASSWORD, machine_name=name, heartbeat=False, **kwargs)
        return client, lease

    return checkout


def test_checkout_takes_a_seat_and_stores_a_verified_lease(office, portal, clock):
    client, lease = office("CAD-WS-01")
    assert lease.lease_id.startswith("LS-") and lease.license_id == FLOATING
    assert lease.expires_at == START + PERIOD and not lease.borrowed
    assert lease.heartbeat_interval == timedelta(seconds=20)
    assert [x.machine_name for x in portal.live_leases(FLOATING)] == ["CAD-WS-01"]
    stored = json.loads((client.data_dir / "lease.json").read_text())
    assert stored["lease"]["lease_token"] == lease.token and stored["password"] == PASSWORD
    assert (client.data_dir / "lease.json").stat().st_mode & 0o777 == 0o600
    assert "token" not in repr(lease) and "lease_token" not in json.dumps(lease.to_dict())
    result = client.validate(online=False)
    assert result.valid and result.code == "VALID" and result.expires_at == lease.expires_at
    assert "lease is valid" in result.reason
    status = client.lease_status()
    assert status.state == "live" and status.next_heartbeat_at == START + timedelta(seconds=20)
    assert client.lease == lease and not client.lease_lost


def test_the_fourth_and_fifth_workstations_learn_who_holds_the_seats(office, make_client):
    for name in ("CAD-WS-01", "CAD-WS-02", "CAD-WS-03"):
        office(name)
    for name in ("CAD-WS-04", "CAD-WS-05"):
        with pytest.raises(NoSeatsAvailable) as caught:
            make_client(name).checkout(FLOATING, PASSWORD, machine_name=name, heartbeat=False)
        machines = caught.value.machines
        assert machines == ["CAD-WS-01", "CAD-WS-02", "CAD-WS-03"]
        assert all(m.expires_at == START + PERIOD and not m.borrowed for m in machines)
        assert caught.value.describe_machines().startswith("CAD-WS-01 (until 2030-01-15 09:01 UTC)")
        assert not (make_client(name).data_dir / "lease.json").exists()


def test_checkin_frees_the_seat_at_once(office, make_client, portal):
    first, lease = office("CAD-WS-01")
    office("CAD-WS-02")
    office("CAD-WS-03")
    assert first.checkin() == lease
    assert [x.status for x in portal.licenses[FLOATING].leases.values()][0] == "checked_in"
    fourth, _ = office("CAD-WS-04")
    assert fourth.validate(online=False).valid
    assert first.validate(online=False).code == "NOT_ACTIVATED"
    assert first.lease_status().state == "none" and first.lease is None
    with pytest.raises(NotCheckedOut):
        first.checkin()


def test_checking_out_again_returns_the_lease_held(office, make_client, portal):
    client, lease = office("CAD-WS-01")
    requests = len(portal.requests)
    assert client.checkout() == lease  # this process holds it: no request
    assert len(portal.requests) == requests
    # another process of the same installation: the same lease, a new token, no new seat
    again = make_client("CAD-WS-01").checkout(heartbeat=False)  # the remembered ID and password
    assert again.lease_id == lease.lease_id and again.token != lease.token
    assert len(portal.live_leases(FLOATING)) == 1


def test_checkout_needs_a_license_and_a_password_the_first_time(make_client, floating):
    with pytest.raises(LicenseError) as caught:
        make_client().checkout()
    assert caught.value.code == "license_id_required"
    with pytest.raises(LicenseError) as caught:
        make_client(remember_password=False).checkout(FLOATING)
    assert caught.value.code == "password_required"


def test_a_heartbeat_extends_the_lease_by_one_period(office, clock, portal):
    client, lease = office("CAD-WS-01")
    clock.advance(seconds=20)
    status = client.heartbeat()
    assert status.state == "live" and status.lease.lease_id == lease.lease_id
    assert status.lease.expires_at == clock.now + PERIOD
    assert status.last_heartbeat_at == clock.now
    assert status.next_heartbeat_at == clock.now + timedelta(seconds=20)
    method, path, _ = portal.requests[-1]
    assert (method, path) == ("POST", f"/api/v1/leases/{lease.lease_id}/heartbeat")
    stored = json.loads((client.data_dir / "lease.json").read_text())
    assert jws.parse(stored["lease"]["certificate"])[1]["exp"] == int(
        (clock.now + PERIOD).timestamp()
    )
    clock.advance(seconds=55)  # past the first certificate's end: the new one holds
    assert client.validate(online=False).valid


def test_a_network_gap_retries_with_backoff_while_the_lease_lasts(office, clock, portal, sleeps):
    client, lease = office("CAD-WS-01")
    portal.down = True
    delays = []
    for _ in range(4):
        clock.advance(seconds=5)
        status = client.heartbeat()
        assert status.state == "retrying" and isinstance(status.error, NetworkError)
        assert "retrying while the lease lasts" in status.reason
        delay = (status.next_heartbeat_at - clock.now).total_seconds()
        delays.append(delay)
        assert 0 < delay <= 20 and status.next_heartbeat_at <= lease.expires_at
    assert delays[3] > delays[0]  # backing off (jitter keeps each in [ceiling/2, ceiling])
    assert len(sleeps) == 4 * 3  # the transport's own retries: recorded, not slept
    assert client.validate(online=False).valid  # the lease still lasts
    portal.down = False
    clock.advance(seconds=5)
    status = client.heartbeat()
    assert status.state == "live" and status.error is None
    assert status.lease.expires_at == clock.now + PERIOD


def test_a_gap_that_outlasts_the_lease_loses_it(office, clock, portal):
    calls = []
    client, lease = office("CAD-WS-01", on_lost=calls.append)
    portal.down = True
    clock.advance(seconds=61)
    status = client.heartbeat()
    assert status.state == "lost" and client.lease_lost and client.lease is None
    assert isinstance(status.error, NetworkError)
    assert status.reason.startswith("The lease lapsed at 2030-01-15T09:01:00Z")
    assert [s.state for s in calls] == ["lost"]
    assert client.validate(online=False).code == "LEASE_EXPIRED"
    assert client.heartbeat().state == "lost"  # no more heartbeats, no second callback
    assert len(calls) == 1


def checkouts(portal) -> int:
    """How many check-outs (password and all) the portal has had."""
    return sum((method, path) == ("POST", "/api/v1/leases") for method, path, _ in portal.requests)


def test_a_revoked_lease_is_lost_and_its_seat_stays_free(office, make_client, clock, portal):
    calls = []
    client, lease = office("CAD-WS-01", on_lost=calls.append)
    portal.revoke_lease(FLOATING, lease.lease_id)
    clock.advance(seconds=20)
    status = client.heartbeat()
    assert status.state == "lost" and client.lease_lost and client.lease is None
    assert status.reason.startswith("The lease was revoked in the portal; it is not checked")
    assert isinstance(status.error, LeaseExpired) and status.error.reason == "revoked"
    assert calls == [status]
    assert checkouts(portal) == 1  # never taken back: the seat the admin freed stays free
    assert portal.live_leases(FLOATING) == []
    assert lease.expires_at > clock.now  # the certificate still runs, but the lease ended
    assert client.validate(online=False).code == "LEASE_EXPIRED"
    assert make_client("CAD-WS-01").validate(online=False).code == "LEASE_EXPIRED"
    requests = len(portal.requests)
    clock.advance(seconds=20)
    assert client.heartbeat().state == "lost" and len(portal.requests) == requests
    assert len(calls) == 1


def test_a_lease_checked_in_by_another_process_is_lost_not_taken_back(
    office, make_client, clock, portal
):
    client, lease = office("CAD-WS-01")
    assert make_client("CAD-WS-01").checkin().lease_id == lease.lease_id  # `license-client checkin`
    clock.advance(seconds=20)
    status = client.heartbeat()
    assert status.state == "lost" and status.reason.startswith("The lease was checked in")
    assert checkouts(portal) == 1 and portal.live_leases(FLOATING) == []


def test_a_lease_the_server_says_lapsed_is_checked_out_again(make_client, floating, clock, portal):
    # the machine slept: its monotonic clock stood still, the server's did not
    client = make_client("CAD-WS-01", monotonic=lambda: 0.0)
    lease = client.checkout(FLOATING, PASSWORD, machine_name="CAD-WS-01", heartbeat=False)
    clock.advance(seconds=61)
    status = client.heartbeat()  # 410, reason expired
    assert status.state == "live" and status.lease.lease_id != lease.lease_id
    assert status.reason.startswith("The lease lapsed; checked out again until")
    assert client.validate(online=False).valid
    assert [x.lease_id for x in portal.live_leases(FLOATING)] == [status.lease.lease_id]


def test_lapsed_with_no_seat_free_the_lease_is_lost_and_the_program_told(
    make_client, office, floating, clock, portal
):
    def broken_callback(status):
        calls.append(status)
        raise RuntimeError("the product's callback fails; the kit must not")

    calls = []
    client = make_client("CAD-WS-01", monotonic=lambda: 0.0)
    lease = client.checkout(
        FLOATING, PASSWORD, machine_name="CAD-WS-01", heartbeat=False, on_lost=broken_callback
    )
    clock.advance(seconds=61)
    for name in ("CAD-WS-02", "CAD-WS-03", "CAD-WS-04"):  # take the seats meanwhile
        office(name)
    status = client.heartbeat()
    assert status.state == "lost" and status.lost and not status.held
    assert isinstance(status.error, NoSeatsAvailable)
    assert status.error.machines == ["CAD-WS-02", "CAD-WS-03", "CAD-WS-04"]
    assert status.reason.startswith("The lease lapsed; checking out again failed")
    assert "CAD-WS-04 (until" in status.reason
    assert calls == [status]
    result = client.validate(online=False)
    assert result.code == "LEASE_EXPIRED" and not result
    assert lease.lease_id not in [x.lease_id for x in portal.live_leases(FLOATING)]


def test_a_client_clock_ahead_of_the_server_changes_nothing(make_client, floating, clock, portal):
    def ahead():
        return clock.now + timedelta(hours=2)  # more than a lease period ahead

    calls = []
    client = make_client("CAD-WS-01", clock=ahead)
    client.checkout(
        FLOATING, PASSWORD, machine_name="CAD-WS-01", heartbeat=False, on_lost=calls.append
    )
    for _ in range(3):
        clock.advance(seconds=20)
        status = client.heartbeat()
        assert status.state == "live" and status.reason.startswith("Renewed until")
        assert status.next_heartbeat_at == ahead() + timedelta(seconds=20)
    assert checkouts(portal) == 1  # heartbeats, not a password check-out every beat
    portal.down = True  # a gap: retried while the lease lasts, by the server's period
    for _ in range(5):
        clock.advance(seconds=10)
        status = client.heartbeat()
        assert status.state == "retrying", status.reason
        assert status.next_heartbeat_at <= ahead() + timedelta(seconds=60)
    clock.advance(seconds=11)  # 61 s since the last answer: over
    status = client.heartbeat()
    assert status.state == "lost" and status.reason.startswith("The lease lapsed at")
    assert len(calls) == 1


def test_a_lease_lapsed_while_the_machine_slept_is_checked_out_again(office, clock, portal):
    client, lease = office("CAD-WS-01")
    clock.advance(hours=3)
    status = client.heartbeat()
    assert status.state == "live" and status.lease.expires_at == clock.now + PERIOD
    assert status.reason.startswith("The lease lapsed at")


def test_two_processes_of_one_installation_share_the_lease(office, make_client, clock, portal):
    first, lease = office("CAD-WS-01")
    second = make_client("CAD-WS-01")  # the product started twice: same folder, same ID
    assert second.checkout(heartbeat=False).lease_id == lease.lease_id  # a new token
    for _ in range(4):
        clock.advance(seconds=20)
        for client in (first, second):
            status = client.heartbeat()
            assert status.state == "live" and status.lease.lease_id == lease.lease_id
    assert first.lease_status().reason.startswith("Renewed until")
    assert checkouts(portal) == 2  # the two starts; no check-out back and forth every beat
    assert first.lease.token == second.lease.token
    assert len(portal.live_leases(FLOATING)) == 1
    stored = json.loads((first.data_dir / "lease.json").read_text())
    assert stored["lease"]["lease_token"] == first.lease.token


def test_the_first_beat_after_the_other_process_checked_out_adopts_its_token(
    office, make_client, clock, portal
):
    client, lease = office("CAD-WS-01")
    make_client("CAD-WS-01").checkout(heartbeat=False)
    clock.advance(seconds=20)
    status = client.heartbeat()  # 401, then the stored token
    assert status.state == "live" and status.lease.lease_id == lease.lease_id
    assert status.reason.startswith("Another process of this installation checked the lease")
    assert [status for path, status in portal.answers[-2:]] == [401, 200]


def test_a_checkout_while_a_heartbeat_is_on_its_way_keeps_the_newer_token(
    make_client, floating, clock, portal
):
    other = make_client("CAD-WS-01")

    class Interleaved(Transport):
        """The other process checks out just after this heartbeat reached the server."""

        def send(self, method, url, body, headers, timeout):
            response = portal.send(method, url, body, headers, timeout)
            if url.endswith("/heartbeat") and not done:
                done.append(other.checkout(heartbeat=False))
            return response

    done = []
    client = make_client("CAD-WS-01", transport=Interleaved())
    client.checkout(FLOATING, PASSWORD, machine_name="CAD-WS-01", heartbeat=False)
    clock.advance(seconds=20)
    status = client.heartbeat()
    assert status.state == "live" and status.lease.token == done[0].token
    stored = json.loads((client.data_dir / "lease.json").read_text())
    assert stored["lease"]["lease_token"] == done[0].token  # not this process's stale one
    clock.advance(seconds=20)
    assert client.heartbeat().state == "live"
    assert 401 not in [status for path, status in portal.answers]


def test_a_token_the_server_forgot_with_no_newer_one_stored_is_lost(
    office, make_client, clock, portal, tmp_path
):
    calls = []
    client, lease = office("CAD-WS-01", on_lost=calls.append)
    # the same installation ID with another data folder: nothing this process can adopt
    elsewhere = make_client("CAD-WS-01", data_dir=tmp_path / "elsewhere")
    elsewhere.checkout(FLOATING, PASSWORD, heartbeat=False)
    clock.advance(seconds=20)
    status = client.heartbeat()
    assert status.state == "lost" and status.error.code == "invalid_lease_token"
    assert status.reason.startswith("The server no longer knows this lease's token")
    assert checkouts(portal) == 2 and len(calls) == 1  # not taken back from the other
    assert client.validate(online=False).code == "LEASE_EXPIRED"
    assert elsewhere.heartbeat().state == "live"


def test_a_suspended_license_loses_the_lease(office, clock, portal):
    client, _ = office("CAD-WS-01")
    portal.licenses[FLOATING].status = "suspended"
    clock.advance(seconds=20)
    status = client.heartbeat()
    assert status.state == "lost" and status.error.code == "license_suspended"
    assert client.validate(online=False).code == "SUSPENDED"


def test_online_validation_of_a_lease(office, clock, portal):
    client, lease = office("CAD-WS-01")
    result = client.validate()
    assert result.valid and result.online and result.expires_at == lease.expires_at
    portal.revoke_lease(FLOATING, lease.lease_id)
    result = client.validate()
    assert result.code == "LEASE_EXPIRED" and result.online
    assert client.validate(online=False).code == "LEASE_EXPIRED"  # remembered


def test_unreachable_server_no_grace_beyond_the_lease(office, clock, portal):
    client, lease = office("CAD-WS-01")
    portal.down = True
    result = client.validate()
    assert (
        result.valid and not result.online and "the lease is valid until it ends" in result.reason
    )
    clock.advance(seconds=61)
    assert client.validate().code == "LEASE_EXPIRED"


def test_the_heartbeat_thread_beats_every_third_of_the_period(make_client, floating, clock):
    waited = []
    done = threading.Event()

    def wait(seconds):
        waited.append(seconds)
        clock.advance(seconds=seconds)
        if len(waited) == 4:
            client.checkin()  # from the thread itself, as a callback might
            done.set()

    client = make_client("CAD-WS-01", wait=wait)
    lease = client.checkout(FLOATING, PASSWORD)
    assert done.wait(10), "the heartbeat thread did not run"
    assert waited == [20.0, 20.0, 20.0, 20.0]
    assert client.lease_status().state == "none"
    assert lease.expires_at == START + PERIOD
    assert [x.status for x in floating.leases.values()] == ["checked_in"]


def test_an_unexpected_error_in_the_thread_reports_the_lease_lost(
    make_client, floating, clock, portal
):
    lost = []
    done = threading.Event()

    class Exploding(Transport):
        def __init__(self, inner):
            self.inner = inner

        def send(self, method, url, body, headers, timeout):
            if url.endswith("/heartbeat"):
                raise KeyError("a bug")
            return self.inner.send(method, url, body, headers, timeout)

    def wait(seconds):
        clock.advance(seconds=seconds)

    def on_lost(status):
        lost.append(status)
        done.set()

    client = make_client("CAD-WS-01", wait=wait, transport=Exploding(portal))
    client.checkout(FLOATING, PASSWORD, on_lost=on_lost)
    assert done.wait(10)
    assert lost[0].state == "lost" and "KeyError" in lost[0].reason


def test_borrowed_seat_validates_offline_in_a_later_process(make_client, floating, clock, portal):
    laptop = make_client("LAPTOP-7")
    lease = laptop.borrow(3, FLOATING, PASSWORD, machine_name="LAPTOP-7")
    assert lease.borrowed and lease.expires_at == START + timedelta(days=3)
    status = laptop.lease_status()
    assert status.state == "borrowed" and status.next_heartbeat_at is None
    # on the train: a new process, no network at all
    later = make_client("LAPTOP-7", transport=NoNetwork(), base_url="http://127.0.0.1:9")
    clock.advance(days=2)
    result = later.validate(online=False)
    assert result.valid and "borrowed lease is valid until 2030-01-18T09:00:00Z" in result.reason
    assert later.checkout() == lease  # the product's usual call: no network, no heartbeat
    assert later.lease_status().state == "borrowed"
    assert later.has_feature("anything") is False
    clock.advance(days=1, seconds=1)
    result = later.validate(online=False)
    assert result.code == "LEASE_EXPIRED" and not result


def test_a_borrowed_seat_is_taken_from_the_others(make_client, floating, office):
    make_client("LAPTOP-7").borrow(2, FLOATING, PASSWORD, machine_name="LAPTOP-7")
    office("CAD-WS-01")
    office("CAD-WS-02")
    with pytest.raises(NoSeatsAvailable) as caught:
        office("CAD-WS-03")
    laptop = caught.value.machines[0]
    assert (laptop, laptop.borrowed, laptop.expires_at) == (
        "LAPTOP-7",
        True,
        START + timedelta(days=2),
    )
    assert laptop.describe() == "LAPTOP-7 (borrowed until 2030-01-17 09:00 UTC)"


def test_checkin_returns_a_borrowed_seat_early(make_client, floating, portal):
    make_client("LAPTOP-7").borrow(3, FLOATING, PASSWORD)
    back = make_client("LAPTOP-7")  # back in the office, a later process
    assert back.checkin().borrowed
    assert portal.live_leases(FLOATING) == []
    assert back.validate(online=False).code == "NOT_ACTIVATED"


def test_a_borrowed_seat_needs_the_licenses_permission(make_client, floating, portal):
    with pytest.raises(BorrowNotAllowed) as caught:
        make_client().borrow(8, FLOATING, PASSWORD)
    assert caught.value.max_borrow_days == 7
    assert caught.value.latest == START + timedelta(days=7)
    floating.max_borrow_days = 0
    with pytest.raises(BorrowNotAllowed) as caught:
        make_client().borrow(1, FLOATING, PASSWORD)
    assert caught.value.max_borrow_days == 0
    with pytest.raises(ValueError):
        make_client().borrow(0, FLOATING, PASSWORD)
    assert portal.live_leases(FLOATING) == []


def test_checkin_that_cannot_reach_the_server_keeps_the_lease(make_client, floating, portal):
    client = make_client("LAPTOP-7")
    client.borrow(3, FLOATING, PASSWORD)
    portal.down = True
    with pytest.raises(NetworkError):
        client.checkin()
    assert client.validate(online=False).valid
    portal.down = False
    client.checkin()
    assert portal.live_leases(FLOATING) == []


def test_the_model_decides_activation_or_lease(make_client, floating):
    with pytest.raises(NodeLockedLicense):
        make_client().checkout(NODE_LOCKED, PASSWORD, heartbeat=False)
    with pytest.raises(FloatingLicense):
        make_client().activate(FLOATING, PASSWORD)


def test_a_lease_of_another_product_is_given_back(make_client, floating, portal):
    with pytest.raises(LicenseError) as caught:
        make_client(product="other").checkout(FLOATING, PASSWORD, heartbeat=False)
    assert caught.value.code == "wrong_product"
    assert portal.live_leases(FLOATING) == []


def test_checkin_at_exit(make_client, floating, portal, monkeypatch):
    registered = []
    monkeypatch.setattr(lease_module.atexit, "register", registered.append)
    original = signal.getsignal(signal.SIGTERM)
    waits = threading.Event()
    client = make_client("CAD-WS-01", wait=lambda seconds: waits.wait())
    client.checkout(FLOATING, PASSWORD)
    try:
        assert len(registered) == 1
        registered[0]()
        assert portal.live_leases(FLOATING) == []
        assert client.lease_status().state == "none"
        registered[0]()  # again, with nothing held: harmless
    finally:
        waits.set()
        signal.signal(signal.SIGTERM, original)


def test_a_borrowed_seat_stays_borrowed_at_exit(make_client, floating, portal):
    client = make_client("LAPTOP-7")
    client.borrow(3, FLOATING, PASSWORD)
    client._leases.at_exit()
    assert len(portal.live_leases(FLOATING)) == 1


def test_sigterm_checks_in_then_chains_to_the_programs_handler(make_client, floating, portal):
    seen = []

    def programs_handler(signum, frame):
        seen.append((signum, len(portal.live_leases(FLOATING))))

    original = signal.signal(signal.SIGTERM, programs_handler)
    waits = threading.Event()
    try:
        client = make_client("CAD-WS-01", wait=lambda seconds: waits.wait())
        client.checkout(FLOATING, PASSWORD)
        assert signal.getsignal(signal.SIGTERM) != programs_handler
        signal.raise_signal(signal.SIGTERM)
        assert seen == [(signal.SIGTERM, 0)]  # checked in before the program's handler ran
        assert signal.getsignal(signal.SIGTERM) == programs_handler  # put back
    finally:
        waits.set()
        signal.signal(signal.SIGTERM, original)


def test_sigterm_handlers_that_chain_to_each_other_run_once(make_client, floating, portal):
    seen = []

    def first_handler(signum, frame):
        seen.append("first")

    signal.signal(signal.SIGTERM, first_handler)
    waits = threading.Event()
    try:
        client = make_client("CAD-WS-01", wait=lambda seconds: waits.wait())
        client.checkout(FLOATING, PASSWORD)
        ours = signal.getsignal(signal.SIGTERM)

        def programs_handler(signum, frame):  # set after ours, and chains to it
            seen.append("program")
            ours(signum, frame)

        signal.signal(signal.SIGTERM, programs_handler)
        client.checkin()  # the program's handler stays
        client.checkout()  # ours again, now chaining to the program's, which chains to ours
        signal.raise_signal(signal.SIGTERM)
        assert seen == ["program", "first"]
        assert portal.live_leases(FLOATING) == []
    finally:
        waits.set()


def test_a_checkout_without_a_thread_is_checked_in_at_exit_and_on_sigterm(
    office, portal, exit_hooks
):
    seen = []

    def programs_handler(signum, frame):
        seen.append(len(portal.live_leases(FLOATING)))

    signal.signal(signal.SIGTERM, programs_handler)
    office("CAD-WS-01")
    assert len(exit_hooks) == 1 and signal.getsignal(signal.SIGTERM) != programs_handler
    signal.raise_signal(signal.SIGTERM)
    assert seen == [0]  # checked in before the program's handler ran
    second, _ = office("CAD-WS-02")
    assert len(exit_hooks) == 2
    exit_hooks[1]()
    assert portal.live_leases(FLOATING) == [] and second.lease_status().state == "none"


def test_an_ignored_sigterm_stays_ignored(make_client, floating):
    original = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    waits = threading.Event()
    try:
        client = make_client("CAD-WS-01", wait=lambda seconds: waits.wait())
        client.checkout(FLOATING, PASSWORD)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        client.checkin()
    finally:
        waits.set()
        signal.signal(signal.SIGTERM, original)


def test_checkin_puts_the_previous_sigterm_handler_back(make_client, floating):
    original = signal.getsignal(signal.SIGTERM)
    waits = threading.Event()
    try:
        client = make_client("CAD-WS-01", wait=lambda seconds: waits.wait())
        client.checkout(FLOATING, PASSWORD)
        assert signal.getsignal(signal.SIGTERM) != original
        client.checkin()
        assert signal.getsignal(signal.SIGTERM) == original
    finally:
        waits.set()
        signal.signal(signal.SIGTERM, original)


def test_no_signal_handler_from_another_thread(make_client, floating):
    original = signal.getsignal(signal.SIGTERM)
    waits = threading.Event()
    client = make_client("CAD-WS-01", wait=lambda seconds: waits.wait())
    worker = threading.Thread(target=client.checkout, args=(FLOATING, PASSWORD))
    worker.start()
    worker.join(10)
    try:
        assert client.lease_status().state == "live"
        assert signal.getsignal(signal.SIGTERM) == original
    finally:
        waits.set()
        client.checkin()


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (409, "node_locked_license", NodeLockedLicense),
        (409, "floating_license", FloatingLicense),
        (422, "borrow_not_allowed", BorrowNotAllowed),
        (410, "lease_expired", LeaseExpired),
    ],
)
def test_lease_error_codes_map_to_their_errors(status, code, cls):
    error = from_response(status, {"error": {"code": code, "message": "m", "details": {}}})
    assert type(error) is cls and error.status == status


def test_seat_holders_are_machine_names():
    holder = SeatHolder("CAD-WS-01", START, borrowed=False)
    assert holder == "CAD-WS-01" and holder.machine_name == "CAD-WS-01"
    assert holder.describe() == "CAD-WS-01 (until 2030-01-15 09:00 UTC)"
    assert SeatHolder("old server").describe() == "old server"
