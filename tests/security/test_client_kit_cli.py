"""Finding 8: `license-client --password X` in the wrong place printed X in the usage error.

argparse repeats the arguments it did not expect ("unrecognized arguments: --password X"),
so a password typed before the command, or after one that takes none, landed on the terminal,
in shell logs and in CI output. The real command, run as a user runs it, now redacts it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PASSWORD = "Velvet-Anchor-Comet-91"


@pytest.mark.parametrize(
    "argv",
    [
        ["--password", PASSWORD, "activate", "L-7KQX-M2PD"],
        ["status", "--password", PASSWORD],
        ["id", f"--password={PASSWORD}"],
        ["--pass", PASSWORD, "status"],
    ],
)
def test_a_usage_error_does_not_print_the_password(argv: list[str], tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "license_client", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={"LICENSE_CLIENT_DATA_DIR": str(tmp_path), "PATH": ""},
    )
    assert result.returncode == 2, result.stderr
    assert "error:" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    assert "[redacted]" in result.stderr
