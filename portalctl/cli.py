"""`portalctl`: staff and internal systems drive the services over RPC.

Every command takes `--json` and then prints exactly one JSON document (the created or found
object); a failure exits non-zero with one line on stderr that says what to do
(`portalctl/errors.py`), never a traceback. Command groups live in their own modules, each
with `register(subparsers, common)`.

Each run of a command has a request key of its own, sent in the RPC context data
(`request_key`): a request that the bus delivers twice changes nothing twice
(common/idempotency.py). Every call also names who acts (`actor`: staff, and the login that
ran portalctl), which the services write into the company's activity log (common/audit.py;
the services trust only the broker for the *staff* part).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import uuid
from contextlib import AbstractContextManager
from typing import Any, NoReturn

from amqp.exceptions import AMQPError

from common import settings
from common.bus import redacted
from common.context import ACTOR
from common.errors import PortalError
from common.rpc import StandaloneRpc, standalone_client
from portalctl import billing, bus, companies, demo, licensing, users
from portalctl.base import Handler
from portalctl.errors import one_line
from portalctl.output import emit

# in the order `portalctl --help` lists them
GROUPS = (companies, users, bus, demo, licensing, billing)


def staff_actor() -> dict[str, str]:
    """The context data `actor` of staff's calls: `{"type": "staff", "name": <login>}`
    (no name when the login cannot be told)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError, ImportError):
        return {"type": "staff"}
    return {"type": "staff", "name": name}


class LazyRpc:
    """Lazily connected RPC for a command: `rpc("auth", "get_company", "C1234567")`.

    The run's request key rides every call's context data (`request_key`); the client
    derives one key per call from it (common/rpc.py), so `portalctl demo`, which issues
    several licenses, sends each its own key, and a redelivered call repeats its key.
    """

    def __init__(self, timeout: float | None, request_key: str | None = None) -> None:
        self._timeout = timeout
        self.request_key = request_key or uuid.uuid4().hex
        self._context: AbstractContextManager[StandaloneRpc] | None = None
        self._client: StandaloneRpc | None = None

    def __call__(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            if self._client is None:
                context_data = {"request_key": self.request_key, ACTOR: staff_actor()}
                context = standalone_client(self._timeout, context_data=context_data)
                self._client = context.__enter__()
                self._context = context
            return self._client.call(service, method, *args, **kwargs)
        except AMQPError as exc:
            # the broker refused this user, vhost or call: a wrong AMQP_URI, not a bug
            uri = redacted(settings.amqp_uri())
            raise PortalError(f"RabbitMQ at {uri} refused: {exc}", code="bus_refused") from exc

    def close(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)


class Parser(argparse.ArgumentParser):
    """argparse, whose usage errors are one line that points at `--help`."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}. See `{self.prog} --help`.\n")


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document")
    common.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for a service (default 5)"
    )
    parser = Parser(
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
        command = f"{args.group} {getattr(args, 'command', '')}".strip()
        print(one_line(exc, command), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        rpc.close()
    if result is not None:
        emit(result, args.json)
    return 0
