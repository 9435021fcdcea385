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
from gateway.responses import PORTAL_CSP, extend_csp

SANDBOX = "sandbox"
STRIPE = "stripe"
DEFAULT_STRIPE_JS_URL = "https://js.stripe.com/v3/"
# what real Stripe.js itself talks to and frames, besides the origin it is loaded from
# (https://docs.stripe.com/security/guide#content-security-policy)
STRIPE_API = "https://api.stripe.com"
STRIPE_FRAMES = ("https://js.stripe.com", "https://hooks.stripe.com")


def provider() -> str:
    """`sandbox` or `stripe` (PAYMENT_PROVIDER; default sandbox)."""
    return (settings.get("PAYMENT_PROVIDER", SANDBOX) or SANDBOX).strip().lower()


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
            origin_of(stripe_js_url())
        except ValueError as exc:
            raise RuntimeError(f"STRIPE_JS_URL: {exc}") from exc


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
            "script-src": [origin],
            "frame-src": ["'self'", origin, *STRIPE_FRAMES],
            "connect-src": [origin, STRIPE_API],
        },
    )
