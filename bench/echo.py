"""The baseline of `bench.hotpaths`: a bare nameko `@http` → RPC echo, no project code.

Two services, run as two processes with `nameko run` (as the suite's are), on the bench's
vhost:

- `bench_echo`: `@rpc echo(value)` answers `value`;
- `bench_echo_http`: `GET /echo` calls `bench_echo.echo("ping")` through nameko's standard
  RPC client (`ServiceRpc`: a publish with confirms to the RPC exchange, the reply on the
  process's reply queue) and answers its result as JSON.

So one request is what every gateway route that asks a service pays at least: nameko's
HTTP entrypoint, a worker, one RPC round trip over RabbitMQ and a worker on the other side.
Only nameko is imported: the project's code (its RPC client, middleware, metrics, logging)
is what the other figures add on top.

Run by hand: `nameko run --config CONFIG bench.echo:Echo` and `… bench.echo:EchoHttp`, with
`AMQP_URI`, `WEB_SERVER_ADDRESS` and `max_workers` in CONFIG (`bench.hotpaths.Echo` writes it).
"""

from __future__ import annotations

import json

from nameko.rpc import ServiceRpc, rpc
from nameko.web.handlers import http


class Echo:
    name = "bench_echo"

    @rpc
    def echo(self, value: str) -> str:
        return value


class EchoHttp:
    name = "bench_echo_http"

    echo = ServiceRpc("bench_echo")

    @http("GET", "/echo")
    def get_echo(self, request: object) -> tuple[int, dict[str, str], str]:
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps({"echo": self.echo.echo("ping")}),
        )
