"""CPU time per request of each process, read from /proc around a figure (Linux).

On a shared machine throughput says little about one process's cost; CPU seconds do:
`1000 / ms per request` is what one core gives that process for that request, whatever
else runs. `Meter({"gateway": [pid], ...})` → `snapshot()` before and after a figure →
`per_request(before, after, requests)` → `"gateway 3.10 ms, licensing 4.20 ms, …"`.
RabbitMQ (`beam.smp`) and PostgreSQL (every `postgres` process) are found by name; they also
serve other clients of the machine, so their share is an upper bound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
SHARED = {"rabbitmq": "beam.smp", "postgresql": "postgres"}


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def _named(comm: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == comm:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


Snapshot = dict[str, dict[int, int]]


@dataclass
class Meter:
    processes: dict[str, list[int]]
    shared: dict[str, str] = field(default_factory=lambda: dict(SHARED))

    def snapshot(self) -> Snapshot:
        if not Path("/proc/self/stat").exists():
            return {}
        taken = {name: {pid: _ticks(pid) for pid in pids} for name, pids in self.processes.items()}
        for name, comm in self.shared.items():
            taken[name] = {pid: _ticks(pid) for pid in _named(comm)}
        return taken

    @staticmethod
    def ms(before: Snapshot, after: Snapshot, requests: int) -> dict[str, float]:
        """CPU milliseconds per request of each named process (group)."""
        spent = {}
        for name, pids in after.items():
            ticks = sum(t - before.get(name, {}).get(pid, 0) for pid, t in pids.items())
            spent[name] = 1000 * ticks / TICK / requests if requests else 0.0
        return spent

    @classmethod
    def line(cls, before: Snapshot, after: Snapshot, requests: int) -> str:
        if not after:
            return "    cpu per request: not measured (no /proc)"
        spent = cls.ms(before, after, requests)
        parts = [
            f"{name} {ms:.2f}" for name, ms in spent.items() if ms >= 0.005 or name == "gateway"
        ]
        return "    cpu ms per request: " + ", ".join(parts)
