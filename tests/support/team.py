"""A company with a team, made the way customers make one: the contact logs in, invites
users over HTTP, each invitation email arrives in the SMTP sink, and each user accepts with
the token from its link and logs in (tests/e2e/test_roles.py, test_team_accounts.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from common.rpc import StandaloneRpc, standalone_client
from tests.support.smtp_sink import SmtpSink, text_body

PASSWORD = "Winter-Orchard-42"
INVITATION_LINK = re.compile(r"(https?://\S+/accept-invitation#token=([A-Za-z0-9_\-]+))")
ROLES = ("owner", "license_admin", "billing", "viewer")


def unique_email(label: str) -> str:
    return f"{label}.{uuid.uuid4().hex[:10]}@example.test"


def new_company(suite: Any, password: str | None = PASSWORD, name: str = "Acme Team") -> dict:
    """A company made by staff (`portalctl company create`); its contact is its first owner."""
    args = ["company", "create", "--name", name, "--contact-name", "Ada"]
    args += ["--email", unique_email("owner")]
    if password:
        args += ["--password", password]
    return suite.portalctl(*args)


@contextmanager
def staff_rpc(suite: Any) -> Iterator[StandaloneRpc]:
    """RPC as staff (what portalctl does), for what only staff can do."""
    context = {"request_key": uuid.uuid4().hex}
    with standalone_client(20, suite.env_of("staff")["AMQP_URI"], context) as rpc:
        yield rpc


def invitation(
    sink: SmtpSink, email: str, seen: set[str] | None = None, timeout: float = 20
) -> tuple[EmailMessage, str, str]:
    """The invitation email to `email` (one whose token is not in `seen`): (message, link,
    token)."""
    seen = seen or set()

    def wanted(message: EmailMessage) -> bool:
        if email.lower() not in (message["To"] or "").lower():
            return False
        found = INVITATION_LINK.search(text_body(message))
        return found is not None and found.group(2) not in seen

    message = sink.wait_for(wanted, timeout=timeout)
    found = INVITATION_LINK.search(text_body(message))
    assert found is not None
    return message, found.group(1), found.group(2)


@dataclass
class Member:
    user: dict[str, Any]
    email: str
    password: str
    token: str


@dataclass
class Team:
    """A company with one user of each role (`members[role]`); the owner is the contact."""

    company: dict[str, Any]
    members: dict[str, Member] = field(default_factory=dict)

    def token(self, role: str) -> str:
        return self.members[role].token


def invite(api: Any, owner_token: str, email: str, name: str, role: str) -> dict[str, Any]:
    response = api.post(
        "/api/v1/users", token=owner_token, json={"email": email, "name": name, "role": role}
    )
    assert response.status_code == 201, response.text
    return response.json()


def join(
    api: Any, sink: SmtpSink, owner_token: str, role: str, name: str, password: str = PASSWORD
) -> Member:
    """Invite a user of `role`, accept from the emailed link, log in: the new member."""
    email = unique_email(role.replace("_", "-"))
    user = invite(api, owner_token, email, name, role)
    _, _, token = invitation(sink, email)
    accepted = api.post("/api/v1/invitations/accept", json={"token": token, "password": password})
    assert accepted.status_code == 204, accepted.text
    return Member(user, email, password, api.login(email, password))


def new_team(suite: Any, api: Any, sink: SmtpSink) -> Team:
    """A company and its contact (owner) with a license admin, a billing user and a viewer."""
    company = new_company(suite)
    owner_token = api.login(company["contact_email"], PASSWORD)
    me = api.get("/api/v1/account", token=owner_token).json()["user"]
    team = Team(company)
    team.members["owner"] = Member(me, company["contact_email"], PASSWORD, owner_token)
    for role, name in (("license_admin", "Lin"), ("billing", "Bill"), ("viewer", "Vic")):
        team.members[role] = join(api, sink, owner_token, role, name)
    return team
