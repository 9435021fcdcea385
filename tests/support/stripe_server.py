"""A local Stripe for the tests and `portalctl dev --stripe-local`: localstripe, imported and
patched at run time where the portal relies on Stripe behaving as Stripe does.

    python -m tests.support.stripe_server --port 8420 [--store PATH]
        [--secret-key sk_test_… --publishable-key pk_test_…]

What the patches add or correct (localstripe's own code is never copied here):
- `Idempotency-Key` on POST: the same key on the same path answers the first response again
  (header `Idempotent-Replayed: true`); another body with that key → 400 `idempotency_error`.
- errors shaped as Stripe's: 402 is a `card_error` with `decline_code` (and the
  `payment_intent` when one was confirmed), 404 has code `resource_missing`.
- PaymentIntent create takes `description`, `setup_future_usage` (and other harmless options);
  `off_session=true` with a card that asks for 3-D Secure fails like Stripe (402
  `authentication_required`) instead of waiting for a customer who is not there.
- SetupIntent create takes `payment_method` and `confirm` (and attaches the method to the
  customer once it succeeds).
- POST /v1/payment_methods with the publishable key, as Stripe.js does.
- cards that attach and decline at charge: 4000000000009995 (`insufficient_funds`) and
  4000000000000341 (`card_declined` / `generic_decline`).
- GET /v1/{payment_intents,customers,charges}/search with `field:'value'` clauses joined by
  AND (`metadata['charge_key']:'K'`, `status:'succeeded'`, …).
- webhooks: `charge.refunded` on every refund, `payment_intent.payment_failed` when 3-D Secure
  is failed, besides what localstripe sends (`payment_intent.succeeded`, …).
- Stripe.js (/js.stripe.com/v3/): localstripe's, plus `createPaymentMethod({type: "card",
  card: element})`, change events with an event object, and `confirmCardPayment` answering
  `{error}` when authentication failed, as Stripe.js does.
- the store is this run's own (`--store`, never loaded at start), or memory only.
- with `--secret-key` / `--publishable-key`, only those keys are accepted (else any
  `sk_…` / `pk_…`, as localstripe does).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
import pickle
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError
from localstripe.resources import (
    Charge,
    Customer,
    Event,
    PaymentIntent,
    PaymentMethod,
    Refund,
    SetupIntent,
    Store,
    schedule_webhook,
    try_convert_to_bool,
    try_convert_to_int,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# cards that attach to a customer fine and are declined when charged: decline code, message
DECLINED_AT_CHARGE = {
    "4000000000000341": ("generic_decline", "Your card was declined."),
    "4000000000009995": ("insufficient_funds", "Your card has insufficient funds."),
}
AUTHENTICATION_REQUIRED = "Your card was declined. This transaction requires authentication."
# options Stripe takes on a PaymentIntent / SetupIntent that change nothing here
PAYMENT_INTENT_OPTIONS = (
    "description",
    "setup_future_usage",
    "automatic_payment_methods",
    "receipt_email",
    "return_url",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "confirmation_method",
    "use_stripe_sdk",
)
SETUP_INTENT_OPTIONS = ("description", "automatic_payment_methods", "return_url")
# endpoints Stripe.js calls with the publishable key (`key` in the body)
PUBLISHABLE_PATHS = (
    r"^/v1/tokens$",
    r"^/v1/sources$",
    r"^/v1/payment_methods$",
    r"^/v1/payment_intents/\w+/_authenticate$",
    r"^/v1/setup_intents/\w+/(confirm|cancel)$",
)
SEARCHABLE = {"payment_intents": PaymentIntent, "customers": Customer, "charges": Charge}
CLAUSE = re.compile(
    r"""^(?:metadata\[(['"])(?P<key>.+?)\1\]|(?P<field>[a-z_]+))\s*:\s*(['"])(?P<value>.*)\4$"""
)
JS_PATH = "/js.stripe.com/v3/"
JS_EXTENSION = """
// --- License Portal's additions (tests/support/stripe_server.py) ---
(function () {
  const makeStripe = Stripe;
  const elementOn = Element.prototype.on;
  // Stripe.js hands change handlers an event; localstripe's calls them with nothing
  Element.prototype.on = function (event, handler) {
    const element = this;
    return elementOn.call(this, event, function (given) {
      const card = (element.value && element.value.card) || {};
      return handler(given || {
        elementType: 'card',
        empty: !card.number,
        complete: !!(card.number && card.exp_month && card.cvc),
        error: undefined,
      });
    });
  };

  function cardFields(element) {
    const card = element && element.value && element.value.card;
    if (!card || !card.number) {
      return null;
    }
    let year = String(card.exp_year || '');
    if (year.length === 6 && year.startsWith('20')) {
      year = year.slice(2);  // a four-digit year typed after localstripe's "20"
    }
    return {
      number: String(card.number).replace(/\\s+/g, ''),
      exp_month: String(card.exp_month || ''),
      exp_year: year,
      cvc: String(card.cvc || ''),
    };
  }

  window.Stripe = Stripe = function (apiKey, options) {
    const stripe = makeStripe(apiKey, options);

    stripe.createPaymentMethod = async function (typeOrData, element, data) {
      const params = typeof typeOrData === 'string'
        ? {type: typeOrData, card: element, ...(data || {})}
        : (typeOrData || {});
      if (params.type !== 'card') {
        return {error: {type: 'validation_error',
                        message: 'Only card payment methods are supported here.'}};
      }
      const card = cardFields(params.card);
      if (!card) {
        return {error: {type: 'validation_error', code: 'incomplete_number',
                        message: 'Your card number is incomplete.'}};
      }
      const fields = new URLSearchParams();
      fields.append('type', 'card');
      fields.append('key', apiKey);
      fields.append('payment_user_agent', 'localstripe');
      Object.keys(card).forEach(name => fields.append(`card[${name}]`, card[name]));
      const details = params.billing_details || {};
      ['name', 'email', 'phone'].forEach(name => {
        if (details[name]) {
          fields.append(`billing_details[${name}]`, details[name]);
        }
      });
      try {
        const response = await fetch(`${LOCALSTRIPE_BASE_API}/v1/payment_methods`, {
          method: 'POST',
          headers: {'Content-Type': 'application/x-www-form-urlencoded'},
          body: fields.toString(),
        });
        const body = await response.json().catch(() => ({}));
        if (response.status !== 200 || body.error) {
          const error = body.error || {};
          if (!error.message || error.message === 'Bad request') {
            error.type = 'validation_error';
            error.message = 'Your card details are incomplete or invalid.';
          }
          return {error};
        }
        return {paymentMethod: body};
      } catch (err) {
        return {error: {type: 'api_connection_error', message: String(err)}};
      }
    };

    const confirmCardPayment = stripe.confirmCardPayment;
    stripe.confirmCardPayment = async function (clientSecret, data) {
      const result = await confirmCardPayment(clientSecret, data);
      const intent = result && result.paymentIntent;
      if (intent && intent.status !== 'succeeded' && intent.status !== 'processing') {
        return {error: {
          type: 'invalid_request_error',
          code: 'payment_intent_authentication_failure',
          message: 'We are unable to authenticate your payment method. Please choose a ' +
                   'different payment method and try again.',
          payment_intent: intent,
        }};
      }
      return result;
    };
    return stripe;
  };
})();
"""

log = logging.getLogger("stripe_server")


class Keys:
    """The API keys this server accepts: given ones only, or any of the right kind."""

    secret: str | None = None
    publishable: str | None = None

    @classmethod
    def accepts_secret(cls, key: str | None) -> bool:
        if not key:
            return False
        return key == cls.secret if cls.secret else key.startswith("sk_") and len(key) > 5

    @classmethod
    def accepts_publishable(cls, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return key == cls.publishable if cls.publishable else key.startswith("pk_")


# --- Stripe's shapes of errors ----------------------------------------------------------------

_user_error_init = UserError.__init__


def _stripe_error_init(
    self: UserError, code: int, message: str | None = None, contents: dict | None = None
) -> None:
    _user_error_init(self, code, message, contents)
    error = self.body["error"]
    if code == 402:
        error["type"] = "card_error"
        if error.get("code") == "card_declined":
            error.setdefault("decline_code", "generic_decline")
    elif code == 404:
        error.setdefault("code", "resource_missing")


# --- cards declined at charge -------------------------------------------------------------------


def _card_number(method: Any) -> str | None:
    return (
        getattr(method, "_card_number", None) if getattr(method, "type", None) == "card" else None
    )


_attaching_is_declined = PaymentMethod._attaching_is_declined
_charging_is_declined = PaymentMethod._charging_is_declined


def _attaching_declined(self: PaymentMethod) -> bool:
    if _card_number(self) in DECLINED_AT_CHARGE:
        return False
    return _attaching_is_declined(self)


def _charging_declined(self: PaymentMethod) -> bool:
    return _card_number(self) in DECLINED_AT_CHARGE or _charging_is_declined(self)


_set_auth_failure = Charge._set_auth_failure


def _charge_failed(self: Charge) -> None:
    _set_auth_failure(self)
    try:
        method = PaymentMethod._api_retrieve(self.payment_method)
    except UserError:
        method = None
    decline_code, message = DECLINED_AT_CHARGE.get(
        _card_number(method), ("generic_decline", self.failure_message)
    )
    self._decline_code = decline_code
    self.failure_message = message
    self.outcome = {"type": "issuer_declined", "reason": decline_code}


def _raise_charge_failure(self: Charge) -> None:
    error = {
        "code": self.failure_code,
        "decline_code": getattr(self, "_decline_code", "generic_decline"),
        "charge": self.id,
    }
    if self.payment_intent:
        error["payment_intent"] = PaymentIntent._api_retrieve(self.payment_intent)._export()
    raise UserError(402, self.failure_message, error)


# --- PaymentIntent ----------------------------------------------------------------------------

_payment_intent_init = PaymentIntent.__init__
_payment_intent_create = PaymentIntent.__dict__["_api_create"].__func__
_last_payment_error = PaymentIntent.last_payment_error.fget


def _payment_intent_with_options(self: PaymentIntent, **data: Any) -> None:
    options = {name: data.pop(name) for name in PAYMENT_INTENT_OPTIONS if name in data}
    if options.get("setup_future_usage") not in (None, "", "on_session", "off_session"):
        raise UserError(400, "Invalid setup_future_usage", {"param": "setup_future_usage"})
    if options.get("description") is not None and not isinstance(options["description"], str):
        raise UserError(400, "Invalid description", {"param": "description"})
    _payment_intent_init(self, **data)
    self.description = options.get("description")
    self.setup_future_usage = options.get("setup_future_usage") or None


def _payment_intent_error(self: PaymentIntent) -> dict | None:
    error = getattr(self, "_error", None) or _last_payment_error(self)
    if not error:
        return None
    error = {"type": "card_error", **error}
    charge = self.latest_charge
    if charge is not None and getattr(charge, "_decline_code", None):
        error.setdefault("decline_code", charge._decline_code)
    return error


def _create_payment_intent(
    cls: type[PaymentIntent], confirm: Any = None, off_session: Any = None, **data: Any
) -> PaymentIntent:
    """Off-session with a card that asks for 3-D Secure: Stripe declines at once (the customer
    is not there to authenticate) and leaves the intent needing another payment method."""
    method_id = data.get("payment_method")
    if try_convert_to_bool(off_session) is True and try_convert_to_bool(confirm) is True:
        method = PaymentMethod._api_retrieve(method_id) if isinstance(method_id, str) else None
        if method is not None and method._requires_authentication():
            intent = _payment_intent_create(cls, **data)
            intent.payment_method = None
            intent._error = {
                "code": "authentication_required",
                "decline_code": "authentication_required",
                "message": AUTHENTICATION_REQUIRED,
                "payment_method": method._export(),
            }
            schedule_webhook(Event("payment_intent.payment_failed", intent))
            raise UserError(
                402,
                AUTHENTICATION_REQUIRED,
                {
                    "code": "authentication_required",
                    "decline_code": "authentication_required",
                    "payment_intent": intent._export(),
                },
            )
    return _payment_intent_create(cls, confirm=confirm, off_session=off_session, **data)


# --- SetupIntent ------------------------------------------------------------------------------


def _create_setup_intent(
    cls: type[SetupIntent], payment_method: Any = None, confirm: Any = None, **data: Any
) -> SetupIntent:
    for name in SETUP_INTENT_OPTIONS:
        data.pop(name, None)
    if payment_method is not None:
        if not isinstance(payment_method, str):
            raise UserError(400, "Invalid payment_method", {"param": "payment_method"})
        PaymentMethod._api_retrieve(payment_method)  # 404 before anything is created
    intent = cls(**data)
    if payment_method is None:
        return intent
    if try_convert_to_bool(confirm) is True:
        try:
            SetupIntent._api_confirm(intent.id, payment_method=payment_method)
        except UserError as exc:
            exc.body["error"]["setup_intent"] = intent._export()
            raise
        if intent.status == "succeeded" and intent.customer:
            PaymentMethod._api_retrieve(payment_method).customer = intent.customer
    else:
        intent.payment_method = payment_method
        intent.status = "requires_confirmation"
    return intent


# --- Refund -----------------------------------------------------------------------------------


def _create_refund(cls: type[Refund], reason: Any = None, **data: Any) -> Refund:
    """Refuses more than is left to refund, as Stripe does, and sends `charge.refunded`."""
    if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
        raise UserError(400, "Invalid reason", {"param": "reason"})
    charge = None
    if isinstance(data.get("payment_intent"), str):
        intent = PaymentIntent._api_retrieve(data["payment_intent"])
        charge = intent.latest_charge
        if charge is None:
            raise UserError(
                400,
                "This PaymentIntent does not have a successful charge to refund.",
                {"code": "charge_not_refundable"},
            )
    elif isinstance(data.get("charge"), str):
        charge = Charge._api_retrieve(data["charge"])
    if charge is not None and charge.status == "succeeded":
        left = charge.amount - charge.amount_refunded
        amount = try_convert_to_int(data.get("amount", left))
        if left <= 0:
            raise UserError(
                400,
                f"Charge {charge.id} has already been refunded.",
                {"code": "charge_already_refunded"},
            )
        if isinstance(amount, int) and amount > left:
            raise UserError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                {"code": "amount_too_large", "param": "amount"},
            )
    refund = cls(**data)
    refund.reason = reason
    schedule_webhook(Event("charge.refunded", Charge._api_retrieve(refund.charge)))
    return refund


# --- the store --------------------------------------------------------------------------------


class StorePath:
    path: Path | None = None


def _dump_store(self: Store) -> None:
    if StorePath.path is None:
        return
    partial = StorePath.path.with_suffix(".partial")
    with open(partial, "wb") as file:
        pickle.dump(dict(self), file, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(StorePath.path)


def _load_nothing(self: Store) -> None:
    """Each run starts from scratch: a store left by another run is never read."""


# --- search -----------------------------------------------------------------------------------


def search(kind: str, query: str, limit: Any = None) -> dict:
    """Stripe's search API for `field:'value'` clauses joined with AND."""
    cls = SEARCHABLE[kind]
    clauses = []
    for part in re.split(r"\s+AND\s+", query.strip()):
        found = CLAUSE.match(part.strip())
        if not found:
            raise UserError(
                400,
                f"Unsupported search query: {query!r} (this server knows field:'value' clauses "
                "joined by AND)",
                {"code": "parameter_invalid", "param": "query"},
            )
        clauses.append(found)

    def matches(obj: Any) -> bool:
        for clause in clauses:
            if clause["key"] is not None:
                value = (getattr(obj, "metadata", None) or {}).get(clause["key"])
            else:
                value = getattr(obj, clause["field"], None)
            if value is None or str(value) != clause["value"]:
                return False
        return True

    limit = try_convert_to_int(limit) if limit is not None else 10
    if not isinstance(limit, int) or not 1 <= limit <= 100:
        raise UserError(400, "Invalid limit", {"param": "limit"})
    prefix = cls.object + ":"
    found = [obj for key, obj in resources.store.items() if key.startswith(prefix) and matches(obj)]
    found.sort(key=lambda obj: obj.created, reverse=True)
    return {
        "object": "search_result",
        "url": f"/v1/{kind}/search",
        "data": [obj._export() for obj in found[:limit]],
        "has_more": len(found) > limit,
        "next_page": None,
        "total_count": len(found),
    }


# --- middlewares ------------------------------------------------------------------------------


class Replays:
    """First responses of idempotent requests: (api key, path, idempotency key) → response."""

    saved: dict[tuple[str, str, str], tuple[str, int, bytes, str]] = {}


def _api_key(request: web.Request) -> str | None:
    kind, _, value = request.headers.get("Authorization", "").partition(" ")
    if kind == "Bearer":
        return value.strip()
    if kind == "Basic":
        try:
            return base64.b64decode(value).decode().partition(":")[0]
        except ValueError:
            return None
    return None


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)
    body = await request.read()
    digest = hashlib.sha256(body).hexdigest()
    slot = (_api_key(request) or "", request.path, key)
    if slot in Replays.saved:
        first_digest, status, payload, content_type = Replays.saved[slot]
        if first_digest != digest:
            return server.json_response(
                {
                    "error": {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the same "
                        f"parameters they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.",
                    }
                },
                status=400,
            )
        return web.Response(
            status=status,
            body=payload,
            content_type=content_type,
            headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
        )
    response = await handler(request)
    # Stripe saves every answer of a request that ran (errors too), not a 5xx or a 401/409/429
    saved = isinstance(response, web.Response) and isinstance(response.body, bytes)
    if saved and response.status < 500 and response.status not in (401, 409, 429):
        Replays.saved[slot] = (digest, response.status, response.body, response.content_type)
    return response


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Secret key for the API; the publishable key where Stripe.js may use it."""
    if request.path.startswith(("/js.stripe.com/", "/_config/")):
        return await handler(request)
    key = _api_key(request)
    if key is not None:
        if Keys.accepts_secret(key):
            return await handler(request)
        raise UserError(401, f"Invalid API Key provided: {key[:8]}****")
    if request.method == "POST" and any(re.match(p, request.path) for p in PUBLISHABLE_PATHS):
        data = await server.get_post_data(request, remove_auth=False)
        if data and Keys.accepts_publishable(data.get("key")):
            return await handler(request)
    raise UserError(
        401,
        "You did not provide an API key. You need to provide your API key in the "
        "Authorization header, using Bearer auth.",
    )


@web.middleware
async def routes_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Routes localstripe lacks (its `/v1/<kind>/{id}` would take them) and after-effects of
    its own routes."""
    path = request.path
    if request.method == "GET" and path == JS_PATH:
        original = Path(server.__file__).with_name("localstripe-v3.js").read_text()
        return web.Response(text=original + JS_EXTENSION, content_type="application/javascript")
    found = re.match(r"^/v1/(\w+)/search$", path)
    if request.method == "GET" and found and found[1] in SEARCHABLE:
        query = request.query.get("query")
        if not query:
            raise UserError(400, "Missing required param: query.", {"param": "query"})
        return server.json_response(search(found[1], query, request.query.get("limit")))
    response = await handler(request)
    authenticated = re.match(r"^/v1/payment_intents/(\w+)/_authenticate$", path)
    if authenticated and response.status == 200:
        intent = PaymentIntent._api_retrieve(authenticated[1])
        if intent._authentication_failed and not getattr(intent, "_failure_reported", False):
            intent._failure_reported = True
            schedule_webhook(Event("payment_intent.payment_failed", intent))
    return response


# --- putting it together ----------------------------------------------------------------------


def patch(
    store: Path | None = None, secret_key: str | None = None, publishable_key: str | None = None
) -> web.Application:
    """Patch localstripe (once) and answer its aiohttp application."""
    StorePath.path = store
    Keys.secret, Keys.publishable = secret_key, publishable_key
    if getattr(server.app, "_license_portal_patched", False):
        return server.app
    UserError.__init__ = _stripe_error_init
    Store.dump_to_disk = _dump_store
    Store.try_load_from_disk = _load_nothing
    PaymentMethod._attaching_is_declined = _attaching_declined
    PaymentMethod._charging_is_declined = _charging_declined
    Charge._set_auth_failure = _charge_failed
    Charge._raise_failure = _raise_charge_failure
    PaymentIntent.__init__ = _payment_intent_with_options
    PaymentIntent._api_create = classmethod(_create_payment_intent)
    PaymentIntent.last_payment_error = property(_payment_intent_error)
    SetupIntent._api_create = classmethod(_create_setup_intent)
    Refund._api_create = classmethod(_create_refund)
    # localstripe's auth middleware is replaced by ours; its error and store ones stay
    own = [m for m in server.app.middlewares if m is not server.auth_middleware]
    server.app.middlewares[:] = [
        idempotency_middleware,
        *[m for m in own if m is server.error_middleware],
        access_middleware,
        routes_middleware,
        *[m for m in own if m is not server.error_middleware],
    ]
    server.app._license_portal_patched = True
    return server.app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--store", type=Path, help="where the state is kept (default: memory)")
    parser.add_argument("--secret-key", help="the only secret key accepted (default: any sk_…)")
    parser.add_argument("--publishable-key", help="the only publishable key (default: any pk_…)")
    args = parser.parse_args(argv)
    if args.store is not None:
        args.store.unlink(missing_ok=True)
    app = patch(args.store, args.secret_key, args.publishable_key)
    access = logging.getLogger("aiohttp.access")
    access.setLevel(logging.INFO)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    web.run_app(app, host=args.host, port=args.port, access_log=access, print=None)


if __name__ == "__main__":
    main()
