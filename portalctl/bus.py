"""`portalctl bus declare`: create every event queue before any producer publishes."""

from __future__ import annotations

import argparse
from typing import Any

from common import settings
from common.events import SUBSCRIPTIONS, declare_subscriptions
from portalctl.base import Rpc, Subparsers, command


def declare(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    count = declare_subscriptions(settings.amqp_uri())
    return {
        "declared": count,
        "queues": [f"evt-{s}-{e}--{c}.{m}" for s, e, c, m in SUBSCRIPTIONS],
    }


def register(groups: Subparsers, common: argparse.ArgumentParser) -> None:
    group = groups.add_parser("bus", help="the message bus")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    command(commands, common, "declare", declare, "declare every consumer's event queue")
