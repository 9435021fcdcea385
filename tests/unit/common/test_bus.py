"""The bus permission table (common/bus.py) against the code, and the caller identity.

`GATEWAY_CALLS` must be exactly the methods gateway code calls, and `SERVICE_CALLS` exactly
the methods each service calls on the others: a call missing from a table would be refused
by the broker in production, and one the code no longer makes is a privilege nobody needs.
The regexes are checked by matching them here as RabbitMQ would.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib
import inspect
import re
import typing
from pathlib import Path
from types import SimpleNamespace

import pytest
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.rpc import Rpc

from common import bus
from common.errors import PortalError
from common.events import SUBSCRIPTIONS
from common.rpc import CALLER_KEY, Caller, VerifiedRpc
from services.auth.service import AuthService
from services.billing.service import BillingService
from services.licensing.service import LicensingService
from services.notify.service import NotifyService

ROOT = Path(__file__).resolve().parents[3]
SERVICE_CLASSES = (AuthService, LicensingService, BillingService, NotifyService)
UUID = "0b6f2a52-8e4b-4d7e-9a53-3f7c1f0e9d21"


def client_attributes(path: Path) -> dict[str, str]:
    """`{attribute: service}` of the `attribute = RpcClient("<service>")` in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        target.id: node.value.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "RpcClient"
        and node.value.args
        and isinstance(node.value.args[0], ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def rpc_clients(path: Path) -> set[str]:
    """The targets of `RpcClient("<service>")` in a module."""
    return set(client_attributes(path).values())


def gateway_calls() -> set[tuple[str, str]]:
    """Every `<client>.<method>(` in gateway code: `self.licensing.x(`, `service.auth.x(`,
    `licensing.x(` (a helper handed the client) and `clients[name].x(` (every client)."""
    targets = rpc_clients(ROOT / "gateway" / "service.py")
    found = set()
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            method, owner = node.func.attr, node.func.value
            if isinstance(owner, ast.Attribute) and owner.attr in targets:
                found.add((owner.attr, method))
            elif isinstance(owner, ast.Name) and owner.id in targets:
                found.add((owner.id, method))
            elif isinstance(owner, ast.Subscript) and path.name == "health.py":
                found |= {(target, method) for target in targets}
    return found


def test_the_gateway_table_is_exactly_what_the_gateway_calls():
    table = {
        (service, method) for service, methods in bus.GATEWAY_CALLS.items() for method in methods
    }
    found = gateway_calls()
    assert sorted(found - table) == [], "called by the gateway but not granted"
    assert sorted(table - found) == [], "granted to the gateway but never called"


def test_the_gateway_scan_sees_each_way_of_calling():
    found = gateway_calls()
    assert ("licensing", "activate") in found  # self.licensing.activate(
    assert ("auth", "authenticate") in found  # service.auth / auth.authenticate(
    assert ("notify", "ping") in found  # clients[name].ping()


def _resolve(module: object, node: ast.expr) -> object:
    """The object a callee's name (`purchases.purchase`, `use_cases.Courier`) is in `module`."""
    if isinstance(node, ast.Name):
        return getattr(module, node.id)
    assert isinstance(node, ast.Attribute), ast.dump(node)
    return getattr(_resolve(module, node.value), node.attr)


def _protocol_handed(module: object, call: ast.Call, client: ast.expr) -> type:
    """The Protocol the parameter (or dataclass field) that receives `client` is typed as."""
    callee = _resolve(module, call.func)
    if client in call.args:
        name = list(inspect.signature(callee).parameters)[call.args.index(client)]
    else:
        name = next(keyword.arg for keyword in call.keywords if keyword.value is client)
    protocol = typing.get_type_hints(callee)[name]
    assert getattr(protocol, "_is_protocol", False), f"{callee} takes {name} as {protocol}"
    return protocol


def _called(path: Path) -> set[str]:
    """The names of every `<anything>.<name>(` in a module."""
    return {
        node.func.attr
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }


def _methods(protocol: type) -> set[str]:
    return {
        name
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


def service_calls(service: str) -> set[tuple[str, str]]:
    """Every `(service, method)` a service calls on its `RpcClient`s, in services/<service>/:
    `self.<client>.<method>` (called, or handed on as a bound method), and the methods of the
    Protocol a bare `self.<client>` is handed to (a use case's parameter, a dataclass field),
    each called in the Protocol's module. Any other use of a client fails the scan."""
    package = ROOT / "services" / service
    clients = client_attributes(package / "service.py")
    found: set[tuple[str, str]] = set()
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and node.attr in clients
            ):
                continue
            target, parent = clients[node.attr], parents[node]
            if isinstance(parent, ast.keyword):
                parent = parents[parent]
            if isinstance(parent, ast.Attribute):
                found.add((target, parent.attr))
            elif isinstance(parent, ast.Call) and node is not parent.func:
                module = importlib.import_module(
                    ".".join(path.relative_to(ROOT).with_suffix("").parts)
                )
                protocol = _protocol_handed(module, parent, node)
                unused = _methods(protocol) - _called(Path(inspect.getfile(protocol)))
                assert not unused, f"{protocol.__name__} declares {unused}, never called"
                found |= {(target, method) for method in _methods(protocol)}
            else:
                raise AssertionError(f"{path}:{node.lineno}: a use of self.{node.attr} unscanned")
    return found


@pytest.mark.parametrize("service", bus.SERVICES)
def test_the_service_table_is_exactly_what_the_service_calls(service):
    table = {
        (target, method)
        for target, methods in bus.SERVICE_CALLS[service].items()
        for method in methods
    }
    found = service_calls(service)
    assert sorted(found - table) == [], "called by the service but not granted"
    assert sorted(table - found) == [], "granted to the service but never called"


def test_the_service_scan_sees_each_way_of_calling():
    assert ("auth", "get_company") in service_calls("billing")  # self.auth.get_company(
    assert ("auth", "verify_company_password") in service_calls("licensing")  # bound method
    assert ("licensing", "get_license") in service_calls("billing")  # a use case's Protocol
    assert ("auth", "password_link") in service_calls("notify")  # a dataclass field's Protocol
    assert service_calls("auth") == set()


@pytest.mark.parametrize("service_class", SERVICE_CLASSES, ids=lambda cls: cls.name)
def test_every_rpc_entrypoint_knows_its_caller(service_class):
    """They share one consumer of `rpc-<service>`: one nameko `@rpc` among them would split it."""
    entrypoints = [
        extension
        for member in vars(service_class).values()
        for extension in getattr(member, ENTRYPOINT_EXTENSIONS_ATTR, ())
        if isinstance(extension, Rpc)
    ]
    assert entrypoints
    assert all(type(extension) is VerifiedRpc for extension in entrypoints)


# --- the regexes, as RabbitMQ matches them --------------------------------------------------


def allows(pattern: str, name: str) -> bool:
    return re.search(pattern, name) is not None


def topic(kind: str, exchange: str) -> tuple[str, str]:
    return bus.permissions_for(kind).topics[exchange]


def test_only_a_service_publishes_its_own_events():
    for kind in bus.KINDS:
        write = bus.permissions_for(kind).write
        for service in bus.SERVICES:
            assert allows(write, f"{service}.events") == (kind == service), (kind, service)


def test_the_gateway_calls_customer_methods_only():
    write, read = topic("gateway", "nameko-rpc")
    assert allows(write, "licensing.get_license")
    assert allows(write, "billing.purchase")
    for staff_method in (
        "licensing.issue_license",
        "licensing.suspend_license",
        "licensing.get_licenses",
        "licensing.get_license.x",
        "xlicensing.get_license",
        "auth.create_company",
        "billing.record_offline_payment",
        UUID,  # the gateway answers nothing
    ):
        assert not allows(write, staff_method), staff_method
    assert allows(read, UUID) and not allows(read, "licensing.*") and not allows(read, "#")


def test_services_call_what_they_need_and_answer_on_uuids():
    write, read = topic("licensing", "nameko-rpc")
    assert allows(write, "auth.get_company") and allows(write, UUID)
    assert allows(write, "licensing.ping")  # its healthcheck
    assert not allows(write, "billing.purchase") and not allows(write, "licensing.issue_license")
    assert allows(read, "licensing.*") and not allows(read, "auth.*") and not allows(read, "#")
    write, _ = topic("auth", "nameko-rpc")
    assert not allows(write, "licensing.get_license")


@pytest.mark.parametrize(
    ("kind", "method", "allowed"),
    [
        ("billing", "licensing.get_license", True),
        ("billing", "auth.get_company", True),
        ("billing", "licensing.issue_license", False),  # free licenses
        ("billing", "licensing.extend_license", False),
        ("billing", "licensing.get_license.x", False),
        ("billing", "auth.password_link", False),
        ("licensing", "auth.verify_company_password", True),
        ("licensing", "auth.password_link", False),  # a link opens the account
        ("licensing", "auth.create_company", False),
        ("licensing", "auth.login", False),
        ("notify", "auth.password_link", True),
        ("notify", "auth.get_company", True),
        ("notify", "auth.create_company", False),
        ("notify", "auth.login", False),
        ("notify", "auth.find_companies", False),
        ("notify", "licensing.get_license", False),
        ("auth", "auth.ping", True),
        ("auth", "auth.password_link", False),
    ],
)
def test_a_service_calls_only_the_methods_it_uses(kind, method, allowed):
    write, _ = topic(kind, "nameko-rpc")
    assert allows(write, method) is allowed


def test_staff_call_every_service_and_publish_no_event():
    write, _ = topic("staff", "nameko-rpc")
    assert allows(write, "licensing.issue_license") and allows(write, "auth.create_company")
    assert not allows(write, UUID)
    assert not any(allows(bus.permissions_for("staff").write, f"{s}.events") for s in bus.SERVICES)


def test_each_kind_keeps_to_its_own_queues():
    for kind in bus.KINDS:
        permissions = bus.permissions_for(kind)
        for other in bus.KINDS:
            queue = f"rpc.reply-{other}-{UUID}"
            for pattern in (permissions.configure, permissions.write, permissions.read):
                assert allows(pattern, queue) == (kind == other), (kind, queue)
            if other in bus.SERVICES:
                assert allows(permissions.read, f"rpc-{other}") == (kind == other)
    assert not allows(bus.permissions_for("gateway").configure, "rpc-licensing")


def test_event_queues_are_read_by_their_consumer_and_bound_by_both_ends():
    for source, event_type, consumer, method in SUBSCRIPTIONS:
        queue = bus.event_queue(source, event_type, consumer, method)
        for kind in bus.KINDS:
            permissions = bus.permissions_for(kind)
            assert allows(permissions.read, queue) == (kind == consumer), (kind, queue)
            assert allows(permissions.write, queue) == (kind in (source, consumer))
            assert allows(permissions.configure, queue) == (kind in (source, consumer))
        _, read = topic(consumer, f"{source}.events")
        assert allows(read, event_type)
    # a consumer binds only the events it handles
    _, read = topic("licensing", "billing.events")
    assert not allows(read, "payment_failed") and not allows(read, "#")


def test_every_exchange_has_topic_permissions():
    """Without topic permissions for an exchange, RabbitMQ allows every routing key."""
    exchanges = {"nameko-rpc", *(f"{service}.events" for service in bus.SERVICES)}
    for kind in bus.KINDS:
        assert set(bus.permissions_for(kind).topics) == exchanges


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        bus.permissions_for("admin")


# --- names, URIs and passwords ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "kind"),
    [
        ("portal-gateway", "gateway"),
        ("lp-e2e_1a2b-staff", "staff"),
        ("gateway", "gateway"),
        ("guest", None),
        ("portal-gatewayx", None),
        ("xgateway", None),
        (None, None),
    ],
)
def test_kind_of(user, kind):
    assert bus.kind_of(user) == kind


def test_uris():
    admin = "amqp://admin:s%40cret@rabbit.example:5672/lp-test"
    assert bus.user_of(admin) == "admin"
    assert bus.user_of("memory://") is None
    assert bus.vhost_of(admin) == "lp-test"
    assert bus.vhost_of("amqp://guest:guest@localhost:5672/") == "/"
    assert bus.vhost_of("amqp://guest:guest@localhost:5672/%2F") == "/"
    assert (
        bus.with_credentials(admin, "portal-gateway", "p/w")
        == "amqp://portal-gateway:p%2Fw@rabbit.example:5672/lp-test"
    )
    assert bus.redacted(admin) == "amqp://admin:***@rabbit.example:5672/lp-test"
    assert bus.redacted("amqp://localhost//") == "amqp://localhost//"
    assert bus.management_uri(admin) == "http://admin:s%40cret@rabbit.example:15672/"
    assert bus.management_uri("amqps://u:p@h/") == "https://u:p@h:15671/"
    api = bus.ManagementApi("http://admin:s%40cret@rabbit.example:15672/")
    assert (api.base, api.auth) == ("http://rabbit.example:15672/api", ("admin", "s@cret"))


def test_stored_uri_reads_the_credentials_grant_kept(tmp_path):
    store = tmp_path / bus.CREDENTIALS_FILE
    store.write_text('{"portal-staff": "s3cret-1"}', encoding="utf-8")
    admin = "amqp://admin:x@rabbit.example:5672/lp"
    assert bus.stored_uri("staff", admin, store=store) == (
        "amqp://portal-staff:s3cret-1@rabbit.example:5672/lp"
    )
    assert bus.stored_uri("gateway", admin, store=store) is None  # e.g. GATEWAY_BUS_PASSWORD
    assert bus.stored_uri("staff", admin, store=tmp_path / "none.json") is None


def test_password_matches_rabbitmqs_salted_hash():
    salt = b"\x01\x02\x03\x04"
    digest = hashlib.sha256(salt + b"right").digest()
    user = {
        "hashing_algorithm": "rabbit_password_hashing_sha256",
        "password_hash": base64.b64encode(salt + digest).decode(),
    }
    assert bus.password_matches(user, "right")
    assert not bus.password_matches(user, "wrong")
    assert not bus.password_matches({**user, "hashing_algorithm": "other"}, "right")
    assert not bus.password_matches({**user, "password_hash": "%%%"}, "right")


# --- the caller, as the entrypoint hands it to a worker ----------------------------------------


def test_the_broker_checked_user_replaces_any_header_of_that_name():
    entrypoint = VerifiedRpc()
    handled = []
    entrypoint.check_signature = lambda args, kwargs: None

    def spawn_worker(provider, args, kwargs, context_data, handle_result):
        handled.append(context_data)

    entrypoint.container = SimpleNamespace(
        service_name="licensing",
        spawn_managed_thread=lambda run, identifier=None: run(),
        spawn_worker=spawn_worker,
    )
    entrypoint.method_name = "get_license"
    forged = {f"nameko.{CALLER_KEY}": "portal-staff", CALLER_KEY: "portal-staff", "x": 1}
    for properties, expected in (({"user_id": "portal-gateway"}, "portal-gateway"), ({}, None)):
        message = SimpleNamespace(headers=dict(forged), properties=properties)
        entrypoint.handle_message({"args": [], "kwargs": {}}, message)
        assert handled[-1].get(CALLER_KEY) == expected
        assert handled[-1]["x"] == 1


@pytest.mark.parametrize(
    ("caller", "own", "allowed"),
    [
        ("portal-staff", "portal-licensing", True),
        ("portal-billing", "portal-licensing", True),
        ("guest", "portal-licensing", True),  # an administrator's own user
        ("portal-gateway", "portal-licensing", False),
        (None, "portal-licensing", False),  # unverified while users are enforced
        (None, "guest", True),  # no per-kind users: a developer's quick start
        ("portal-gateway", None, True),
    ],
)
def test_staff_paths_and_the_caller(caller, own, allowed):
    who = Caller(caller, own)
    assert who.may_see_every_company is allowed
    who.check_scope("C1234567")  # a company's own path: always
    if allowed:
        who.check_scope(None)
    else:
        with pytest.raises(PortalError) as refused:
            who.check_scope(None)
        assert refused.value.code == "forbidden"


@pytest.mark.parametrize(
    ("caller", "own", "allowed"),
    [
        ("portal-notify", "portal-auth", True),
        ("portal-staff", "portal-auth", True),
        ("portal-licensing", "portal-auth", False),
        ("portal-gateway", "portal-auth", False),
        ("guest", "portal-auth", False),  # an administrator: no kind
        (None, "portal-auth", False),
        ("portal-gateway", "guest", True),  # no per-kind users: a developer's quick start
        (None, None, True),
    ],
)
def test_a_method_for_some_kinds_only(caller, own, allowed):
    who = Caller(caller, own)
    if allowed:
        who.check_kind("notify", "staff")
    else:
        with pytest.raises(PortalError) as refused:
            who.check_kind("notify", "staff")
        assert refused.value.code == "forbidden"
        assert refused.value.details == {"caller": bus.kind_of(caller) or "unverified"}
