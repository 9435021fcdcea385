"""The payment provider as the portal sees it: the catalog's `payment` object, and what the
Content-Security-Policy of the pages that take cards must allow for Stripe.js.

PAYMENT_PROVIDER is `sandbox` (our card form; billing's sandbox takes card numbers) or
`stripe`: the portal loads Stripe.js from STRIPE_JS_URL (default
https://js.stripe.com/v3/), which turns the card into a PaymentMethod in the browser with
STRIPE_PUBLISHABLE_KEY, so no card number ever reaches the gateway. The secret key and the
webhook secret are billing's alone: the gateway never reads them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from common import settings
from common.errors import ValidationFailed
from gateway.responses import PORTAL_CSP, extend_csp

SANDBOX = "sandbox"
STRIPE = "stripe"
DEFAULT_STRIPE_JS_URL = "https://js.stripe.com/v3/"
# what real Stripe.js itself talks to and frames, besides the origin it is loaded from
# (https://docs.stripe.com/security/guide#content-security-policy)
STRIPE_API = "https://api.stripe.com"
STRIPE_SCRIPTS = ("https://js.stripe.com", "https://*.js.stripe.com")
STRIPE_FRAMES = (*STRIPE_SCRIPTS, "https://hooks.stripe.com")
# Stripe.js from plain http only on this machine (a local Stripe server for trials and tests)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
CARD_NOT_ACCEPTED = (
    "Card numbers are not accepted here: pay with the card form of the portal (Stripe)."
)


def provider() -> str:
    """`sandbox` or `stripe` (PAYMENT_PROVIDER, read as billing reads it; default sandbox)."""
    return settings.payment_provider()


def stripe_js_url() -> str:
    return settings.get("STRIPE_JS_URL", DEFAULT_STRIPE_JS_URL) or DEFAULT_STRIPE_JS_URL


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of an http(s) URL; ValueError for anything else.

    >>> origin_of("https://js.stripe.com/v3/"), origin_of("http://127.0.0.1:8420/js/v3/")
    ('https://js.stripe.com', 'http://127.0.0.1:8420')
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def refuse_card_numbers(body: dict[str, Any]) -> None:
    """With Stripe a card number stops at the gateway (422 `card_not_accepted`): it never
    rides the bus to billing, nor lands in any log or database of ours."""
    if provider() == STRIPE and body.get("card") is not None:
        raise ValidationFailed(
            CARD_NOT_ACCEPTED,
            details={"fields": {"card": [CARD_NOT_ACCEPTED]}},
            code="card_not_accepted",
        )


def check() -> None:
    """Refuse to start on a payment setting the portal cannot work with (a typo in the
    provider, Stripe without its publishable key or with a JS URL that is no URL): better
    than a buy page that cannot take a card."""
    name = provider()
    if name not in (SANDBOX, STRIPE):
        raise RuntimeError(f"PAYMENT_PROVIDER={name!r}: use 'sandbox' or 'stripe'")
    if name == STRIPE:
        if not (settings.get("STRIPE_PUBLISHABLE_KEY") or "").startswith("pk_"):
            raise RuntimeError(
                "PAYMENT_PROVIDER=stripe needs STRIPE_PUBLISHABLE_KEY (pk_live_… or pk_test_…)"
            )
        try:
            origin = urlsplit(origin_of(stripe_js_url()))
        except ValueError as exc:
            raise RuntimeError(f"STRIPE_JS_URL: {exc}") from exc
        if origin.scheme != "https" and origin.hostname not in LOOPBACK_HOSTS:
            raise RuntimeError("STRIPE_JS_URL must be https:// (plain http only on localhost)")


def catalog_payment() -> dict[str, Any]:
    """The catalog's `payment`: `{"provider": "sandbox"}` or `{"provider": "stripe",
    "publishable_key": "pk_test_…", "js_url": "https://js.stripe.com/v3/"}`."""
    if provider() != STRIPE:
        return {"provider": SANDBOX, "publishable_key": None, "js_url": None}
    return {
        "provider": STRIPE,
        "publishable_key": settings.get("STRIPE_PUBLISHABLE_KEY"),
        "js_url": stripe_js_url(),
    }


def checkout_csp() -> str:
    """The CSP of a page that takes cards (buy, recurring payments): the portal's own, plus
    with Stripe the origin of Stripe.js (script, frames, calls) and what real Stripe.js
    calls and frames."""
    if provider() != STRIPE:
        return PORTAL_CSP
    origin = origin_of(stripe_js_url())
    return extend_csp(
        PORTAL_CSP,
        {
            "script-src": [origin, *STRIPE_SCRIPTS],
            "frame-src": ["'self'", origin, *STRIPE_FRAMES],
            "connect-src": [origin, STRIPE_API],
        },
    )
