"""What every command group shares: how a command is declared, and what it is handed."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Protocol, TypeAlias

from common import identifiers


class Rpc(Protocol):
    """`rpc(service, method, *args)`: one call to a service over the bus."""

    def __call__(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any: ...


Handler = Callable[[Rpc, argparse.Namespace], Any]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def command(
    subparsers: Subparsers,
    common: argparse.ArgumentParser,
    name: str,
    handler: Handler,
    help: str,
) -> argparse.ArgumentParser:
    """Add a command that shares the common options (`--json`, `--timeout`).

    `handler(rpc, args)` returns the object to print; `rpc(service, method, *args)` calls a
    service over the bus.
    """
    parser = subparsers.add_parser(name, parents=[common], help=help, description=help)
    parser.set_defaults(handler=handler)
    return parser


def feature_codes(value: str) -> list[str]:
    """`--features "Steel, dynamics"` → `["steel", "dynamics"]` (codes in any case, comma
    separated); an empty list is a mistake, not "none"."""
    codes = [identifiers.code(item) for item in value.split(",") if item.strip()]
    if not codes:
        raise argparse.ArgumentTypeError("give feature codes separated by commas, e.g. steel,dyn")
    return list(dict.fromkeys(codes))
