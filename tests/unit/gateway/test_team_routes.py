"""Team accounts at the gateway, with the services faked: the users routes, invitations,
notification preferences, the merged audit trail (JSON and CSV), and the role check of every
session route (a refused role never reaches a service)."""

from __future__ import annotations

import csv
import inspect
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from nameko.testing.services import worker_factory
from werkzeug.wrappers import Response

from common import audit
from common.context import ACTOR
from common.errors import PortalError
from gateway import audit_trail, openapi, roles, schemas, views
from gateway.errors import status_for
from gateway.http import ROUTES, JsonRoute, RouteSpec
from gateway.service import GatewayService
from tests.unit.gateway.support import USER, FakeAuth, make_request

CUSTOMER = "C1000001"
GRACE = {
    "user_id": "U-GRCE-0001",
    "email": "grace@acme.test",
    "name": "Grace",
    "role": "license_admin",
    "status": "invited",
    "contact": False,
    "created_at": "2026-03-01T08:00:00+00:00",
    "last_login_at": None,
    "invitation_expires_at": "2026-03-08T08:00:00+00:00",
}
# auth's view may hold more than a client sees
GRACE_VIEW = {**GRACE, "customer_id": CUSTOMER, "password_hash": "argon2id$…"}
PREFERENCES = {
    "preferences": {
        "installation_activated": True,
        "license_expiring": True,
        "receipts": False,
        "payment_failed": False,
        "seats_exhausted": False,
    },
    "available": ["installation_activated", "license_expiring", "seats_exhausted"],
}
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class TeamAuth(FakeAuth):
    """FakeAuth that also manages users and has a part of the audit trail."""

    def __init__(self, role: str = "owner", events: list[dict] | None = None) -> None:
        super().__init__(role=role)
        self.trail = Trail(events or [])

    def list_users(self, customer_id: str) -> dict:
        self.calls.append(("list_users", customer_id))
        return {"users": [GRACE_VIEW]}

    def invite_user(self, customer_id: str, body: dict) -> dict:
        self.calls.append(("invite_user", customer_id, body))
        return GRACE_VIEW

    def update_user(self, customer_id: str, user_id: str, body: dict) -> dict:
        self.calls.append(("update_user", customer_id, user_id, body))
        return {**GRACE_VIEW, **body}

    def remove_user(self, customer_id: str, user_id: str) -> None:
        self.calls.append(("remove_user", customer_id, user_id))
        if user_id == USER["user_id"]:
            raise PortalError("The company needs an active owner.", code="last_owner")

    def disable_user(self, customer_id: str, user_id: str) -> dict:
        self.calls.append(("disable_user", customer_id, user_id))
        return {**GRACE_VIEW, "status": "disabled"}

    def enable_user(self, customer_id: str, user_id: str) -> dict:
        self.calls.append(("enable_user", customer_id, user_id))
        return {**GRACE_VIEW, "status": "active"}

    def resend_invitation(self, customer_id: str, user_id: str) -> dict:
        self.calls.append(("resend_invitation", customer_id, user_id))
        return GRACE_VIEW

    def accept_invitation(self, body: dict) -> None:
        self.calls.append(("accept_invitation", body))

    def get_notification_preferences(self, customer_id: str, user_id: str) -> dict:
        self.calls.append(("get_notification_preferences", customer_id, user_id))
        return PREFERENCES

    def update_notification_preferences(self, customer_id: str, user_id: str, body: dict) -> dict:
        self.calls.append(("update_notification_preferences", customer_id, user_id, body))
        return PREFERENCES

    def list_audit_events(self, customer_id: str, query: dict) -> list[dict]:
        return self.trail.list_audit_events(customer_id, query)


class Trail:
    """One service's part of the trail, answering pages as `common.audit.page` does."""

    def __init__(self, events: list[dict]) -> None:
        self.events = sorted(events, key=audit._position, reverse=True)
        self.queries: list[dict] = []

    def list_audit_events(self, customer_id: str, query: dict) -> list[dict]:
        self.queries.append(query)
        wanted = audit.query_from(customer_id, query)
        found = [
            event
            for event in self.events
            if (wanted.before is None or audit._position(event) < wanted.before)
            and (wanted.user_id is None or event["actor"].get("user_id") == wanted.user_id)
            and (wanted.action is None or event["action"] == wanted.action)
        ]
        return found[: wanted.limit]


def event(n: int, action: str = "login_succeeded", **actor: Any) -> dict:
    """The n-th event (n minutes after T0), by Ada unless another actor is given."""
    return {
        "event_id": f"{n:032x}",
        "at": (T0 + timedelta(minutes=n)).isoformat(),
        "actor": actor or {"type": "user", "user_id": USER["user_id"], "email": USER["email"]},
        "action": action,
        "target": {"type": "license", "id": f"L-{n:04d}"},
        "details": {"n": n},
    }


def gateway(
    role: str = "owner",
    auth: TeamAuth | None = None,
    licensing: Any = None,
    billing: Any = None,
) -> GatewayService:
    return worker_factory(
        GatewayService,
        auth=auth or TeamAuth(role),
        licensing=licensing or mock.Mock(),
        billing=billing or mock.Mock(),
    )


# --- users --------------------------------------------------------------------------------


def test_owners_list_invite_and_change_users_of_the_session_company_only() -> None:
    auth = TeamAuth()
    service = gateway(auth=auth)
    assert service.list_users(make_request()) == {"users": [GRACE]}
    invite = {"email": "grace@acme.test", "name": "Grace", "role": "license_admin"}
    assert service.invite_user(make_request("POST"), body=invite) == GRACE
    changed = service.update_user(make_request("PATCH"), "U-GRCE-0001", body={"role": "viewer"})
    assert changed == {**GRACE, "role": "viewer"}
    assert service.disable_user(make_request("POST"), "U-GRCE-0001")["status"] == "disabled"
    assert service.enable_user(make_request("POST"), "U-GRCE-0001")["status"] == "active"
    assert service.resend_invitation(make_request("POST"), "U-GRCE-0001") == GRACE
    assert service.remove_user(make_request("DELETE"), "U-GRCE-0001") is None
    assert [call for call in auth.calls if call[0] != "authenticate"] == [
        ("list_users", CUSTOMER),
        ("invite_user", CUSTOMER, invite),
        ("update_user", CUSTOMER, "U-GRCE-0001", {"role": "viewer"}),
        ("disable_user", CUSTOMER, "U-GRCE-0001"),
        ("enable_user", CUSTOMER, "U-GRCE-0001"),
        ("resend_invitation", CUSTOMER, "U-GRCE-0001"),
        ("remove_user", CUSTOMER, "U-GRCE-0001"),
    ]


def test_the_session_user_becomes_the_actor_of_every_call() -> None:
    data: dict[str, Any] = {}
    service = worker_factory(GatewayService, auth=TeamAuth(), context_data=data)
    service.list_users(make_request())
    assert data[ACTOR] == {
        "type": "user",
        "user_id": USER["user_id"],
        "email": USER["email"],
    }


def test_removing_the_last_owner_is_a_409() -> None:
    with pytest.raises(PortalError) as caught:
        gateway().remove_user(make_request("DELETE"), USER["user_id"])
    assert caught.value.code == "last_owner"
    assert status_for("last_owner") == 409


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("user_not_found", 404),
        ("last_owner", 409),
        ("contact_is_owner", 409),
        ("invitation_not_pending", 409),
    ],
)
def test_the_new_error_codes_have_their_status(code: str, status: int) -> None:
    assert status_for(code) == status


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not an email", "name": "Grace", "role": "viewer"},
        {"email": "grace@acme.test", "name": "Grace", "role": "admin"},
        {"email": "grace@acme.test", "name": "Gr\nace", "role": "viewer"},
        {"email": "grace@acme.test", "role": "viewer"},
        {"email": "grace@acme.test", "name": "Grace", "role": "viewer", "password": "x"},
    ],
)
def test_a_bad_invitation_is_refused_naming_the_field(body: dict) -> None:
    with pytest.raises(Exception) as caught:
        schemas.InviteBody().load(body)
    assert caught.type.__name__ == "ValidationError"


def test_a_patch_needs_a_name_or_a_role() -> None:
    assert schemas.UpdateUserBody().load({"name": "Grace H."}) == {"name": "Grace H."}
    for body in ({}, {"role": "root"}, {"email": "x@y.test"}):
        with pytest.raises(Exception) as caught:
            schemas.UpdateUserBody().load(body)
        assert caught.type.__name__ == "ValidationError"


def test_accepting_an_invitation_needs_no_session() -> None:
    auth = TeamAuth()
    body = {"token": "tok", "password": "Harbour-Lantern-97"}
    assert gateway(auth=auth).accept_invitation(make_request("POST", token=None), body=body) is None
    assert auth.calls == [("accept_invitation", body)]


# --- notification preferences: the session's own user -----------------------------------


@pytest.mark.parametrize("role", roles.ROLES)
def test_every_role_reads_and_changes_its_own_notices(role: str) -> None:
    auth = TeamAuth(role)
    service = gateway(auth=auth)
    assert service.get_notifications(make_request()) == PREFERENCES
    body = {"preferences": {"license_expiring": False}}
    assert service.update_notifications(make_request("PUT"), body=body) == PREFERENCES
    assert auth.calls[1] == ("get_notification_preferences", CUSTOMER, USER["user_id"])
    assert auth.calls[3] == ("update_notification_preferences", CUSTOMER, USER["user_id"], body)


def test_notices_are_booleans_of_known_names() -> None:
    load = schemas.NotificationPreferencesBody().load
    assert load({"preferences": {"receipts": True}}) == {"preferences": {"receipts": True}}
    assert load({"preferences": {}}) == {"preferences": {}}
    for bad in (
        {"preferences": {"receipts": "yes"}},
        {"preferences": {"receipts": 1}},
        {"preferences": {"receipts": None}},
        {"preferences": {"spam": True}},
        {"preferences": ["receipts"]},
        {},
    ):
        with pytest.raises(Exception) as caught:
            load(bad)
        assert caught.type.__name__ == "ValidationError", bad


def test_preferences_answer_exactly_the_five_notices() -> None:
    answer = {"preferences": {"receipts": True, "secret": 1}, "available": ["receipts"]}
    assert schemas.NotificationPreferencesOut().dump(answer) == {
        "preferences": {
            "installation_activated": None,
            "license_expiring": None,
            "receipts": True,
            "payment_failed": None,
            "seats_exhausted": None,
        },
        "available": ["receipts"],
    }


# --- the audit trail ----------------------------------------------------------------------


def three_trails(count: int) -> tuple[TeamAuth, Trail, Trail]:
    """`count` events dealt round-robin to auth, licensing and billing."""
    parts: list[list[dict]] = [[], [], []]
    for n in range(count):
        parts[n % 3].append(event(n))
    return TeamAuth(events=parts[0]), Trail(parts[1]), Trail(parts[2])


def test_the_trail_is_the_three_parts_merged_newest_first_in_pages() -> None:
    auth, licensing, billing = three_trails(10)
    service = gateway(auth=auth, licensing=licensing, billing=billing)
    first = service.audit_events(make_request(query_string={"limit": "4"}))
    assert [e["event_id"] for e in first["events"]] == [event(n)["event_id"] for n in (9, 8, 7, 6)]
    assert first["events"][0] == event(9)
    seen = [e["event_id"] for e in first["events"]]
    cursor = first["next_before"]
    while cursor:
        page = service.audit_events(make_request(query_string={"limit": "4", "before": cursor}))
        seen += [e["event_id"] for e in page["events"]]
        cursor = page["next_before"]
    assert seen == [event(n)["event_id"] for n in range(9, -1, -1)]


def test_the_trail_filters_go_to_every_service() -> None:
    auth, licensing, billing = three_trails(6)
    service = gateway(auth=auth, licensing=licensing, billing=billing)
    query = {
        "user_id": "u-grce-0001",
        "action": "purchase",
        "since": "2026-03-01",
        "until": "2026-03-02T00:00:00+00:00",
    }
    assert service.audit_events(make_request(query_string=query)) == {
        "events": [],
        "next_before": None,
    }
    for asked in (auth.trail.queries, licensing.queries, billing.queries):
        assert asked[0]["user_id"] == "U-GRCE-0001"  # canonical
        assert asked[0]["action"] == "purchase"
        assert asked[0]["since"].startswith("2026-03-01T00:00:00")
        assert asked[0]["limit"] == audit.PAGE_DEFAULT


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "x"},
        {"action": "dance"},
        {"before": "not a cursor"},
        {"since": "yesterday"},
        {"format": "xml"},
        {"colour": "red"},
    ],
)
def test_a_bad_trail_query_is_a_422_naming_it_before_any_service_is_asked(query: dict) -> None:
    auth, licensing, billing = three_trails(3)
    service = gateway(auth=auth, licensing=licensing, billing=billing)
    with pytest.raises(PortalError) as caught:
        service.audit_events(make_request(query_string=query))
    assert caught.value.code == "validation_error"
    assert set(query) <= set(caught.value.details["fields"])
    assert auth.trail.queries == licensing.queries == billing.queries == []


def csv_rows(response: Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ({"format": "csv"}, {}),
        ({}, {"Accept": "text/csv"}),
        ({}, {"Accept": "text/csv, application/json;q=0.5"}),
    ],
)
def test_the_trail_as_csv_is_a_download_of_every_event(query: dict, headers: dict) -> None:
    auth, licensing, billing = three_trails(450)  # more than two pages of 200
    service = gateway(auth=auth, licensing=licensing, billing=billing)
    response = service.audit_events(make_request(query_string=query, headers=headers))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="audit-events.csv"'
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    rows = csv_rows(response)
    assert rows[0] == list(audit_trail.CSV_COLUMNS)
    assert len(rows) == 451
    assert rows[1] == [
        event(449)["at"],
        "user",
        USER["email"],
        "login_succeeded",
        "license",
        "L-0449",
        '{"n": 449}',
    ]
    assert [row[5] for row in rows[1:]] == [f"L-{n:04d}" for n in range(449, -1, -1)]


@pytest.mark.parametrize("accept", ["*/*", "application/json", "application/json, text/csv;q=0.1"])
def test_a_client_that_prefers_json_gets_json(accept: str) -> None:
    auth, licensing, billing = three_trails(3)
    service = gateway(auth=auth, licensing=licensing, billing=billing)
    page = service.audit_events(make_request(headers={"Accept": accept}))
    assert len(page["events"]) == 3
    forced = service.audit_events(
        make_request(headers={"Accept": "text/csv"}, query_string={"format": "json"})
    )
    assert len(forced["events"]) == 3


def test_the_csv_stops_at_its_limit() -> None:
    auth, licensing, billing = three_trails(30)
    query = audit.query_from(CUSTOMER, {"limit": 5})
    events = list(audit_trail.every_event(auth, licensing, billing, query, most=25))
    assert [e["event_id"] for e in events] == [event(n)["event_id"] for n in range(29, 4, -1)]
    assert audit_trail.CSV_MAX_ROWS == 10_000


def test_a_csv_cell_is_never_a_spreadsheet_formula() -> None:
    sneaky = event(1, "installation_deactivated", type="user", user_id="U-1", email="=cmd@x.test")
    sneaky["target"]["id"] = "+SUM(A1)"
    row = audit_trail.csv_row(sneaky)
    assert row[2] == "'=cmd@x.test" and row[5] == "'+SUM(A1)"
    product = audit_trail.csv_row(event(2, "installation_activated", type="product"))
    assert product[1:3] == ["product", ""]


def test_the_openapi_document_shows_the_csv_and_the_trail_query() -> None:
    operation = openapi.build()["paths"]["/api/v1/audit-events"]["get"]
    assert {"application/json", "text/csv"} <= set(operation["responses"]["200"]["content"])
    names = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    assert names == {"limit", "before", "user_id", "action", "since", "until", "format"}
    assert operation["x-roles"] == ["owner"]
    users = openapi.build()["paths"]["/api/v1/users/{user_id}"]
    assert {"patch", "delete"} <= set(users)
    assert "409" in users["delete"]["responses"]


# --- passwords only for owners and license admins ---------------------------------------------


@pytest.mark.parametrize(("may", "shown"), [(True, "K7QX"), (False, None)])
def test_a_purchase_shows_the_activation_password_only_to_password_readers(
    may: bool, shown: str | None
) -> None:
    answer = {"payment": {}, "license": {"license_id": "L-1", "activation_password": "K7QX"}}
    assert views.purchase_for_role(answer, may)["license"]["activation_password"] == shown
    pending = {"payment": {}, "license": None}
    assert views.purchase_for_role(pending, may) == pending


# --- the role check of every session route ------------------------------------------------


def session_routes() -> list[tuple[str, RouteSpec]]:
    """(method name, spec) of every session route of the gateway."""
    found = []
    for name, method in vars(GatewayService).items():
        for entrypoint in getattr(method, "nameko_entrypoints", ()):
            if isinstance(entrypoint, JsonRoute) and entrypoint.spec.auth == "session":
                found.append((name, entrypoint.spec))
    return sorted(found, key=lambda item: (item[1].path, item[1].method))


def call(service: GatewayService, name: str, spec: RouteSpec) -> Any:
    """Call a route's method as the machinery would, with made-up path values and body."""
    method = getattr(service, name)
    kwargs: dict[str, Any] = {}
    for parameter in list(inspect.signature(method).parameters)[1:]:
        if parameter == "body":
            kwargs["body"] = {}
        elif parameter not in ("company", "token"):
            kwargs[parameter] = "X-1"
    return method(make_request(spec.method, spec.path), **kwargs)


def test_every_session_route_declares_known_roles_and_owners_may_use_all() -> None:
    routes = session_routes()
    assert len(routes) == len([r for r in ROUTES if r.auth == "session"])
    for _, spec in routes:
        assert spec.roles and set(spec.roles) <= set(roles.ROLES), spec.path
        assert roles.OWNER in spec.roles, spec.path


@pytest.mark.parametrize("role", [roles.LICENSE_ADMIN, roles.BILLING, roles.VIEWER])
def test_a_role_a_route_does_not_admit_is_403_before_any_service_is_asked(role: str) -> None:
    refused = 0
    for name, spec in session_routes():
        if role in spec.roles:
            continue
        licensing, billing = mock.Mock(), mock.Mock()
        auth = TeamAuth(role)
        service = gateway(auth=auth, licensing=licensing, billing=billing)
        with pytest.raises(PortalError) as caught:
            call(service, name, spec)
        assert caught.value.code == "forbidden", spec.path
        assert caught.value.details == {"required_roles": list(spec.roles), "role": role}
        assert auth.calls == [("authenticate", "t0ken")], spec.path
        assert licensing.mock_calls == billing.mock_calls == [], spec.path
        refused += 1
    assert refused >= 3  # users and the audit trail at least


def test_the_users_and_trail_routes_are_for_owners_only() -> None:
    owners_only = {spec.path for _, spec in session_routes() if spec.roles == roles.OWNERS}
    assert owners_only == {
        "/api/v1/users",
        "/api/v1/users/<user_id>",
        "/api/v1/users/<user_id>/disable",
        "/api/v1/users/<user_id>/enable",
        "/api/v1/users/<user_id>/invitation",
        "/api/v1/audit-events",
    }


def test_an_empty_filter_filters_nothing() -> None:
    auth, licensing, billing = three_trails(3)
    service = gateway(auth=auth, licensing=licensing, billing=billing)
    query = {"user_id": "", "action": "", "since": "", "until": "", "before": ""}
    assert len(service.audit_events(make_request(query_string=query))["events"]) == 3
