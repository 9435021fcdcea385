"""Load from `wrk` (https://github.com/wg/wrk): one figure of one URL for a fixed time.

`wrk` runs as its own process (C, an event loop per thread), so the load generator costs
little of the machine next to the suite, unlike Python threads. Each figure: 2 threads, 16
keep-alive connections, 8 seconds, `--latency`; the requests come from a Lua script of
`bench/wrk/` (`common.lua` counts the answers by status and prints them after the run).
`ensure_wrk()` installs wrk with apt-get when it is missing.

`figure("validation", url, "validate.lua", expect=200, data=path)` → a `Figure`: requests/s,
p50 and p99 latency, the answers by status, wrk's non-2xx count and socket errors; its
`errors` counts every answer that is not the expected status (and body) plus every socket
error, and its line says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "wrk"
THREADS = 2
CONNECTIONS = 16
SECONDS = 8
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def ensure_wrk() -> str:
    """The path of `wrk`; installed with apt-get (as root, else with sudo) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get"):
        command = ["apt-get", "install", "-y", "-qq", "wrk"]
        if os.geteuid() != 0:
            command = ["sudo", "-n", *command] if shutil.which("sudo") else []
        if command:
            print("wrk not found: " + " ".join(command), flush=True)
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            installed = subprocess.run(command, env=env)  # noqa: S603 - apt-get, fixed words
            if installed.returncode != 0:
                update = [*command[: command.index("install")], "update", "-qq"]
                subprocess.run(update, env=env)  # noqa: S603 - apt-get, fixed words
                subprocess.run(command, env=env)  # noqa: S603 - apt-get, fixed words
            found = shutil.which("wrk")
            if found:
                return found
    raise SystemExit(
        "the benchmarks need wrk (the HTTP load generator): install the package 'wrk' "
        "(Debian/Ubuntu: sudo apt-get install wrk; macOS: brew install wrk) and run again"
    )


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", text).groups()
    return float(number) * UNITS_MS[unit]


@dataclass
class Figure:
    name: str
    throughput: float  # requests per second
    p50: float  # milliseconds
    p99: float
    requests: int
    statuses: dict[str, int] = field(default_factory=dict)
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    expected: int = 200
    # CPU milliseconds per request of each process while the figure ran (bench.cpu)
    cpu: dict[str, float] = field(default_factory=dict)
    # seconds after the figure until the work it queued was done (bench.hotpaths.settle)
    settled: float = 0.0

    @property
    def errors(self) -> int:
        wrong = sum(n for key, n in self.statuses.items() if key != str(self.expected))
        return wrong + sum(self.socket_errors.values())

    def problems(self) -> str:
        """What went wrong, e.g. `"errors: 409 x12, socket timeout x3"`; "" when nothing."""
        parts = [
            f"{key} x{n}" for key, n in sorted(self.statuses.items()) if key != str(self.expected)
        ]
        parts += [f"socket {kind} x{n}" for kind, n in self.socket_errors.items() if n]
        return f"ERRORS: {', '.join(parts)}" if parts else ""

    def cpu_line(self) -> str:
        shown = [f"{name} {ms:.2f}" for name, ms in self.cpu.items() if ms >= 0.005]
        settled = f" (its queued work done {self.settled:.1f} s after)" if self.settled >= 1 else ""
        return f"    cpu ms per request{settled}: {', '.join(shown)}" if shown else ""

    def line(self, baseline: Figure | None = None) -> str:
        ratio = ""
        if baseline is not None and baseline.throughput:
            ratio = (
                f"  {self.throughput / baseline.throughput:5.2f}x echo"
                f" (p99 {self.p99 / baseline.p99:4.2f}x)"
            )
        problems = self.problems()
        return (
            f"  {self.name:<30} {self.throughput:8.1f} req/s   p50 {self.p50:6.1f} ms   "
            f"p99 {self.p99:6.1f} ms{ratio}{'   ' + problems if problems else ''}"
        )


def averaged(name: str, *figures: Figure) -> Figure:
    """One figure of several runs of the same thing (the echo before and after)."""
    statuses: dict[str, int] = {}
    sockets: dict[str, int] = {}
    for figure in figures:
        for key, n in figure.statuses.items():
            statuses[key] = statuses.get(key, 0) + n
        for key, n in figure.socket_errors.items():
            sockets[key] = sockets.get(key, 0) + n
    count = len(figures)
    cpu = {
        name: sum(f.cpu.get(name, 0.0) for f in figures) / count
        for name in {name for f in figures for name in f.cpu}
    }
    return Figure(
        name,
        sum(f.throughput for f in figures) / count,
        sum(f.p50 for f in figures) / count,
        sum(f.p99 for f in figures) / count,
        sum(f.requests for f in figures),
        statuses,
        sum(f.non_2xx for f in figures),
        sockets,
        figures[0].expected,
        dict(sorted(cpu.items())),
    )


def parse(name: str, output: str, expected: int) -> Figure:
    """A `Figure` of wrk's output (with `--latency` and common.lua's status lines)."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rate is None or total is None:
        raise RuntimeError(f"{name}: wrk printed no figures:\n{output}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+[a-z]+)\s*$", output, re.MULTILINE))
    statuses = {key: int(n) for key, n in re.findall(r"^status (\S+) (\d+)$", output, re.M)}
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = {}
    if sockets:
        socket_errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()), strict=True)
        )
    return Figure(
        name,
        float(rate.group(1)),
        _ms(latency["50"]) if "50" in latency else float("nan"),
        _ms(latency["99"]) if "99" in latency else float("nan"),
        int(total.group(1)),
        statuses,
        int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors,
        expected,
    )


def figure(
    name: str,
    url: str,
    script: str = "get.lua",
    *,
    expect: int = 200,
    data: Path | None = None,
    seconds: int = SECONDS,
    env: dict[str, str] | None = None,
) -> Figure:
    """wrk on `url` for `seconds` with `bench/wrk/<script>`; `data` the script's input file."""
    command = [
        ensure_wrk(),
        f"--threads={THREADS}",
        f"--connections={CONNECTIONS}",
        f"--duration={seconds}s",
        "--timeout=10s",
        "--latency",
        f"--script={SCRIPTS / script}",
        url,
    ]
    child_env = {
        **os.environ,
        "BENCH_WRK_DIR": str(SCRIPTS),
        "BENCH_EXPECT": str(expect),
        "BENCH_THREADS": str(THREADS),
        **({"BENCH_DATA": str(data)} if data else {}),
        **(env or {}),
    }
    done = subprocess.run(  # noqa: S603 - wrk and our scripts
        command, env=child_env, capture_output=True, text=True, timeout=seconds + 60
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name}: wrk failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    return parse(name, done.stdout + done.stderr, expect)
