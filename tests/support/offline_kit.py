"""An air-gapped workstation for the e2e tests: the client kit's real CLI (`license-client`)
run in a subprocess whose network namespace has no interface but a down loopback
(`unshare -n`), with a folder standing in for the USB stick; and the offline files of
design §11 as plain JSON, for the variants no kit would write.

`unshare -n` needs root (or user namespaces); `network_off_missing()` says why it cannot run
here, and the tests skip with that reason instead of silently running with a network.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

KIT_ENV_PREFIX = "LICENSE_"  # the kit's variables: none leaks in from the test's environment


def network_off_missing() -> str | None:
    """Why a command cannot be run without networking here, or None when it can."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return "unshare (util-linux) is not installed: cannot run the kit without a network"
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, text=True, timeout=20)
    if probe.returncode != 0:
        return f"`unshare -n` is not permitted here: {probe.stderr.strip()}"
    return None


@dataclass
class Machine:
    """A workstation without a network: its data folder, the JWKS shipped with the product
    (the kit never takes a key from a file it is given), and a USB stick folder."""

    root: Path
    product: str
    jwks: dict[str, Any]
    # the server the kit would try if it went online: reachable from the test, never from
    # the machine's empty network namespace
    server: str
    # each machine its own: the kit derives one from the host, the same for every test machine
    installation_id: str

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.usb.mkdir(parents=True, exist_ok=True)
        self.jwks_file.write_text(json.dumps(self.jwks), encoding="utf-8")

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def usb(self) -> Path:
        return self.root / "usb-stick"

    @property
    def jwks_file(self) -> Path:
        return self.root / "product-jwks.json"

    def kit(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
        """`license-client ARGS --json` with networking disabled; asserts the exit code
        (`expect`, None for any) and that nothing crashed."""
        command = [
            "unshare",
            "-n",
            sys.executable,
            "-m",
            "license_client",
            *args,
            "--data-dir",
            str(self.data_dir),
            "--product",
            self.product,
            "--jwks",
            str(self.jwks_file),
            "--server",
            self.server,
            "--installation-id",
            self.installation_id,
            "--retries",
            "0",
            "--timeout",
            "3",
            "--json",
        ]
        env = {
            name: value for name, value in os.environ.items() if not name.startswith(KIT_ENV_PREFIX)
        }
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        assert "Traceback" not in result.stderr, result.stderr
        if expect is not None:
            assert result.returncode == expect, (result.returncode, result.stdout, result.stderr)
        return result

    def document(self, *args: str, expect: int | None = 0) -> dict[str, Any]:
        """The one JSON document `license-client ARGS --json` printed."""
        return json.loads(self.kit(*args, expect=expect).stdout)

    def can_reach(self, url: str) -> bool:
        """Whether this machine's namespace reaches `url` (it must not: the test's premise)."""
        probe = (
            "import sys, urllib.request\n"
            "try:\n"
            "    urllib.request.urlopen(sys.argv[1], timeout=3)\n"
            "except Exception:\n"
            "    sys.exit(1)\n"
        )
        result = subprocess.run(
            ["unshare", "-n", sys.executable, "-c", probe, url], capture_output=True, timeout=30
        )
        return result.returncode == 0


# --- the files of design §11, written by hand -------------------------------------------------


def now_text() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def request_document(
    license_id: str, installation_id: str, product: str, machine_name: str = "CAD-WS-07"
) -> dict[str, Any]:
    """An activation request as the contract spells it (what any kit writes)."""
    return {
        "type": "activation_request",
        "version": 1,
        "license_id": license_id,
        "installation_id": installation_id,
        "machine_name": machine_name,
        "product": product,
        "requested_at": now_text(),
        "nonce": secrets.token_urlsafe(24),
    }


def request_text(license_id: str, installation_id: str, product: str, machine: str = "WS") -> str:
    return json.dumps(request_document(license_id, installation_id, product, machine))


def claims_of(certificate: str) -> dict[str, Any]:
    """The claims of a compact JWS, unverified (the kit's and the server's checks verify)."""
    payload = certificate.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def request_file(
    license_id: str, product: str, installation_id: str = "air-1", **changes: Any
) -> str:
    """An activation request's text for the licensing tests: a fresh nonce, the machine
    named `WS-<installation_id>`, and `changes` over any field (None values included)."""
    body = request_document(license_id, installation_id, product, f"WS-{installation_id}")
    body.update(changes)
    return json.dumps(body)


def proof_file(license_id: str, installation_id: str, secret: str) -> str:
    """A deactivation proof's text, as the kit writes it when it lets its seat go."""
    return json.dumps(
        {
            "type": "deactivation_proof",
            "version": 1,
            "license_id": license_id,
            "installation_id": installation_id,
            "deactivated_at": now_text(),
            "secret": secret,
        }
    )


MODULES = (("steel", "Steel design"), ("dyn", "Dynamic analysis"))


def product_with_modules(suite: Any, prefix: str, name: str) -> dict[str, str]:
    """A new product `<prefix><random>` offering MODULES (staff add them with portalctl)."""
    code = f"{prefix}{secrets.token_hex(4)}"
    suite.portalctl("product", "create", "--code", code, "--name", name)
    for feature, feature_name in MODULES:
        suite.portalctl(
            "product",
            "feature",
            "add",
            "--product",
            code,
            "--code",
            feature,
            "--name",
            feature_name,
        )
    return {"code": code}


def issue_license(
    suite: Any, customer_id: str, product: str, seats: int, features: str | None
) -> dict[str, Any]:
    """A license of `product` for `customer_id` until 2099 with `features` ("a,b" or None),
    as staff issue it with portalctl."""
    args = ["license", "issue", "--customer", customer_id, "--product", product]
    args += ["--seats", str(seats), "--expires", "2099-12-31"]
    if features:
        args += ["--features", features]
    return suite.portalctl(*args)
