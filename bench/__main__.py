"""`make bench`: start the suite on PostgreSQL once and run every benchmark module against it.

A benchmark module defines `run(suite) -> list[str]` (the lines to print). Figures depend on
the machine and on what else runs on it: compare ratios and medians, not absolute numbers.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings

# before the imports below: they import nameko, which imports eventlet
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from bench import capacity, client, hotpaths, leases, reset_timing, stages  # noqa: E402
from bench.harness import running_suite  # noqa: E402

# the benchmarks play many clients from one machine: the gateway believes the address they
# name in X-Forwarded-For (the throttles count per client address); every process serves its
# metrics on a free port, for the per-stage split of `bench.stages`
BENCH_ENV = {"TRUSTED_PROXIES": "127.0.0.1", **stages.ENV}

MODULES = {
    "bench.hotpaths": hotpaths,
    "bench.leases": leases,
    "bench.client": client,
    "bench.reset_timing": reset_timing,
    "bench.capacity": capacity,
}
# earlier names, still accepted on the command line
ALIASES = {"bench.licensing": "bench.hotpaths"}


def main() -> int:
    selected = [ALIASES.get(name, name) for name in sys.argv[1:]] or list(MODULES)
    unknown = [name for name in selected if name not in MODULES]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(MODULES)}")
        return 2
    available = [MODULES[name] for name in selected]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    standalone = [m for m in available if getattr(m, "NEEDS_SUITE", True) is False]
    with_suite = [m for m in available if m not in standalone]
    for module in standalone:
        for line in module.run(None):
            print(line)
    if with_suite:
        with running_suite(BENCH_ENV) as suite:
            for module in with_suite:
                for line in module.run(suite):
                    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
