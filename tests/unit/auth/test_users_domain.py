"""The rules of a company's users as plain functions (services/auth/domain.py)."""

from __future__ import annotations

import re

import pytest

from services.auth import domain


def test_user_ids_look_like_license_ids_with_a_u() -> None:
    ids = {domain.new_user_id() for _ in range(200)}
    assert len(ids) == 200
    for user_id in ids:
        assert re.fullmatch(r"U-[23456789A-HJKMNP-Z]{4}-[23456789A-HJKMNP-Z]{4}", user_id)
        assert not set(user_id) & set("01ILO")


def test_the_accept_link_carries_the_token_in_the_fragment() -> None:
    assert (
        domain.accept_url("https://portal.example", "abc")
        == "https://portal.example/accept-invitation#token=abc"
    )


@pytest.mark.parametrize(
    ("role", "available", "on"),
    [
        ("owner", domain.NOTICES, domain.NOTICES),
        (
            "license_admin",
            ("installation_activated", "license_expiring", "seats_exhausted"),
            domain.LICENSE_NOTICES,  # seats in use: only if they turn it on
        ),
        ("billing", ("receipts", "payment_failed"), domain.BILLING_NOTICES),
        ("viewer", ("installation_activated", "license_expiring"), ()),
    ],
)
def test_notices_per_role_and_their_defaults(role, available, on) -> None:
    assert domain.notices_of(role) == available
    defaults = domain.default_preferences(role)
    assert set(defaults) == set(domain.NOTICES)
    assert {notice for notice, value in defaults.items() if value} == set(on)


def test_a_new_role_keeps_only_the_notices_it_may_receive() -> None:
    everything = dict.fromkeys(domain.NOTICES, True)
    assert domain.preferences_for_role(everything, "billing") == {
        "installation_activated": False,
        "license_expiring": False,
        "receipts": True,
        "payment_failed": True,
        "seats_exhausted": False,
    }
    assert domain.preferences_for_role(everything, "license_admin") == {
        "installation_activated": True,
        "license_expiring": True,
        "receipts": False,
        "payment_failed": False,
        "seats_exhausted": True,
    }
    nothing = dict.fromkeys(domain.NOTICES, False)
    assert domain.preferences_for_role(nothing, "owner") == nothing  # nothing turned on


def test_refused_notices_are_those_turned_on_beyond_the_role() -> None:
    changes = {"receipts": True, "payment_failed": False, "license_expiring": True}
    assert domain.refused_notices(changes, "viewer") == ["receipts"]
    assert domain.refused_notices(changes, "owner") == []
    assert domain.refused_notices({"installation_activated": False}, "billing") == []
    seats = {"seats_exhausted": True}
    assert [domain.refused_notices(seats, role) for role in domain.ROLES] == [
        [],  # owner
        [],  # license_admin
        ["seats_exhausted"],  # billing
        ["seats_exhausted"],  # viewer
    ]


@pytest.mark.parametrize(
    ("owners", "user_id", "after", "refused"),
    [
        ({"U-A"}, "U-A", False, True),  # the only active owner leaves
        ({"U-A"}, "U-A", True, False),  # stays an active owner (a name change)
        ({"U-A", "U-B"}, "U-A", False, False),  # another remains
        ({"U-A"}, "U-B", False, False),  # not an active owner: takes none away
        (set(), "U-B", False, False),  # none at all (contact without password): no worse
    ],
)
def test_the_last_active_owner_rule(owners, user_id, after, refused) -> None:
    assert domain.leaves_no_active_owner(owners, user_id, after) is refused
