"""`python -m common.healthcheck <service>`: exit 0 when the service answers, 1 otherwise.

For the container healthchecks of docker-compose.yml (and for ops at a shell):

- `auth`, `licensing`, `billing`, `notify` (any nameko service): one RPC `ping`, bounded by
  `--timeout` seconds, through the same bounded client as `portalctl`. All instances of a
  service share one RPC queue, so with `--scale licensing=3` this says that *the service*
  answers, which may be another instance than the one in this container.
- `gateway`: `GET /healthz` on this machine, at the port of `GATEWAY_ADDRESS`.

Every path is bounded: a hard deadline stops a check that hangs on a half-open connection,
so a check never outlives the one the container runtime gives it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from common import settings

# the RPC client imports nameko, whose eventlet import warns on every run of the check
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    from common.rpc import standalone_client

DEFAULT_TIMEOUT = 3.0
DEFAULT_GATEWAY_ADDRESS = "127.0.0.1:8000"
# connecting to the broker and setting up the reply queue come on top of the call itself
DEADLINE_MARGIN = 5


def gateway_url(address: str | None) -> str:
    """`/healthz` of a gateway listening on `address` (`host:port`), reached from this host.

    >>> gateway_url("0.0.0.0:8000")
    'http://127.0.0.1:8000/healthz'
    """
    host, _, port = (address or DEFAULT_GATEWAY_ADDRESS).rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - a wildcard to translate, not to bind
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{int(port)}/healthz"


def check_gateway(timeout: float) -> str:
    url = gateway_url(settings.get("GATEWAY_ADDRESS", DEFAULT_GATEWAY_ADDRESS))
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http to ourselves
        body = json.loads(response.read() or b"{}")
    if body.get("status") != "ok":
        raise RuntimeError(f"{url} answered {body!r}")
    return f"gateway: {url} ok"


def check_service(service: str, timeout: float) -> str:
    with standalone_client(timeout=timeout) as rpc:
        reply: Any = rpc.call(service, "ping")
    if not isinstance(reply, dict) or reply.get("status") != "ok":
        raise RuntimeError(f"{service}.ping answered {reply!r}")
    return f"{service}: ok"


def check(service: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """A line saying what answered, or an exception saying why it did not."""
    if service == "gateway":
        return check_gateway(timeout)
    return check_service(service, timeout)


def _exit_at_deadline(service: str, seconds: int) -> Callable[[int, FrameType | None], None]:
    def on_alarm(signum: int, frame: FrameType | None) -> None:
        # no unwinding: closing a connection that hangs could hang as well
        print(f"{service}: no answer within {seconds} s", file=sys.stderr, flush=True)
        os._exit(1)

    return on_alarm


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.healthcheck",
        description="Exit 0 when the service answers (RPC ping; gateway: GET /healthz).",
    )
    parser.add_argument("service", help="auth, licensing, billing, notify or gateway")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds for the call itself"
    )
    args = parser.parse_args(argv)
    # a failing check explains itself on stderr, in one line, without library chatter
    logging.basicConfig(level=logging.CRITICAL)

    deadline = int(args.timeout) + DEADLINE_MARGIN
    previous = signal.signal(signal.SIGALRM, _exit_at_deadline(args.service, deadline))
    signal.alarm(deadline)
    try:
        print(check(args.service, args.timeout))
        return 0
    except Exception as exc:  # whatever went wrong, the answer is "unhealthy"
        print(f"{args.service}: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return 1


if __name__ == "__main__":
    sys.exit(main())
