"""`make run`: the whole suite on this machine, on the embedded defaults, with a demo company.

Starts every service and the gateway as its own `nameko run` process (as ops would), each
with the bus user of its kind (`portalctl bus grant` with the `AMQP_URI` given, an
administrator's), waits until the gateway reports every service ready, seeds the demo company
and prints how to log in. Ctrl-C stops everything. Logs go to `var/log/<service>.log`.

Without RabbitMQ's management API (the plugin is off) there are no per-kind users: every
process then uses `AMQP_URI` itself, trusted alike (a note says so).

Staff's password is never printed: `python -m portalctl.devrun --staff-uri` writes staff's
AMQP URI (read from the 0600 `VAR_DIR/bus-credentials.json`) for a shell's
`AMQP_URI="$(…)"`, and refuses to write it to a terminal.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import requests
from kombu import Connection

from common import bus, settings
from common.events import declare_subscriptions
from common.rpc import standalone_client
from portalctl import demo

SERVICES = ("auth", "licensing", "billing", "notify")
READY_WITHIN = 90.0
# `--stripe-local`: the local Stripe server of the tests (localstripe, with its Stripe.js)
STRIPE_LOCAL_MODULE = "tests.support.stripe_server"


def broker_reachable(uri: str) -> str | None:
    """None if RabbitMQ answers at `uri`, else why not."""
    try:
        with Connection(uri, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        return str(exc) or type(exc).__name__
    return None


def port_taken(address: str) -> bool:
    """Whether something already listens where the gateway should (another `make run`?)."""
    host, _, port = address.rpartition(":")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host or "127.0.0.1", int(port)))
        except OSError:
            return True
    return False


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    address = settings.get("GATEWAY_ADDRESS", "127.0.0.1:8000")
    if not env.get("PORTAL_URL"):
        host, _, port = address.rpartition(":")
        host = "localhost" if host in ("127.0.0.1", "0.0.0.0", "") else host  # noqa: S104
        env["PORTAL_URL"] = f"http://{host}:{port}"
    env.setdefault("GATEWAY_ADDRESS", address)
    # silence eventlet's import-time "maintenance mode" notice in every process's log
    env.setdefault("EVENTLET_TESTS", "0")
    return env


def stripe_local_env(port: int) -> dict[str, str]:
    """The settings of billing and the gateway for payments through a local Stripe server on
    `port`: test keys of this run (the local server takes any `sk_test_…`)."""
    base = f"http://127.0.0.1:{port}"
    run = secrets.token_hex(6)
    return {
        "PAYMENT_PROVIDER": "stripe",
        "STRIPE_API_BASE": base,
        "STRIPE_JS_URL": f"{base}/js.stripe.com/v3/",
        "STRIPE_SECRET_KEY": f"sk_test_local_{run}",
        "STRIPE_PUBLISHABLE_KEY": f"pk_test_local_{run}",
        "STRIPE_WEBHOOK_SECRET": f"whsec_local_{run}",
    }


def start_stripe_local(port: int, log_path: Path) -> subprocess.Popen:
    """The local Stripe server, its state in `VAR_DIR` and gone when it stops."""
    store = settings.var_dir() / "stripe-local.pickle"
    store.unlink(missing_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", STRIPE_LOCAL_MODULE, "--port", str(port), "--store", str(store)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def register_stripe_webhook(env: dict[str, str], gateway: str) -> None:
    """Point the local Stripe server's webhooks at the gateway (a real account's endpoint is
    set in Stripe's dashboard, with its signing secret as STRIPE_WEBHOOK_SECRET)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            answer = requests.post(
                f"{env['STRIPE_API_BASE']}/_config/webhooks/portal",
                data={"url": f"{gateway}/webhooks/stripe", "secret": env["STRIPE_WEBHOOK_SECRET"]},
                timeout=5,
            )
            answer.raise_for_status()
            return
        except requests.RequestException as exc:
            if time.monotonic() > deadline:
                base = env["STRIPE_API_BASE"]
                raise SystemExit(f"the local Stripe server at {base} did not answer") from exc
            time.sleep(0.3)


def how_to_use_stripe_local(env: dict[str, str]) -> str:
    key = env["STRIPE_SECRET_KEY"]
    base = env["STRIPE_API_BASE"]
    return (
        f"  Payments:    through the local Stripe server at {base} (test cards: "
        "4242 4242 4242 4242 pays, 4000 0027 6000 3184 asks for 3-D Secure, "
        "4000 0000 0000 9995 has insufficient funds)\n"
        f"               its charges: curl -u {key}: {base}/v1/payment_intents "
        "(metadata.charge_key names our charge; `portalctl payment list` the receipts)\n"
        f"               refund one:  curl -u {key}: {base}/v1/refunds -d payment_intent=pi_…\n"
        "               renew now:   portalctl billing run-renewals --as-of YYYY-MM-DD "
        "(as staff, below)"
    )


def bus_users(uri: str) -> dict[str, str]:
    """Each process kind's AMQP URI, from `portalctl bus grant`; empty without the management
    API (every process then uses `uri`)."""
    try:
        users = bus.grant(uri)
    except bus.BusGrantError as exc:
        print(
            f"Note: no per-kind bus users ({exc.message}). Every process uses AMQP_URI, and "
            "the bus trusts them alike; enable the management plugin "
            "(`rabbitmq-plugins enable rabbitmq_management`, or run the "
            "`rabbitmq:3-management` image) or set RABBIT_API_URI.",
            file=sys.stderr,
        )
        return {}
    return {kind: user["amqp_uri"] for kind, user in users.items()}


def start(module: str, log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    # the child writes to its own copy of the descriptor
    with open(log_path, "ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module names
            [sys.executable, "-m", "nameko", "run", "--config", "config.yaml", module],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def wait_ready(url: str, processes: dict[str, subprocess.Popen], logs: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                tail = (logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"{name} exited with {process.returncode}; its log ends:\n{tail}")
        try:
            if requests.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the suite did not become ready within {READY_WITHIN:.0f}s; see {logs}/")


def stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes.values():
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def how_to_run_staff_cli(uri: str, staff_uri: str) -> str:
    """How to run portalctl as staff, without staff's password on the screen."""
    python = shlex.quote(sys.executable)
    if bus.stored_uri("staff", uri) == staff_uri:
        store = bus.credentials_path().resolve()
        return (
            f'  Staff CLI:   AMQP_URI="$({python} -m portalctl.devrun --staff-uri)" '
            f"{python} -m portalctl --help\n"
            f"               (staff's password stays in {store}, mode 0600)"
        )
    return (
        f"  Staff CLI:   AMQP_URI={bus.redacted(staff_uri)} {python} -m portalctl --help\n"
        "               (*** being STAFF_BUS_PASSWORD)"
    )


def print_staff_uri() -> int:
    """`--staff-uri`: staff's AMQP URI from the credentials `make run` stored, for a shell's
    `AMQP_URI="$(…)"`; never to a terminal."""
    staff_uri = bus.stored_uri("staff")
    if staff_uri is None:
        print(
            f"No staff bus user in {bus.credentials_path()}: run `make run` (or `portalctl bus "
            "grant`) first, with the same AMQP_URI and VAR_DIR.",
            file=sys.stderr,
        )
        return 1
    if sys.stdout.isatty():
        print(
            'This prints a password: use it as AMQP_URI="$(python -m portalctl.devrun '
            '--staff-uri)" python -m portalctl …',
            file=sys.stderr,
        )
        return 2
    print(staff_uri)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m portalctl.devrun",
        description="`make run`: the whole suite on this machine, with a demo company.",
    )
    parser.add_argument(
        "--staff-uri",
        action="store_true",
        help="print staff's AMQP URI (from VAR_DIR/bus-credentials.json) for "
        'AMQP_URI="$(…)" instead, and run nothing',
    )
    parser.add_argument(
        "--stripe-local",
        type=int,
        nargs="?",
        const=8420,
        metavar="PORT",
        help="take payments through a local Stripe server on PORT (default 8420) instead of "
        "the sandbox: the portal's card form is Stripe.js, and refunds made on that server "
        "reach the portal by webhook",
    )
    args = parser.parse_args(argv)
    if args.staff_uri:
        return print_staff_uri()
    # `kill`, a closed terminal or a CI timeout stop the children too, not only Ctrl-C
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    uri = settings.amqp_uri()
    problem = broker_reachable(uri)
    if problem:
        print(
            f"RabbitMQ is not reachable at {bus.redacted(uri)} ({problem}). Start one "
            "(`rabbitmq-server -detached` with `rabbitmq-plugins enable rabbitmq_management`, "
            "or `docker run -d -p 5672:5672 -p 15672:15672 rabbitmq:3-management`) "
            "or point AMQP_URI at yours.",
            file=sys.stderr,
        )
        return 1
    env = child_env()
    if port_taken(env["GATEWAY_ADDRESS"]):
        print(
            f"{env['GATEWAY_ADDRESS']} is already in use (another `make run`?). Stop it, or "
            "choose another address: GATEWAY_ADDRESS=127.0.0.1:8001 make run",
            file=sys.stderr,
        )
        return 1
    processes: dict[str, subprocess.Popen] = {}
    logs = settings.var_dir() / "log"
    logs.mkdir(parents=True, exist_ok=True)
    if args.stripe_local:
        env.update(stripe_local_env(args.stripe_local))
        processes["stripe"] = start_stripe_local(args.stripe_local, logs / "stripe.log")
    declare_subscriptions(uri)
    uris = bus_users(uri)
    os.environ.update({"PORTAL_URL": env["PORTAL_URL"]})

    def own(kind: str) -> dict[str, str]:
        return {**env, "AMQP_URI": uris.get(kind, uri)}

    for name in SERVICES:
        processes[name] = start(f"services.{name}.service", logs / f"{name}.log", own(name))
    processes["gateway"] = start("gateway.service", logs / "gateway.log", own("gateway"))
    gateway = "http://" + env["GATEWAY_ADDRESS"].replace("0.0.0.0", "127.0.0.1")  # noqa: S104
    try:
        print(f"Starting auth, licensing, billing, notify and the gateway (logs in {logs}/)…")
        wait_ready(gateway, processes, logs)
        if args.stripe_local:
            register_stripe_webhook(env, gateway)
        with standalone_client(uri=uris.get("staff", uri)) as rpc:
            result = demo.seed(rpc.call)
        print()
        print(f"License Portal is running at {env['PORTAL_URL']}/")
        print(demo.how_to_log_in(result))
        mail = settings.get("SMTP_HOST")
        print(
            f"  Emails:      {'SMTP ' + mail if mail else str(settings.var_dir() / 'mail') + '/'}"
        )
        if args.stripe_local:
            print(how_to_use_stripe_local(env))
        if "staff" in uris:
            print(how_to_run_staff_cli(uri, uris["staff"]))
        print("Press Ctrl-C to stop.")
        while all(process.poll() is None for process in processes.values()):
            time.sleep(1)
        dead = [name for name, process in processes.items() if process.poll() is not None]
        print(f"{', '.join(dead)} stopped; see {logs}/. Stopping the rest.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping…")
        return 0
    finally:
        stop(processes)


if __name__ == "__main__":
    raise SystemExit(main())
