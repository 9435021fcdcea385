"""The Stripe payment provider (`PAYMENT_PROVIDER=stripe`), over the official `stripe` library.

Card numbers never reach us: the portal's Stripe.js turns the card into a payment method
(`pm_…`) and billing `attach`es it to the company's Stripe customer (`cus_…`, one per
company, kept in a `CustomerStore`: billing's `provider_customers` table in the service, a
dict in unit tests), so that renewals can charge it off-session. A charge is a
PaymentIntent created and confirmed at once; its ID (`pi_…`) is the charge ID we keep, our
charge key is both its idempotency key and its `metadata.charge_key` (what `retrieve`
searches for when an answer was lost). A charge the customer's bank wants authenticated
answers `REQUIRES_ACTION` with the intent's client secret; the browser authenticates, and
`confirm` reads the outcome. Webhooks are verified with the endpoint's signing secret.

Stripe's errors map onto the provider interface: a `CardError` is a decline with a code
billing knows (`normalize_decline`); no answer, a 5xx or a rate limit is
`ProviderUnavailable`; a request Stripe refuses (4xx: an unknown customer, a payment method
Stripe never made, such as a sandbox card left from before the switch) is not the card's
fault: it is `RequestRefused` (the charge is re-checked like a lost answer, nobody is told
their card was declined) with an ERROR in the log saying what to fix.

Stripe's search (`retrieve`) is eventually consistent: a PaymentIntent may be missing from
it for a while after it was made (`lookup_lag`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol

import stripe

from services.billing import domain
from services.billing.providers import (
    DECLINED,
    NO_CURRENCY,
    REQUIRES_ACTION,
    SUCCEEDED,
    Card,
    CardRefused,
    ChargeResult,
    IdempotencyMismatch,
    InvalidCard,
    PaymentMethod,
    PaymentProvider,
    ProviderUnavailable,
    RefundRefused,
    RefundResult,
    RequestRefused,
    SignatureMismatch,
)

log = logging.getLogger(__name__)
# Stripe's limit on a PaymentIntent's description
DESCRIPTION_MAX = 1000

DEFAULT_API_BASE = "https://api.stripe.com"
# a webhook signed longer ago than this is refused (Stripe's own default)
WEBHOOK_TOLERANCE_SECONDS = 300
# a provider call answers within seconds; beyond this the outcome is unknown
TIMEOUT_SECONDS = 20.0
# the decline codes billing tells apart; every other one is a plain `card_declined`
KNOWN_DECLINES = ("insufficient_funds", "authentication_required")
AUTHENTICATION_FAILED = "authentication_failed"
# what Stripe's errors (and a PaymentIntent's last error) name a failed 3-D Secure
_AUTHENTICATION_FAILURES = ("payment_intent_authentication_failure", AUTHENTICATION_FAILED)
# the intent is still moving: the webhook (or `retrieve` later) tells how it ends
_UNSETTLED = ("processing", "requires_capture", "requires_confirmation")


class CustomerStore(Protocol):
    """Our company → its Stripe customer (`cus_…`), one per company."""

    def get(self, customer_id: str) -> str | None: ...

    def put_if_absent(self, customer_id: str, provider_customer_id: str) -> str:
        """Keep the mapping unless the company has one; return whichever it has."""
        ...

    def instance_id(self) -> str:
        """This billing database's own random ID: part of the customer's creation key, so
        that every instance of a deployment makes one customer per company, and another
        deployment sharing the Stripe account makes its own."""
        ...


class MemoryCustomerStore:
    """A `CustomerStore` in a dict, for unit tests."""

    def __init__(self) -> None:
        self.customers: dict[str, str] = {}
        self.instance = domain.new_instance_id()

    def instance_id(self) -> str:
        return self.instance

    def get(self, customer_id: str) -> str | None:
        return self.customers.get(customer_id)

    def put_if_absent(self, customer_id: str, provider_customer_id: str) -> str:
        return self.customers.setdefault(customer_id, provider_customer_id)


def make_client(secret_key: str, api_base: str = DEFAULT_API_BASE) -> stripe.StripeClient:
    """A `StripeClient` for `api_base` that never retries by itself: our idempotency keys
    and the renewal pass's reconciliation decide what is asked again."""
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
    )


def normalize_decline(code: str | None, decline_code: str | None = None) -> str:
    """The decline code billing knows for Stripe's error `code` and `decline_code`.

    >>> normalize_decline("card_declined", "insufficient_funds")
    'insufficient_funds'
    >>> normalize_decline("authentication_required")
    'authentication_required'
    >>> normalize_decline("payment_intent_authentication_failure")
    'authentication_failed'
    >>> normalize_decline("expired_card")
    'card_declined'
    """
    for candidate in (decline_code, code):
        if candidate in KNOWN_DECLINES:
            return candidate
        if candidate in _AUTHENTICATION_FAILURES:
            return AUTHENTICATION_FAILED
    return "card_declined"


def intent_result(intent: Mapping[str, Any]) -> ChargeResult:
    """A PaymentIntent (an API object or a webhook's `data.object`) as a `ChargeResult`.

    `ProviderUnavailable` while it is still moving (`processing`): its end is not known yet.
    """
    status = intent.get("status")
    customer = intent.get("customer")
    if isinstance(customer, Mapping):  # expanded
        customer = customer.get("id")
    base = {
        "charge_id": intent["id"],
        "amount": int(intent.get("amount") or 0),
        "currency": str(intent.get("currency") or "").upper(),
        "customer": str(customer) if customer else None,
    }
    if status == SUCCEEDED:
        return ChargeResult(status=SUCCEEDED, **base)
    if status in ("requires_action", "requires_source_action"):
        return ChargeResult(
            status=REQUIRES_ACTION, client_secret=intent.get("client_secret"), **base
        )
    if status in _UNSETTLED:
        raise ProviderUnavailable(f"payment intent {intent['id']} is {status}")
    error = intent.get("last_payment_error") or {}
    code = normalize_decline(error.get("code"), error.get("decline_code"))
    return ChargeResult(status=DECLINED, decline_code=code, **base)


def plain(obj: Any) -> dict[str, Any]:
    """An API object of the `stripe` library (not a dict since v13) as a plain dict."""
    if obj is None:
        return {}
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(obj)


def _error_body(error: stripe.StripeError) -> dict[str, Any]:
    return plain(getattr(error, "error", None))


def _refused_call(
    error: stripe.StripeError, what: str, key: str, amount: int, currency: str
) -> ChargeResult:
    """What a charge or card check (`what`) Stripe answered with an error is: a decline for
    a `CardError` (its intent's ID when Stripe names it); raised otherwise, as
    `IdempotencyMismatch` (our bug), `RequestRefused` (Stripe refuses the request itself:
    not a decline, fixed by a person) or `ProviderUnavailable` (no answer)."""
    if isinstance(error, stripe.CardError):
        body = _error_body(error)
        intent = body.get("payment_intent")
        charge_id = (
            (intent.get("id") if isinstance(intent, Mapping) else None) or body.get("charge") or key
        )
        return ChargeResult(
            charge_id=str(charge_id),
            status=DECLINED,
            amount=amount,
            currency=currency,
            decline_code=normalize_decline(error.code, body.get("decline_code")),
        )
    if isinstance(error, stripe.IdempotencyError):
        raise IdempotencyMismatch(key) from error
    if isinstance(error, stripe.InvalidRequestError):
        log.error(
            "stripe refused the %s %s (%s): not a card decline, so the customer was not told "
            "so; fix the request: a payment method or customer Stripe does not know (a card "
            "saved with the sandbox before PAYMENT_PROVIDER=stripe: its customer must change "
            "card) or keys of another Stripe account",
            what,
            key,
            error.user_message or error,
        )
        raise RequestRefused(f"stripe refused the {what} {key}") from error
    raise _unavailable(error) from error


def _unavailable(error: stripe.StripeError) -> ProviderUnavailable:
    return ProviderUnavailable(f"stripe: {type(error).__name__}: {error.user_message or error}")


# Stripe's errors that say nothing about the card: its outcome is unknown, ask again later
_NO_ANSWER = (
    stripe.APIConnectionError,
    stripe.APIError,
    stripe.RateLimitError,
    stripe.AuthenticationError,
    stripe.PermissionError,
)


class StripeProvider(PaymentProvider):
    """Charges through Stripe's API (or a server that speaks it, such as the test server).

    `client`: a `stripe.StripeClient` (`make_client`); `customers`: where each company's
    Stripe customer is kept; `webhook_secret`: the endpoint's signing secret (`whsec_…`).
    """

    name = "stripe"
    accepts_cards = False
    # a PaymentIntent may take this long to show in Stripe's search (`retrieve`)
    lookup_lag = timedelta(hours=24)

    def __init__(self, client: Any, customers: CustomerStore, webhook_secret: str) -> None:
        self.client = client
        self.customers = customers
        self.webhook_secret = webhook_secret

    # --- payment methods ---------------------------------------------------------------

    def tokenize(self, card: Card) -> PaymentMethod:
        raise InvalidCard("number", "Card numbers are not accepted here.")

    def attach(
        self, payment_method_id: str, customer_id: str, email: str | None, name: str | None
    ) -> PaymentMethod:
        api = self.client.v1
        try:
            method = plain(api.payment_methods.retrieve(payment_method_id))
        except stripe.InvalidRequestError as exc:
            raise InvalidCard("payment_method", "No such payment method.") from exc
        except _NO_ANSWER as exc:
            raise _unavailable(exc) from exc
        card = method.get("card")
        if method.get("type") != "card" or not card:
            raise InvalidCard("payment_method", "The payment method is not a card.")
        owner = self._customer(customer_id, email, name)
        attached_to = method.get("customer")
        if attached_to not in (None, owner):  # another company's card: never ours to charge
            raise InvalidCard("payment_method", "No such payment method.")
        if attached_to is None:
            try:
                api.payment_methods.attach(payment_method_id, {"customer": owner})
            except stripe.CardError as exc:
                decline = _error_body(exc).get("decline_code")
                raise CardRefused(normalize_decline(exc.code, decline)) from exc
            except stripe.InvalidRequestError as exc:
                raise InvalidCard("payment_method", "This payment method cannot be used.") from exc
            except _NO_ANSWER as exc:
                raise _unavailable(exc) from exc
        return PaymentMethod(
            token=method["id"],
            brand=str(card.get("brand") or "unknown"),
            last4=str(card.get("last4") or ""),
            exp_month=int(card.get("exp_month") or 0),
            exp_year=int(card.get("exp_year") or 0),
            customer=owner,
        )

    def _customer(self, customer_id: str, email: str | None, name: str | None) -> str:
        """The company's Stripe customer, created once (Stripe's idempotency key makes a
        concurrent twin get the same one)."""
        known = self.customers.get(customer_id)
        if known is not None:
            return known
        params: dict[str, Any] = {"metadata": {"company_id": customer_id}}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        key = domain.customer_key(customer_id, self.customers.instance_id())
        try:
            created = plain(self.client.v1.customers.create(params, {"idempotency_key": key}))
        except stripe.StripeError as exc:
            raise _unavailable(exc) from exc
        return self.customers.put_if_absent(customer_id, created["id"])

    # --- charges -----------------------------------------------------------------------

    def charge(
        self,
        amount: int,
        currency: str,
        payment_method: str,
        idempotency_key: str,
        customer: str | None = None,
        off_session: bool = False,
        description: str | None = None,
    ) -> ChargeResult:
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "payment_method": payment_method,
            "payment_method_types": ["card"],
            "confirm": True,
            "metadata": {"charge_key": idempotency_key},
        }
        if customer:
            params["customer"] = customer
        if description:
            params["description"] = description[:DESCRIPTION_MAX]
        if off_session:
            params["off_session"] = True
        elif customer:
            params["setup_future_usage"] = "off_session"
        try:
            intent = plain(
                self.client.v1.payment_intents.create(params, {"idempotency_key": idempotency_key})
            )
        except stripe.StripeError as exc:
            return _refused_call(exc, "charge", idempotency_key, amount, currency)
        result = intent_result(intent)
        if result.status == REQUIRES_ACTION and off_session:
            # nobody is there to authenticate: like Stripe's own off-session answer, unless
            # it cannot be given up (then it is re-checked: `retrieve` tells its end)
            if not self.cancel(result.charge_id):
                raise ProviderUnavailable(f"stripe did not cancel {result.charge_id}")
            return ChargeResult(
                result.charge_id,
                DECLINED,
                amount,
                currency,
                "authentication_required",
                customer=result.customer,
            )
        return result

    def confirm(self, intent_id: str) -> ChargeResult:
        try:
            intent = plain(self.client.v1.payment_intents.retrieve(intent_id))
        except stripe.InvalidRequestError as exc:
            raise ProviderUnavailable(f"stripe does not know {intent_id}") from exc
        except _NO_ANSWER as exc:
            raise _unavailable(exc) from exc
        result = intent_result(intent)
        if result.status == DECLINED:  # the customer's bank said no, or they gave up
            return ChargeResult(
                result.charge_id,
                DECLINED,
                result.amount,
                result.currency,
                AUTHENTICATION_FAILED,
                customer=result.customer,
            )
        return result

    def cancel(self, intent_id: str) -> bool:
        try:
            self.client.v1.payment_intents.cancel(intent_id)
        except (stripe.InvalidRequestError, stripe.CardError) as exc:
            # most often: it succeeded (or was cancelled) meanwhile; `confirm` tells which
            log.info("stripe did not cancel %s: %s", intent_id, exc.user_message or exc)
            return False
        except stripe.StripeError as exc:
            raise _unavailable(exc) from exc
        return True

    def intent_result(self, intent: Mapping[str, Any]) -> ChargeResult:
        return intent_result(intent)

    def retrieve(self, idempotency_key: str) -> ChargeResult | None:
        query = f"metadata['charge_key']:'{idempotency_key}'"
        try:
            found = plain(self.client.v1.payment_intents.search({"query": query, "limit": 1}))
        except stripe.StripeError as exc:
            raise _unavailable(exc) from exc
        data = found.get("data") or []
        return intent_result(data[0]) if data else None

    def refund(
        self, charge_id: str, amount: int, currency: str, idempotency_key: str
    ) -> RefundResult:
        params = {
            "payment_intent": charge_id,
            "amount": amount,
            # the charge.refunded webhook of a refund we made says so
            "metadata": {"refund_key": idempotency_key},
        }
        try:
            refund = plain(
                self.client.v1.refunds.create(params, {"idempotency_key": idempotency_key})
            )
        except stripe.IdempotencyError as exc:
            raise IdempotencyMismatch(idempotency_key) from exc
        except (stripe.InvalidRequestError, stripe.CardError) as exc:
            raise RefundRefused(str(exc.user_message or exc)) from exc
        except _NO_ANSWER as exc:
            raise _unavailable(exc) from exc
        if refund.get("status") in ("failed", "canceled"):
            raise RefundRefused(f"stripe's refund {refund['id']} {refund['status']}")
        return RefundResult(
            refund_id=refund["id"],
            charge_id=charge_id,
            status=SUCCEEDED,
            amount=int(refund.get("amount") or amount),
            currency=str(refund.get("currency") or currency).upper(),
        )

    def authorize(
        self, payment_method: str, idempotency_key: str, customer: str | None = None
    ) -> ChargeResult:
        params: dict[str, Any] = {
            "payment_method": payment_method,
            "payment_method_types": ["card"],
            "usage": "off_session",
            "confirm": True,
            "metadata": {"charge_key": idempotency_key},
        }
        if customer:
            params["customer"] = customer
        try:
            intent = plain(
                self.client.v1.setup_intents.create(params, {"idempotency_key": idempotency_key})
            )
        except stripe.StripeError as exc:
            return _refused_call(exc, "card check", idempotency_key, 0, NO_CURRENCY)
        status = intent.get("status")
        if status == SUCCEEDED:
            return ChargeResult(intent["id"], SUCCEEDED, 0, NO_CURRENCY)
        if status in ("requires_action", "requires_source_action"):
            try:  # a card change cannot authenticate (yet): the check is given up
                self.client.v1.setup_intents.cancel(intent["id"])
            except stripe.StripeError as exc:
                log.info("stripe did not cancel %s: %s", intent["id"], exc)
            return ChargeResult(intent["id"], DECLINED, 0, NO_CURRENCY, "authentication_required")
        if status == "processing":
            raise ProviderUnavailable(f"setup intent {intent['id']} is processing")
        error = intent.get("last_setup_error") or {}
        code = normalize_decline(error.get("code"), error.get("decline_code"))
        return ChargeResult(intent["id"], DECLINED, 0, NO_CURRENCY, code)

    # --- webhooks ----------------------------------------------------------------------

    def parse_event(self, payload: str, signature: str | None) -> dict[str, Any]:
        # the check of `stripe.Webhook.construct_event`; the event stays a plain dict
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, self.webhook_secret, WEBHOOK_TOLERANCE_SECONDS
            )
            event = json.loads(payload)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise SignatureMismatch(str(exc)) from exc
        if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
            raise SignatureMismatch("not an event")
        return event
