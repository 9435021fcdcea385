"""`portalctl`: staff and internal systems drive the services over RPC.

Every command takes `--json` and then prints exactly one JSON document (the created or found
object); a failure exits non-zero with a clear message on stderr. Command groups live in
their own modules, each with `register(subparsers, common)`.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager
from typing import Any

from common.errors import PortalError
from common.rpc import StandaloneRpc, standalone_client
from portalctl import billing, bus, companies, demo, licensing
from portalctl.base import Handler
from portalctl.output import emit

# in the order `portalctl --help` lists them
GROUPS = (companies, bus, demo, licensing, billing)


class LazyRpc:
    """Lazily connected RPC for a command: `rpc("auth", "get_company", "C1234567")`."""

    def __init__(self, timeout: float | None) -> None:
        self._timeout = timeout
        self._context: AbstractContextManager[StandaloneRpc] | None = None
        self._client: StandaloneRpc | None = None

    def __call__(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._client is None:
            self._context = standalone_client(self._timeout)
            self._client = self._context.__enter__()
        return self._client.call(service, method, *args, **kwargs)

    def close(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document")
    common.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for a service (default 5)"
    )
    parser = argparse.ArgumentParser(
        prog="portalctl",
        description="License Portal staff CLI (talks RPC over AMQP_URI).",
    )
    groups = parser.add_subparsers(dest="group", metavar="GROUP", required=True)
    for module in GROUPS:
        module.register(groups, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    rpc = LazyRpc(args.timeout)
    try:
        result = handler(rpc, args)
    except PortalError as exc:
        print(f"portalctl: {exc.message} ({exc.code})", file=sys.stderr)
        fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
        for name, problems in (fields or {}).items():
            print(f"  {name}: {' '.join(map(str, problems))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        rpc.close()
    if result is not None:
        emit(result, args.json)
    return 0
