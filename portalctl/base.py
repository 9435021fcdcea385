"""What every command group shares: how a command is declared."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any, argparse.Namespace], Any]


def command(
    subparsers, common: argparse.ArgumentParser, name: str, handler: Handler, help: str
) -> argparse.ArgumentParser:
    """Add a command that shares the common options (`--json`, `--timeout`).

    `handler(rpc, args)` returns the object to print; `rpc(service, method, *args)` calls a
    service over the bus.
    """
    parser = subparsers.add_parser(name, parents=[common], help=help, description=help)
    parser.set_defaults(handler=handler)
    return parser
