"""The documentation ships with the code and stays true to it.

Every link in README.md and docs/ resolves inside the repository; every RPC method of every
service is in docs/rpc.md; every event in SUBSCRIPTIONS is in docs/events.md; every setting
the code reads and every `portalctl` command is in docs/operations.md; every API route and
every error code the gateway answers is in docs/http-api.md.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.rpc import Rpc

import gateway.service  # noqa: F401 - declaring the routes fills the registry
from common.events import SUBSCRIPTIONS
from gateway.errors import STATUS_BY_CODE
from gateway.http import ROUTES
from portalctl.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
SERVICES = ("auth", "licensing", "billing", "notify")
LINK = re.compile(r"\]\(([^)\s]+)\)")
# read by name: settings.get*("X"), Clock("X"), configured_timer("X"), _seconds("X")
SETTING = re.compile(
    r"""(?:\bget\w*|\bClock|\bconfigured_timer|\b_seconds)\(\s*["']([A-Z][A-Z0-9_]{2,})["']"""
)
CODE_DIRS = ("common", "services", "gateway", "portalctl")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _rpc_methods(service: str) -> list[str]:
    module = importlib.import_module(f"services.{service}.service")
    classes = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__ and getattr(cls, "name", None) == service
    ]
    assert len(classes) == 1
    return sorted(
        name
        for name, method in inspect.getmembers(classes[0], inspect.isfunction)
        if any(isinstance(e, Rpc) for e in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()))
    )


def test_the_docs_exist() -> None:
    names = {path.name for path in DOCS}
    for name in ("architecture.md", "http-api.md", "rpc.md", "events.md", "operations.md"):
        assert name in names


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_relative_link_resolves_inside_the_repository(doc: Path) -> None:
    for target in LINK.findall(_text(doc)):
        if target.startswith("#"):
            continue
        assert not re.match(r"^[a-z][a-z0-9+.-]*:", target) or "://localhost" in target, (
            f"{doc.name} links outside the repository: {target}"
        )
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), f"{doc.name} links outside the repository: {target}"
        assert path.exists(), f"{doc.name} links to a missing file: {target}"


def test_the_readme_links_every_document() -> None:
    readme = _text(ROOT / "README.md")
    for doc in DOCS:
        if doc.parent.name == "docs":
            assert f"docs/{doc.name}" in readme


@pytest.mark.parametrize("service", SERVICES)
def test_every_rpc_method_is_in_the_rpc_reference(service: str) -> None:
    reference = _text(ROOT / "docs" / "rpc.md")
    section = reference.split(f"**{service}**", 1)[1].split("\n**", 1)[0]
    missing = [
        name
        for name in _rpc_methods(service)
        if name != "ping" and not re.search(rf"`{name}\(", section)
    ]
    assert not missing, f"docs/rpc.md does not describe {service}: {missing}"


def test_every_event_and_consumer_is_in_the_events_document() -> None:
    events = _text(ROOT / "docs" / "events.md")
    rows = {line.split("|")[2].strip(" `"): line for line in events.splitlines() if "| `" in line}
    for source, event_type, consumer, _ in SUBSCRIPTIONS:
        assert event_type in rows, f"docs/events.md does not list {event_type}"
        assert source in rows[event_type] and consumer in rows[event_type], (
            f"docs/events.md does not say that {consumer} consumes {source}'s {event_type}"
        )


def test_every_setting_the_code_reads_is_documented() -> None:
    operations = _text(ROOT / "docs" / "operations.md")
    read = {
        name
        for folder in CODE_DIRS
        for path in (ROOT / folder).rglob("*.py")
        for name in SETTING.findall(_text(path))
    }
    assert read, "the pattern found no settings: the test would pass vacuously"
    missing = sorted(name for name in read if f"`{name}`" not in operations)
    assert not missing, f"docs/operations.md does not document {missing}"


def test_every_api_route_is_in_the_http_api_document() -> None:
    api = _text(ROOT / "docs" / "http-api.md")
    paths = {
        (spec.method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", spec.path))
        for spec in ROUTES
        if spec.path.startswith("/api/") and "/_" not in spec.path
    }
    assert paths, "no routes found: the test would pass vacuously"
    missing = sorted(f"{method} {path}" for method, path in paths if f"`{method} {path}" not in api)
    assert not missing, f"docs/http-api.md does not describe {missing}"


def test_every_error_code_is_in_the_http_api_document_with_its_status() -> None:
    api = _text(ROOT / "docs" / "http-api.md")
    rows = {
        line.split("|")[1].strip(): line
        for line in api.split("### Error codes", 1)[-1].splitlines()
        if re.match(r"^\| \d{3} \|", line)
    }
    assert rows, "no error-code table found: the test would pass vacuously"
    missing = sorted(
        f"{code} ({status})"
        for code, status in STATUS_BY_CODE.items()
        if f"`{code}`" not in rows.get(str(status), "")
    )
    assert not missing, f"docs/http-api.md's error codes lack {missing}"


def _portalctl_commands() -> list[str]:
    """Every `group command` of portalctl's parser (`demo` is a group without commands)."""
    parser = build_parser()
    [groups] = [action for action in parser._actions if action.dest == "group"]
    commands = []
    for name, group in groups.choices.items():
        found = [action for action in group._actions if action.dest == "command"]
        if not found:
            commands.append(name)
        for command in found[0].choices if found else ():
            commands.append(f"{name} {command}")
    return commands


def test_every_portalctl_command_is_in_the_operations_document() -> None:
    operations = _text(ROOT / "docs" / "operations.md")
    documented = set()
    for group, alternatives in re.findall(r"portalctl ([a-z-]+)(?: ([a-z|-]+))?", operations):
        documented.add(group)
        documented.update(f"{group} {name}" for name in alternatives.split("|") if name)
    commands = _portalctl_commands()
    assert len(commands) > 10, "no commands found: the test would pass vacuously"
    missing = sorted(command for command in commands if command not in documented)
    assert not missing, f"docs/operations.md does not show {missing}"
