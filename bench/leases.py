"""Floating licenses through the gateway: heartbeats and check-outs, beside the bare
gateway→RPC round trip in the same run (DESIGN §13).

16 clients, a fixed number of requests per figure, in rounds: each round runs the baseline
`GET /api/v1/_ping/licensing` (one licensing `ping` over RPC, a `SELECT 1`), then check-outs,
then heartbeats, so that all three see the same machine at the same time; a figure is the
median of its rounds' requests per second (the machine is shared: one slow round must not
decide). Check-outs are new leases of distinct installations spread over 16 floating
licenses, as the activation benchmark spreads activations, each with seats for its share
of the round (about 100: an office's pool, not one license for the whole fleet): a 201 each
(password, the license row lock, the sweep and live count, insert, history, usage,
signature). Heartbeats renew those leases, each client its own lease at a time (a 200: one
conditional UPDATE of the lease row, no lock on the license, no history, a new
certificate). Aim: heartbeat >= 0.8x and check-out >= 0.4x of the baseline.

Check-outs of one license queue for its row lock (the seat count is atomic across
instances), so their rate is bounded by how long the lock is held: a last, informational
figure runs every check-out against one license with seats for all of them, to show that
bound apart from the cost of one check-out.

Run alone: `python -m bench bench.leases`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import requests

from bench import stages
from bench.harness import Figures, bench_customer, drive, issue_license
from tests.support.suite import Suite

CLIENTS = 16
REQUESTS = 1200
WARMUP = 100
ROUNDS = 3
# long enough that no lease of the run lapses between its check-out and its heartbeats
LEASE_SECONDS = 3600
HEARTBEAT_AIM, CHECKOUT_AIM = 0.8, 0.4
# check-outs of a round spread over this many licenses, each with seats for its share
SPREAD = 16
SEATS = REQUESTS // SPREAD + 25

Call = Callable[[requests.Session, int], bool]


def _setup(suite: Suite) -> tuple[list[list[dict]], dict]:
    """A company; `SPREAD` floating licenses of `SEATS` seats for each round (the first
    round's also take the warm-up's), and one with a seat for every check-out of the
    lock-contention figure."""
    company, code = bench_customer(suite, "Bench Leases GmbH", "Bench Floating")

    def floating(seats: int) -> dict:
        return issue_license(
            suite, company["customer_id"], code, seats,
            "--model", "floating", "--lease-seconds", str(LEASE_SECONDS),
        )  # fmt: skip

    pools = [[floating(SEATS) for _ in range(SPREAD)] for _ in range(ROUNDS)]
    return pools, floating(REQUESTS + 10)


def median_figures(name: str, rounds: list[Figures]) -> Figures:
    """One figure for `rounds` of the same call: the median round's requests per second
    (as requests over seconds), the latencies and errors of them all."""
    rate = statistics.median(figure.throughput for figure in rounds)
    total = sum(figure.requests for figure in rounds)
    latencies = [ms for figure in rounds for ms in figure.latencies_ms]
    errors = sum(figure.errors for figure in rounds)
    return Figures(name, total, total / rate if rate else 0.0, latencies, errors)


def rates(rounds: list[Figures]) -> str:
    """`(412.3, 398.0, 420.9 req/s)`: each round, for the reader to see the spread."""
    return "(" + ", ".join(f"{figure.throughput:.1f}" for figure in rounds) + " req/s)"


def run(suite: Suite) -> list[str]:
    pools, one = _setup(suite)
    url = suite.url
    # (lease ID, lease token) of every lease checked out, in order
    held: list[tuple[str, str]] = []

    def ping(session: requests.Session, index: int) -> bool:
        return session.get(f"{url}/api/v1/_ping/licensing", timeout=10).status_code == 200

    def checkout(prefix: str, licenses: list[dict]) -> Call:
        def call(session: requests.Session, index: int) -> bool:
            chosen = licenses[index % len(licenses)]
            answer = session.post(
                f"{url}/api/v1/leases",
                json={
                    "license_id": chosen["license_id"],
                    "password": chosen["activation_password"],
                    "installation_id": f"{prefix}-{index}",
                    "machine_name": f"Bench machine {prefix}-{index}",
                },
                timeout=10,
            )
            if answer.status_code != 201:
                return False
            reply = answer.json()
            held.append((reply["lease"]["lease_id"], reply["lease_token"]))
            return True

        return call

    def heartbeat(session: requests.Session, index: int) -> bool:
        # consecutive indexes are different leases: the 16 clients renew 16 leases at once
        lease_id, token = held[index % len(held)]
        answer = session.post(
            f"{url}/api/v1/leases/{lease_id}/heartbeat",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        return answer.status_code == 200

    drive("warm-up", ping, WARMUP, CLIENTS)
    drive("warm-up", checkout("warm", pools[0]), WARMUP, CLIENTS)
    drive("warm-up", heartbeat, WARMUP, CLIENTS)
    pings: list[Figures] = []
    checkouts: list[Figures] = []
    heartbeats: list[Figures] = []
    scraper = stages.Stages(suite)
    scrapes = []
    for number in range(1, ROUNDS + 1):
        pings.append(drive("ping", ping, REQUESTS, CLIENTS))
        scrapes.append(scraper.scrape())
        round_checkouts = checkout(f"bench{number}", pools[number - 1])
        checkouts.append(drive("check-out", round_checkouts, REQUESTS, CLIENTS))
        scrapes.append(scraper.scrape())
        heartbeats.append(drive("heartbeat", heartbeat, REQUESTS, CLIENTS))
        scrapes.append(scraper.scrape())
    contended = drive("check-out, one license", checkout("one", [one]), REQUESTS, CLIENTS)
    pings.append(drive("ping", ping, REQUESTS, CLIENTS))
    baseline = median_figures("ping (gateway→RPC baseline)", pings)
    checked_out = median_figures("check-out (201, new lease)", checkouts)
    renewed = median_figures("heartbeat (200)", heartbeats)
    lines = [
        f"leases: {REQUESTS} requests per figure and round, {ROUNDS} rounds (and a last "
        f"ping), {CLIENTS} concurrent clients, one gateway and one licensing process; "
        f"medians of the rounds; check-outs spread over {SPREAD} licenses of {SEATS} seats",
        f"{baseline.line()}  {rates(pings)}",
        f"{checked_out.line(baseline)}  {rates(checkouts)}",
        f"{renewed.line(baseline)}  {rates(heartbeats)}",
        _verdict(baseline, checked_out, renewed),
        "informational, lock contention: every check-out on one license, queueing for its "
        "row lock (one round, no aim):",
        contended.line(baseline),
        "where the time goes (means per request in the last round, from the suite's metrics):",
    ]
    # three scrapes a round, after its ping, check-outs and heartbeats: a figure's stretch
    # runs only its own route, so the service's SQL time is that route's
    last_round = 3 * (ROUNDS - 1)
    for label, offset, route, method in (
        ("  check-out", 0, "/api/v1/leases", "checkout"),
        ("  heartbeat", 1, "/api/v1/leases/<lease_id>/heartbeat", "heartbeat"),
    ):
        first, last = scrapes[last_round + offset], scrapes[last_round + offset + 1]
        lines.append(stages.split(label, first, last, route, "POST", [("licensing", method)]))
    return lines


def _verdict(baseline: Figures, checkouts: Figures, heartbeats: Figures) -> str:
    ceiling = baseline.throughput
    checks = [
        (f"heartbeat >= {HEARTBEAT_AIM}x", heartbeats.throughput >= HEARTBEAT_AIM * ceiling),
        (f"check-out >= {CHECKOUT_AIM}x", checkouts.throughput >= CHECKOUT_AIM * ceiling),
        ("no errors", checkouts.errors == 0 and heartbeats.errors == 0),
    ]
    return "aims: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in checks)
