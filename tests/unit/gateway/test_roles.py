"""gateway.roles: the session's role decides, and a role nobody declared may do nothing."""

from __future__ import annotations

import pytest

from common.errors import Forbidden
from gateway import roles


def session(role: str | None) -> dict:
    return {"customer_id": "C1234567", "user": {"user_id": "U-AAAA-BBBB", "role": role}}


@pytest.mark.parametrize("role", roles.ROLES)
def test_each_role_passes_where_it_is_named_and_nowhere_else(role):
    roles.check(session(role), (role,))
    others = tuple(other for other in roles.ROLES if other != role)
    with pytest.raises(Forbidden) as refused:
        roles.check(session(role), others)
    assert refused.value.details == {"required_roles": list(others), "role": role}


@pytest.mark.parametrize("role", ["auditor", "", None, "OWNER"])
def test_a_role_this_gateway_does_not_know_may_do_nothing(role):
    assert roles.role_of(session(role)) is None
    assert not roles.may(session(role), roles.EVERYONE)
    with pytest.raises(Forbidden):
        roles.check(session(role), roles.EVERYONE)


def test_a_session_of_an_auth_without_users_is_its_owner():
    assert roles.role_of({"customer_id": "C1234567"}) == roles.OWNER
