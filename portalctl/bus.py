"""`portalctl bus`: the queues and the users of the message bus.

- `declare`: create every event queue before any producer publishes.
- `grant`: one RabbitMQ user per process kind with least-privilege permissions
  (common/bus.py); run it with an administrator's `AMQP_URI`, then start each process with
  its kind's `amqp_uri`.
- `revoke`: delete those users.
"""

from __future__ import annotations

import argparse
from typing import Any

from common import bus, settings
from common.events import SUBSCRIPTIONS, declare_subscriptions
from portalctl.base import Rpc, Subparsers, command


def declare(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    count = declare_subscriptions(settings.amqp_uri())
    return {
        "declared": count,
        "queues": [f"evt-{s}-{e}--{c}.{m}" for s, e, c, m in SUBSCRIPTIONS],
    }


def grant(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    """`--json` → `{"gateway": {"user": "portal-gateway", "password": "…", "amqp_uri":
    "amqp://…"}, …}`; otherwise each kind's user, and no password (a terminal or a
    container's log is no place for them)."""
    granted = bus.grant(prefix=args.prefix, rotate=args.rotate)
    if args.json:
        return granted
    return {
        **{kind: user["user"] for kind, user in granted.items()},
        "passwords": "printed with --json only",
    }


def revoke(rpc: Rpc, args: argparse.Namespace) -> dict[str, list[str]]:
    return {"deleted": bus.revoke(prefix=args.prefix)}


def register(groups: Subparsers, common: argparse.ArgumentParser) -> None:
    group = groups.add_parser("bus", help="the message bus")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    command(commands, common, "declare", declare, "declare every consumer's event queue")
    granting = command(
        commands,
        common,
        "grant",
        grant,
        "create or update one RabbitMQ user per process kind (auth, licensing, billing, "
        "notify, gateway, staff) with least-privilege permissions on AMQP_URI's vhost "
        "(run with an administrator's AMQP_URI; uses the management API at RABBIT_API_URI)",
    )
    granting.add_argument(
        "--prefix",
        default=bus.DEFAULT_PREFIX,
        help=f"user names are PREFIX<kind> (default {bus.DEFAULT_PREFIX!r}; ends with '-')",
    )
    granting.add_argument(
        "--rotate",
        action="store_true",
        help="new random passwords (restart every process with its new URI afterwards)",
    )
    revoking = command(commands, common, "revoke", revoke, "delete the per-kind bus users")
    revoking.add_argument("--prefix", default=bus.DEFAULT_PREFIX, help="as given to grant")
