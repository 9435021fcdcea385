"""`make bench`'s own parts: wrk's output read right, the echo baseline free of project code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench import hotpaths, load

ROOT = Path(__file__).resolve().parents[2]

WRK_OUTPUT = """\
Running 8s test @ http://127.0.0.1:40001
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.10ms    3.20ms  1.02s    91.00%
    Req/Sec   660.12     40.10   720.00     70.00%
  Latency Distribution
     50%  850.00us
     75%   13.00ms
     90%   15.00ms
     99%    1.20s
  10560 requests in 8.00s, 1.50MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   1320.45
Transfer/sec:    192.00KB
status 201 10553
status 409 7
"""


def test_a_figure_is_read_off_wrks_output_with_its_units_and_errors() -> None:
    figure = load.parse("activation", WRK_OUTPUT, expected=201)

    assert figure.throughput == pytest.approx(1320.45)
    assert figure.p50 == pytest.approx(0.85)
    assert figure.p99 == pytest.approx(1200.0)
    assert figure.requests == 10560
    assert figure.non_2xx == 7
    assert figure.statuses == {"201": 10553, "409": 7}
    assert figure.errors == 7 + 2 + 3
    assert "ERRORS: 409 x7, socket read x2, socket timeout x3" in figure.line()


def test_a_figure_without_errors_says_nothing_of_them() -> None:
    clean = WRK_OUTPUT.replace("read 2", "read 0").replace("timeout 3", "timeout 0")
    clean = clean.replace("status 409 7\n", "")

    figure = load.parse("activation", clean, expected=201)

    assert figure.errors == 0
    assert "ERRORS" not in figure.line()


def test_a_wrong_body_under_the_expected_status_counts_as_an_error() -> None:
    output = WRK_OUTPUT.replace("status 201 10553", "status 200 10000\nstatus 200-unexpected 3")

    assert load.parse("validation", output, expected=200).errors == 3 + 7 + 5


def test_the_verdict_names_each_aim_its_ratio_and_the_gap() -> None:
    ratios = {"validation": (2.31, 0.9), "activation": (0.25, 2.5), "re-activation": (0.8, 1.0)}
    rounds = [{key: load.Figure(key, 1.0, 1.0, 1.0, 1) for key in ratios}]

    verdict = hotpaths._verdict(ratios, rounds)

    assert verdict.startswith("aims: validation >= 2x met (2.31x) | ")
    assert "activation >= 0.5x MISSED (0.25x, gap 2.00x)" in verdict
    assert "re-activation >= 0.8x met (0.80x)" in verdict
    assert "activation p99 <= 2x echo p99 MISSED (2.50x)" in verdict


def test_the_echo_baseline_imports_nothing_but_nameko() -> None:
    tree = ast.parse((ROOT / "bench" / "echo.py").read_text())
    modules = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }

    assert modules <= {"__future__", "json", "nameko"}, modules
