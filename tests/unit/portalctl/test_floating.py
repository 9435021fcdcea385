"""portalctl's floating-license commands (DESIGN §13): `license issue --model floating`,
`plan create --model floating`, `license show` of a floating license, `license leases` and
`license revoke-lease`: what they send and what they print."""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.errors import PortalError
from portalctl import cli
from tests.unit.portalctl.test_cli import FakeBus, run

LICENSE = "L-7KQX-M2PD"
LEASES = [
    {
        "lease_id": "LS-AAAA-2222",
        "license_id": LICENSE,
        "installation_id": "ws07",
        "machine_name": "CAD-WS-07",
        "started_at": "2026-12-02T09:00:00+00:00",
        "expires_at": "2026-12-02T09:15:00+00:00",
        "last_heartbeat_at": "2026-12-02T09:00:00+00:00",
        "borrowed": False,
        "borrowed_until": None,
        "status": "live",
        "ended_at": None,
    },
    {
        "lease_id": "LS-BBBB-3333",
        "license_id": LICENSE,
        "installation_id": "laptop",
        "machine_name": "LAPTOP-3",
        "started_at": "2026-12-02T10:00:00+00:00",
        "expires_at": "2026-12-05T10:00:00+00:00",
        "last_heartbeat_at": "2026-12-02T10:00:00+00:00",
        "borrowed": True,
        "borrowed_until": "2026-12-05T10:00:00+00:00",
        "status": "live",
        "ended_at": None,
    },
]


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> FakeBus:
    fake = FakeBus()
    monkeypatch.setattr(cli, "standalone_client", fake.standalone_client)
    return fake


def floating_license(**changes: Any) -> dict[str, Any]:
    return {
        "license_id": LICENSE,
        "product": {"code": "cadpro", "name": "CAD Pro"},
        "seats": 10,
        "seats_in_use": 2,
        "model": "floating",
        "lease_seconds": 900,
        "max_borrow_days": 7,
        "leases": LEASES,
        "usage": {"peak_30d": 2, "days": [{"date": "2026-12-02", "peak": 2}]},
        **changes,
    }


ISSUE = ["license", "issue", "--customer", "c1", "--product", "cadpro", "--seats", "10"]
PLAN = ["plan", "create", "--code", "p", "--product", "cadpro", "--amount", "49.00"]
PLAN += ["--currency", "EUR", "--interval", "month"]


@pytest.mark.parametrize(
    ("extra", "terms"),
    [
        (["--model", "floating"], {"model": "floating"}),  # the service's defaults
        (
            ["--model", "floating", "--lease-seconds", "300", "--max-borrow-days", "0"],
            {"model": "floating", "lease_seconds": 300, "max_borrow_days": 0},
        ),
        # passed on as typed: the service says which is wrong (numbers need floating)
        (["--lease-seconds", "300"], {"lease_seconds": 300}),
        ([], {}),  # as before floating licenses
    ],
)
def test_issue_and_plan_create_send_the_model_and_its_numbers_as_typed(
    bus, capsys, extra: list[str], terms: dict[str, Any]
) -> None:
    bus.answers["licensing.issue_license"] = floating_license()
    code, _, err = run(capsys, *ISSUE, *extra, "--json")
    assert code == 0, err
    sent = bus.calls[0]["args"][0]
    assert sent == {
        "customer_id": "C1",
        "product": "cadpro",
        "seats": 10,
        "expires_at": None,
        **terms,
    }
    code, _, err = run(capsys, *PLAN, *extra, "--json")
    assert code == 0, err
    assert bus.calls[-1]["method"] == "billing.create_plan"
    assert bus.calls[-1]["args"][0] == {
        "code": "p",
        "product_code": "cadpro",
        "amount": 4900,
        "currency": "EUR",
        "interval": "month",
        **terms,
    }


def test_an_unknown_model_or_a_number_that_is_no_number_is_a_usage_error(bus, capsys) -> None:
    for extra in (["--model", "concurrent"], ["--model", "floating", "--lease-seconds", "9m"]):
        code, _, err = run(capsys, *ISSUE, *extra)
        assert code == 2 and "See `portalctl license issue --help`" in err
    assert bus.calls == []


def test_show_names_the_model_period_borrowing_and_live_leases(bus, capsys) -> None:
    bus.answers["licensing.get_license"] = floating_license()
    code, out, err = run(capsys, "license", "show", LICENSE.lower())
    assert code == 0, err
    assert bus.calls[0]["args"] == (LICENSE,)
    assert "model            floating" in out
    assert "lease_seconds    900 s (15 min)" in out
    assert "max_borrow_days  7 days" in out
    assert (
        "- LS-AAAA-2222  CAD-WS-07  since 2026-12-02 09:00:00 UTC"
        "  expires 2026-12-02 09:15:00 UTC\n" in out
    )
    assert "LAPTOP-3" in out and "borrowed until 2026-12-05 10:00:00 UTC" in out
    # --json: licensing's answer unchanged
    code, out, _ = run(capsys, "license", "show", LICENSE, "--json")
    assert json.loads(out) == floating_license()


def test_show_of_a_floating_license_that_allows_no_borrowing(bus, capsys) -> None:
    bus.answers["licensing.get_license"] = floating_license(
        max_borrow_days=0, lease_seconds=3600, leases=[]
    )
    _, out, _ = run(capsys, "license", "show", LICENSE)
    assert "max_borrow_days  not allowed" in out and "lease_seconds    3600 s (1 h)" in out


def test_show_of_a_node_locked_license_is_as_before(bus, capsys) -> None:
    answer = {"license_id": LICENSE, "model": "node_locked", "lease_seconds": None, "leases": []}
    bus.answers["licensing.get_license"] = answer
    _, out, _ = run(capsys, "license", "show", LICENSE)
    assert "node_locked" in out and " s (" not in out


def test_leases_lists_the_live_leases_as_a_table(bus, capsys) -> None:
    bus.answers["licensing.list_leases"] = LEASES
    code, out, err = run(capsys, "license", "leases", "l-7kqx-m2pd")
    assert code == 0, err
    assert (bus.calls[0]["method"], bus.calls[0]["args"], bus.calls[0]["kwargs"]) == (
        "licensing.list_leases",
        (LICENSE,),
        {},
    )
    header, first, second = out.splitlines()
    assert header.split("  ")[0] == "Lease ID" and "Borrowed until" in header
    assert "Status" not in header
    assert first.startswith("LS-AAAA-2222  CAD-WS-07")
    assert "2026-12-02 09:00:00 UTC" in first and "2026-12-02 09:15:00 UTC" in first
    assert second.rstrip().endswith("2026-12-05 10:00:00 UTC")  # borrowed until
    code, out, _ = run(capsys, "license", "leases", LICENSE, "--json")
    assert json.loads(out) == LEASES


def test_leases_all_asks_for_ended_ones_and_shows_how_they_ended(bus, capsys) -> None:
    ended = {**LEASES[0], "status": "revoked", "ended_at": "2026-12-02T09:05:00+00:00"}
    bus.answers["licensing.list_leases"] = [ended]
    _, out, _ = run(capsys, "license", "leases", LICENSE, "--all")
    assert bus.calls[0]["kwargs"] == {"include_ended": True}
    header, row = out.splitlines()
    assert "Status" in header and "Ended" in header
    assert "revoked" in row and row.rstrip().endswith("2026-12-02 09:05:00 UTC")
    bus.answers["licensing.list_leases"] = []
    _, out, _ = run(capsys, "license", "leases", LICENSE)
    assert out.strip() == "(none)"


def test_revoke_lease_is_staffs_call_with_no_company(bus, capsys) -> None:
    bus.answers["licensing.revoke_lease"] = {**LEASES[0], "status": "revoked"}
    code, out, err = run(capsys, "license", "revoke-lease", LICENSE, " ls-aaaa-2222 ", "--json")
    assert code == 0, err
    call = bus.calls[0]
    assert (call["method"], call["args"]) == (
        "licensing.revoke_lease",
        (None, LICENSE, "LS-AAAA-2222"),
    )
    assert call["context"]["actor"]["type"] == "staff"
    assert json.loads(out)["status"] == "revoked"


def test_a_lease_that_is_not_found_is_one_line(bus, capsys) -> None:
    bus.answers["licensing.revoke_lease"] = PortalError(
        "No lease LS-AAAA-9999 on this license.", code="lease_not_found"
    )
    code, out, err = run(capsys, "license", "revoke-lease", LICENSE, "LS-AAAA-9999")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "LS-AAAA-9999" in err
