"""The C client kit (clients/c) against the running suite over real HTTP, through its CLI
`license-client-c` and the C++ example, with the Python kit's CLI on the same data folder
giving the same verdicts: activation, the server stopped (a dead port), deactivation in the
portal, a tampered certificate, an expired license, a clock rolled back, the wrong product,
refusals and usage errors, offline activation, a borrowed floating seat and a held one.

The kit is built by the module (incrementally: `make test` has built it already); without
cmake or a compiler the module is skipped, saying so.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from license_client import jws
from tests.support.suite import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
C_KIT = ROOT / "clients" / "c"
BUILD = C_KIT / "build"
CLI = BUILD / "cli" / "license-client-c"
EXAMPLE = BUILD / "examples" / "cpp" / "license-example"
COMPANY_PASSWORD = "Winter-Orchard-42"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture(scope="module", autouse=True)
def c_kit() -> None:
    """Build the C kit: `make c-kit` has, unless this module runs alone; the build is
    incremental, so this costs a second when nothing changed."""
    missing = [tool for tool in ("cmake", "gcc", "g++", "pkg-config") if not shutil.which(tool)]
    if missing:
        reason = f"no C toolchain here ({', '.join(missing)} missing): run `make c-deps`"
        if os.environ.get("REQUIRE_C_KIT"):  # CI: a kit that was not tested is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    steps = []
    if not (BUILD / "CMakeCache.txt").exists():
        steps.append(["cmake", "-S", str(C_KIT), "-B", str(BUILD)])
    steps.append(
        ["cmake", "--build", str(BUILD), "--parallel", "2", "--target", CLI.name, EXAMPLE.name]
    )
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


@pytest.fixture(scope="module")
def product(suite) -> str:
    code = f"ckit{uuid.uuid4().hex[:8]}"
    suite.portalctl("product", "create", "--code", code, "--name", "C Kit CAD")
    return code


@pytest.fixture(scope="module")
def company(suite) -> dict:
    email = f"ckit.{uuid.uuid4().hex[:10]}@example.test"
    return suite.portalctl(
        "company", "create", "--name", "C Kit Engineering", "--contact-name", "Ada",
        "--email", email, "--password", COMPANY_PASSWORD,
    )  # fmt: skip


@pytest.fixture
def issue(suite, company, product):
    def issue(*options: str, seats: int = 1) -> dict:
        return suite.portalctl(
            "license", "issue", "--customer", company["customer_id"], "--product", product,
            "--seats", str(seats), *options,
        )  # fmt: skip

    return issue


class Run(NamedTuple):
    code: int
    out: str
    err: str

    @property
    def document(self) -> Any:
        return json.loads(self.out)

    @property
    def verdict(self) -> str:
        return self.document["validation"]["code"]


class Machine:
    """A workstation: one data folder and installation ID that both kits' CLIs use."""

    def __init__(self, folder: Path, product: str) -> None:
        self.folder = folder
        self.installation_id = f"e2e-c-{uuid.uuid4().hex}"
        self.env = {
            **os.environ,
            "LICENSE_CLIENT_DATA_DIR": str(folder),
            "LICENSE_CLIENT_INSTALLATION_ID": self.installation_id,
            "LICENSE_CLIENT_PRODUCT": product,
        }
        for name in ("LICENSE_SERVER_URL", "LICENSE_CLIENT_PASSWORD"):
            self.env.pop(name, None)

    def c(self, *args: str, **env: str) -> Run:
        """`license-client-c ARGS`."""
        return self.run([str(CLI), *args], env)

    def py(self, *args: str, **env: str) -> Run:
        """`license-client ARGS`: the Python kit's CLI."""
        return self.run([sys.executable, "-m", "license_client", *args], env)

    def example(self, *args: str, **env: str) -> Run:
        return self.run([str(EXAMPLE), *args], env)

    def run(self, argv: list[str], env: dict[str, str]) -> Run:
        result = subprocess.run(
            argv, capture_output=True, text=True, env={**self.env, **env}, timeout=120,
            check=False,
        )  # fmt: skip
        return Run(result.returncode, result.stdout, result.stderr)

    def file(self, name: str) -> Path:
        return self.folder / name


@pytest.fixture
def machine(tmp_path, product):
    """`machine()`: a new workstation, in a folder of its own."""
    numbers = itertools.count(1)
    return lambda: Machine(tmp_path / f"ws-{next(numbers)}", product)


def seats_in_use(suite, license_id: str) -> int:
    return suite.portalctl("license", "show", license_id)["seats_in_use"]


def dead_server() -> str:
    return f"http://127.0.0.1:{free_port()}"


def keys(document: Any) -> Any:
    """The keys of a JSON document, nested: what both CLIs must print alike."""
    if isinstance(document, dict):
        return {key: keys(value) for key, value in document.items()}
    return None


def offline_status(ws: Machine, *args: str) -> Run:
    """`status --offline --json` from both kits' CLIs on the machine's folder: the same exit
    code, verdict and reason in words (times aside: a reason may name the clock's time, a
    second apart between the two runs); the C kit's run."""
    c = ws.c("status", "--offline", "--json", *args)
    python = ws.py("status", "--offline", "--json", *args)
    assert c.code == python.code, c.err + python.err
    assert c.document["validation"]["code"] == python.document["validation"]["code"]
    reasons = [run.document["validation"]["reason"] for run in (c, python)]
    assert len({TIME.sub("<time>", reason) for reason in reasons}) == 1, reasons
    return c


def activate(ws: Machine, suite, license: dict, *args: str) -> Run:
    run = ws.c(
        "--server", suite.url, "activate", license["license_id"],
        "--password", license["activation_password"], *args,
    )  # fmt: skip
    assert run.code == 0, run.out + run.err
    return run


def test_activate_validate_online_and_the_python_kit_agrees(suite, issue, machine):
    license = issue()
    ws = machine()
    run = activate(ws, suite, license, "--machine-name", "CAD-WS-01", "--json")
    document = run.document
    assert document["activated"] and document["validation"]["code"] == "VALID"
    assert (document["license_id"], document["machine_name"]) == (
        license["license_id"],
        "CAD-WS-01",
    )
    assert seats_in_use(suite, license["license_id"]) == 1

    # the server is remembered: no --server any more
    online = ws.c("status", "--json")
    assert online.code == 0, online.err
    assert online.document["validation"]["online"] and online.verdict == "VALID"
    text = ws.c("status")
    assert "VALID, checked online" in text.out and "CAD-WS-01" in text.out

    # the Python kit reads the same folder alike, and prints the same document
    c = offline_status(ws)
    python = ws.py("status", "--offline", "--json")
    assert c.code == 0 and c.verdict == "VALID"
    assert keys(c.document) == keys(python.document)
    for name in ("license_id", "machine_name", "product", "expires_at", "installation_id"):
        assert c.document[name] == python.document[name], name
    assert ws.c("id").out.strip() == ws.py("id").out.strip() == ws.installation_id

    # activating again takes no second seat
    activate(ws, suite, license)
    assert seats_in_use(suite, license["license_id"]) == 1


def test_a_python_activation_is_valid_in_c_and_c_deactivates_it(suite, issue, machine):
    license = issue()
    ws = machine()
    run = ws.py(
        "--server", suite.url, "activate", license["license_id"],
        "--password", license["activation_password"], "--machine-name", "CAD-WS-02",
    )  # fmt: skip
    assert run.code == 0, run.err
    status = offline_status(ws)
    assert status.code == 0 and status.verdict == "VALID"

    deactivated = ws.c("deactivate", "--json")
    assert deactivated.code == 0, deactivated.err
    assert deactivated.document == {
        "deactivated": True,
        "license_id": license["license_id"],
        "installation_id": ws.installation_id,
    }
    assert seats_in_use(suite, license["license_id"]) == 0
    gone = offline_status(ws)
    assert gone.code == 3 and gone.verdict == "NOT_ACTIVATED"
    again = ws.c("deactivate")
    assert again.code == 3 and "not activated" in again.err

    # the server and the machine's name outlive the deactivation, in either kit's hands
    back = ws.c("activate", license["license_id"], "--password", license["activation_password"])
    assert back.code == 0, back.err
    assert "CAD-WS-02" in back.out and seats_in_use(suite, license["license_id"]) == 1


def test_the_server_unreachable_validates_offline_within_the_grace_period(suite, issue, machine):
    license = issue()
    ws = machine()
    activate(ws, suite, license)
    dead = dead_server()
    for kit in (ws.c, ws.py):
        fallback = kit("--server", dead, "status", "--retries", "0", "--json")
        assert fallback.code == 0, fallback.err
        validation = fallback.document["validation"]
        assert validation["valid"] and not validation["online"] and validation["grace_until"]
    text = ws.c("--server", dead, "status", "--retries", "0")
    assert text.code == 0 and "checked offline" in text.out and "grace" in text.out
    offline = ws.c("status", "--offline", "--json")
    assert offline.code == 0 and offline.verdict == "VALID"
    # and activating without a server says so: exit 5
    refused = ws.c("--server", dead, "activate", license["license_id"], "--password", "x",
                   "--retries", "0")  # fmt: skip
    assert refused.code == 5, refused.err


def test_deactivation_in_the_portal_reaches_both_kits(suite, issue, machine):
    license = issue()
    ws = machine()
    activate(ws, suite, license, "--machine-name", "CAD-WS-01")
    suite.portalctl("license", "deactivate", license["license_id"], ws.installation_id)
    online = ws.c("status", "--json")
    assert online.code == 1 and online.verdict == "DEACTIVATED"
    assert online.document["validation"]["online"]
    # remembered: pulling the network does not bring the license back
    offline = offline_status(ws)
    assert offline.code == 1 and offline.verdict == "DEACTIVATED"
    assert "DEACTIVATED" in ws.c("status", "--offline").out

    # activating again needs no --server, keeps the machine's name, and says it was online
    again = ws.c("activate", license["license_id"], "--password", license["activation_password"])
    assert again.code == 0, again.err
    assert "VALID, checked online" in again.out and "CAD-WS-01" in again.out
    assert suite.portalctl("license", "show", license["license_id"])["seats_in_use"] == 1


def test_a_tampered_certificate_is_bad_signature_in_both_kits(suite, issue, machine):
    license = issue()
    ws = machine()
    activate(ws, suite, license)
    path = ws.file("activation.json")
    stored = json.loads(path.read_text())
    header, payload, signature = stored["certificate"].split(".")
    claims = json.loads(jws.b64url_decode(payload))
    claims["seats"] = 500
    forged = jws._b64encode(json.dumps(claims).encode())
    stored["certificate"] = f"{header}.{forged}.{signature}"
    path.write_text(json.dumps(stored))
    offline = offline_status(ws)
    assert offline.code == 1 and offline.verdict == "BAD_SIGNATURE"
    online = ws.c("status", "--json")  # and the server agrees
    assert online.code == 1 and online.verdict == "BAD_SIGNATURE"


def test_an_expired_license_is_expired_in_both_kits(suite, issue, machine):
    license = issue("--expires", (datetime.now(UTC).date() + timedelta(days=30)).isoformat())
    ws = machine()
    activate(ws, suite, license)
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    suite.portalctl("license", "extend", license["license_id"], "--until", yesterday, "--force")
    online = ws.c("status", "--json")
    assert online.code == 1 and online.verdict == "EXPIRED"
    offline = offline_status(ws)
    assert offline.code == 1 and offline.verdict == "EXPIRED"
    refused = ws.c("--server", suite.url, "activate", license["license_id"],
                   "--password", license["activation_password"], "--json")  # fmt: skip
    assert refused.code == 4 and refused.document["error"]["code"] == "license_expired"


def test_a_clock_rolled_back_is_refused_by_both_kits(suite, issue, machine):
    license = issue()
    ws = machine()
    activate(ws, suite, license)
    # this machine once saw a time two days ahead of its clock now
    path = ws.file("state.json")
    state = json.loads(path.read_text())
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    state["last_seen"] = ahead.isoformat().replace("+00:00", "Z")
    path.write_text(json.dumps(state))
    offline = offline_status(ws)
    assert offline.code == 1 and offline.verdict == "CLOCK_ROLLBACK"
    assert "clock" in offline.document["validation"]["reason"]
    # a successful online check is the way out
    assert ws.c("status", "--json").verdict == "VALID"
    assert ws.c("status", "--offline", "--json").verdict == "VALID"


def test_the_wrong_product_is_refused_before_any_seat(suite, issue, machine):
    license = issue()
    ws = machine()
    run = ws.c(
        "--server", suite.url, "--product", "femsolver", "activate", license["license_id"],
        "--password", license["activation_password"], "--json",
    )  # fmt: skip
    assert run.code == 4, run.out + run.err
    assert run.document["error"]["code"] == "wrong_product"
    assert "Activated" not in run.out and "femsolver" in run.err
    assert seats_in_use(suite, license["license_id"]) == 0
    assert not ws.file("activation.json").exists()


def test_refusals_and_usage_errors_exit_as_the_python_cli(suite, issue, machine):
    license = issue()
    ws, other = machine(), machine()
    activate(ws, suite, license, "--machine-name", "CAD-WS-01")
    wrong = other.c("--server", suite.url, "activate", license["license_id"],
                    "--password", "not-the-password", "--json")  # fmt: skip
    assert wrong.code == 4 and wrong.document["error"]["code"] == "invalid_credentials"
    full = other.c("--server", suite.url, "activate", license["license_id"],
                   "--password", license["activation_password"])  # fmt: skip
    assert full.code == 4 and "CAD-WS-01" in full.err
    # the password from standard input, as the Python CLI reads it
    piped = subprocess.run(
        [str(CLI), "--server", suite.url, "activate", license["license_id"]],
        input=license["activation_password"] + "\n", capture_output=True, text=True,
        env=ws.env, timeout=60, check=False,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr

    assert ws.c().code == 2
    assert ws.c("frobnicate").code == 2
    bad_id = ws.c("status", "--installation-id", "has space")
    assert bad_id.code == 2 and "installation ID" in bad_id.err
    for argv in (
        ["--password", "Sekrit-Value-9", "status"],
        ["status", "--password", "Sekrit-Value-9"],
        ["id", "--password=Sekrit-Value-9"],
        ["--pass", "Sekrit-Value-9", "id"],
    ):
        run = ws.c(*argv)
        assert run.code == 2 and "unrecognized arguments" in run.err, argv
        assert "Sekrit-Value-9" not in run.out + run.err, argv
    assert "--password=[redacted]" in ws.c("id", "--password=Sekrit-Value-9").err


def test_offline_activation_with_the_c_kit(suite, issue, machine, tmp_path, product):
    license = issue()
    ws = machine()
    jwks = tmp_path / "vendor-jwks.json"
    jwks.write_text(json.dumps(suite.api.get("/api/v1/signing-keys").json()))
    request, response, proof = (
        tmp_path / n for n in ("request.json", "response.json", "proof.json")
    )
    nowhere = ws.c("offline-request", "--license-id", license["license_id"],
                   "--out", str(tmp_path / "no-such-stick" / "request.json"))  # fmt: skip
    assert nowhere.code == 6, nowhere.err
    run = ws.c("offline-request", "--license-id", license["license_id"], "--machine-name",
               "LAB-07", "--out", str(request), "--json")  # fmt: skip
    assert run.code == 0, run.err
    assert run.document["request_file"] == str(request)
    suite.portalctl("license", "activate-offline", license["license_id"],
                    "--request", str(request), "--out", str(response))  # fmt: skip
    # a file cut short, and the right file on another machine: refused, exit 7
    cut = tmp_path / "cut.json"
    cut.write_bytes(response.read_bytes()[:200])
    refused = ws.c("offline-install", str(cut), "--jwks", str(jwks), "--json")
    assert refused.code == 7 and refused.document["error"]["code"] == "invalid_response"
    elsewhere = machine().c("offline-install", str(response), "--jwks", str(jwks))
    assert elsewhere.code == 7 and "another request" in elsewhere.err
    installed = ws.c("offline-install", str(response), "--jwks", str(jwks), "--json")
    assert installed.code == 0, installed.err
    assert installed.verdict == "VALID" and installed.document["source"] == "offline"
    assert offline_status(ws, "--jwks", str(jwks)).verdict == "VALID"
    # air-gapped is its normal state: no grace period runs out
    unreachable = ws.c(
        "--server", dead_server(), "status", "--jwks", str(jwks), "--retries", "0", "--json"
    )  # fmt: skip
    assert unreachable.code == 0 and unreachable.document["validation"]["grace_until"] is None

    done = ws.c("deactivate", "--offline", "--out", str(proof), "--json")
    assert done.code == 0, done.err
    assert json.loads(proof.read_text())["type"] == "deactivation_proof"
    assert ws.c("status", "--offline", "--jwks", str(jwks)).code == 3


def test_a_borrowed_floating_seat(suite, company, product, machine):
    license = suite.portalctl(
        "license", "issue", "--customer", company["customer_id"], "--product", product,
        "--seats", "1", "--model", "floating", "--lease-seconds", "60", "--max-borrow-days", "3",
    )  # fmt: skip
    ws = machine()
    too_long = ws.c("--server", suite.url, "borrow", "--days", "9", license["license_id"],
                    "--password", license["activation_password"])  # fmt: skip
    assert too_long.code == 4 and "At most 3 days" in too_long.err
    borrowed = ws.c("--server", suite.url, "borrow", "--days", "2", license["license_id"],
                    "--password", license["activation_password"], "--json")  # fmt: skip
    assert borrowed.code == 0, borrowed.err
    assert borrowed.document["borrowed"] and "token" not in borrowed.document
    offline = offline_status(ws)
    assert offline.code == 0 and offline.verdict == "VALID"
    assert offline.document["lease"]["lease_id"] == borrowed.document["lease_id"]
    checked_in = ws.c("checkin", "--json")
    assert checked_in.code == 0 and checked_in.document["checked_in"]
    assert suite.portalctl("license", "show", license["license_id"])["seats_in_use"] == 0
    assert ws.c("checkin").code == 3


def test_checkout_holds_a_floating_seat_until_sigterm(suite, company, product, machine):
    license = suite.portalctl(
        "license", "issue", "--customer", company["customer_id"], "--product", product,
        "--seats", "1", "--model", "floating", "--lease-seconds", "60",
    )  # fmt: skip
    ws = machine()
    holder = subprocess.Popen(
        [str(CLI), "--server", suite.url, "checkout", license["license_id"],
         "--password", license["activation_password"], "--machine-name", "CAD-WS-05"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=ws.env,
    )  # fmt: skip
    try:
        first = holder.stdout.readline()
        assert "Checked out a seat of license" in first and "renewed every 20 s" in first
        assert "Holding the seat" in holder.stdout.readline()
        # another process of this machine sees the lease, whichever kit it embeds
        held = offline_status(ws)
        assert held.code == 0 and held.document["lease"]["machine_name"] == "CAD-WS-05"
        taken = machine().c("--server", suite.url, "checkout", license["license_id"],
                            "--password", license["activation_password"])  # fmt: skip
        assert taken.code == 4 and "CAD-WS-05" in taken.err
        holder.send_signal(signal.SIGTERM)
        out, err = holder.communicate(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert holder.returncode == 0, err
    assert "Checked in lease" in out
    assert suite.portalctl("license", "show", license["license_id"])["seats_in_use"] == 0


def test_the_cpp_example_activates_runs_offline_and_deactivates(suite, issue, machine, product):
    license = issue()
    ws = machine()
    first = ws.example(
        product, "activate", license["license_id"], license["activation_password"],
        LICENSE_SERVER_URL=suite.url,
    )  # fmt: skip
    assert first.code == 0, first.err
    assert "confirmed by the license server" in first.out and f"Running {product}" in first.out
    # the network pulled: the library falls back to the certificate within the grace period
    offline = ws.example(product, "run", LICENSE_SERVER_URL=dead_server())
    assert offline.code == 0, offline.err
    assert "cannot be reached: running on the stored certificate until" in offline.out
    assert offline_status(ws).verdict == "VALID"
    assert ws.example(product, "deactivate").code == 0
    assert seats_in_use(suite, license["license_id"]) == 0
    gone = ws.example(product, "run")
    assert gone.code == 1 and "NOT_ACTIVATED" in gone.err
