"""The local Stripe server of the tests (tests/support/stripe_server.py) as a process, and the
suite run against it.

`StripeServer` starts the server on a free port with API keys and a webhook secret of this
run, hands out a `stripe.StripeClient` pointed at it, does what a browser does with the
publishable key (create a payment method, pass or fail 3-D Secure), and signs events the way
Stripe signs its webhooks. The fixtures: `stripe_server` (the session's server) and
`stripe_suite` (the whole suite with PAYMENT_PROVIDER=stripe, its webhooks registered).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from tests.support import infra
from tests.support.suite import ROOT, Suite, free_port, provisioned_suite

MODULE = "tests.support.stripe_server"
API_VERSION = "2024-06-20"


class StripeServer:
    """One local Stripe server process: `start()`, `stop()`, and what tests ask of Stripe."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        run = f"{infra.RUN_ID}_{secrets.token_hex(6)}"
        self.secret_key = f"sk_test_{run}"
        self.publishable_key = f"pk_test_{run}"
        self.webhook_secret = f"whsec_{secrets.token_hex(16)}"
        self.js_url = f"{self.url}/js.stripe.com/v3/"
        self.process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.log_dir / "stripe-server.log"

    def start(self, timeout: float = 30.0) -> None:
        command = [
            sys.executable, "-m", MODULE, "--port", str(self.port),
            "--store", str(self.log_dir / "stripe-store.pickle"),
            "--secret-key", self.secret_key, "--publishable-key", self.publishable_key,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the local Stripe server exited ({self.process.returncode}):\n"
                    + self.log()[-3000:]
                )
            try:
                if requests.get(self.js_url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the local Stripe server did not answer within {timeout}s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- as the portal's back end: the secret key ---------------------------------------------

    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(
            self.secret_key, base_addresses={"api": self.url}, max_network_retries=0
        )

    def register_webhook(self, url: str, endpoint: str = "portal") -> None:
        """Deliver this server's events to `url`, signed with `webhook_secret`."""
        response = requests.post(
            f"{self.url}/_config/webhooks/{endpoint}",
            data={"url": url, "secret": self.webhook_secret},
            timeout=5,
        )
        response.raise_for_status()

    def events(self, type: str | None = None) -> list[dict]:
        """Events the server sent, newest first, as delivered (plain dicts)."""
        params: dict[str, Any] = {"limit": 100}
        if type:
            params["type"] = type
        response = requests.get(
            f"{self.url}/v1/events", params=params, auth=(self.secret_key, ""), timeout=5
        )
        response.raise_for_status()
        return sorted(response.json()["data"], key=lambda e: e["created"], reverse=True)

    # --- as Stripe's webhooks ---------------------------------------------------------------------

    def sign(self, payload: bytes, timestamp: int | None = None, secret: str | None = None) -> str:
        """A `Stripe-Signature` header for `payload`, as Stripe signs a webhook."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        signed = f"{timestamp}.".encode() + payload
        key = (secret or self.webhook_secret).encode()
        return f"t={timestamp},v1={hmac.new(key, signed, hashlib.sha256).hexdigest()}"

    @staticmethod
    def event(type: str, obj: dict, event_id: str | None = None) -> dict:
        """An event as Stripe delivers it: `{"id": "evt_…", "type": …, "data": {"object": obj}}`."""
        return {
            "id": event_id or f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type,
            "data": {"object": obj},
        }

    def signed(self, event: dict) -> tuple[bytes, dict[str, str]]:
        """`event` as a webhook body and its headers."""
        payload = json.dumps(event).encode()
        return payload, {"Stripe-Signature": self.sign(payload), "Content-Type": "application/json"}

    # --- as a browser with Stripe.js: the publishable key ---------------------------------------

    def payment_method(
        self, card_number: str, exp_month: int = 12, exp_year: int = 2031, cvc: str = "123"
    ) -> str:
        """A payment method (`pm_…`) made from a card, as Stripe.js makes one in the browser."""
        response = requests.post(
            f"{self.url}/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": card_number,
                "card[exp_month]": str(exp_month),
                "card[exp_year]": str(exp_year),
                "card[cvc]": cvc,
                "key": self.publishable_key,
                "payment_user_agent": "stripe.js/tests",
            },
            timeout=5,
        )
        assert response.status_code == 200, response.text
        return response.json()["id"]

    def authenticate(self, client_secret: str, success: bool = True) -> dict:
        """Pass (or fail) the 3-D Secure of a payment intent, as the customer does in the modal
        of Stripe.js; the payment intent afterwards."""
        intent = client_secret.split("_secret_")[0]
        response = requests.post(
            f"{self.url}/v1/payment_intents/{intent}/_authenticate",
            data={
                "key": self.publishable_key,
                "client_secret": client_secret,
                "success": "true" if success else "false",
            },
            timeout=5,
        )
        assert response.status_code == 200, response.text
        return response.json()


@contextmanager
def running_stripe_server(log_dir: Path) -> Iterator[StripeServer]:
    server = StripeServer(log_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def stripe_env(server: StripeServer) -> dict[str, str]:
    """The settings of billing and the gateway for payments through `server`."""
    return {
        "PAYMENT_PROVIDER": "stripe",
        "STRIPE_API_BASE": server.url,
        "STRIPE_SECRET_KEY": server.secret_key,
        "STRIPE_PUBLISHABLE_KEY": server.publishable_key,
        "STRIPE_WEBHOOK_SECRET": server.webhook_secret,
        "STRIPE_JS_URL": server.js_url,
    }


@pytest.fixture(scope="session")
def stripe_server(tmp_path_factory) -> Iterator[StripeServer]:
    """The session's local Stripe server."""
    with running_stripe_server(tmp_path_factory.mktemp("stripe")) as server:
        yield server


@pytest.fixture(scope="session")
def stripe_suite(stripe_server, smtp_sink, tmp_path_factory) -> Iterator[Suite]:
    """The whole suite paying through `stripe_server`, which sends its webhooks to the
    gateway's /webhooks/stripe. The environment is the `suite` fixture's (tests/conftest.py)
    plus the Stripe settings."""
    env = {
        "VAR_DIR": str(tmp_path_factory.mktemp("stripe-var")),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_sink.port),
        "MAIL_FROM": "portal@license-portal.test",
        "RPC_TIMEOUT": "3",
        "NOTIFY_POLL_SECONDS": "0.3",
        "NOTIFY_RETRY_BASE_SECONDS": "0.5",
        "LOG_LEVEL": "INFO",
        **stripe_env(stripe_server),
    }
    with provisioned_suite("stripe", env, tmp_path_factory.mktemp("stripe-logs")) as suite:
        stripe_server.register_webhook(f"{suite.url}/webhooks/stripe")
        yield suite
