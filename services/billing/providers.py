"""The payment-provider interface, and the embedded sandbox provider.

Shaped like Stripe: a card is tokenized into a payment method (we keep the token, the brand
and the last four digits, never the number or the CVC); a charge names an amount in minor
units, a currency, a payment method and an idempotency key, and either succeeds or is
declined with a code; `retrieve(idempotency_key)` tells what became of a charge whose answer
was lost; `refund` gives a charge's money back; `authorize` checks a card with a zero-amount
authorization (nothing is charged). A real provider implements `PaymentProvider` and is
chosen by `PAYMENT_PROVIDER`: the sandbox here, or Stripe (`stripe_provider`), which takes no
card numbers (`accepts_cards` false) but payment methods the browser made with Stripe.js
(`attach`), may ask the customer to authenticate a charge (`REQUIRES_ACTION`, then
`confirm`), and tells what happened later through signed webhooks (`parse_event`).

The sandbox keeps its charges, refunds and authorizations in a `Ledger` (the billing
database's `sandbox_charges` table in the service, a dict in unit tests), keyed by
idempotency key: a retried call returns the first answer and never charges or refunds
twice, from any instance.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Protocol

from services.billing import domain

SUCCEEDED = "succeeded"
DECLINED = "declined"
# the customer's bank asks for 3-D Secure: the browser confirms with the `client_secret`
REQUIRES_ACTION = "requires_action"
# what a ledger record is
CHARGE, REFUND, AUTHORIZATION = "charge", "refund", "authorization"

# The usual test cards; any other Luhn-valid number succeeds in the sandbox.
TEST_CARDS = {
    "4242424242424242": "ok",
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
}
_METHOD_PREFIX = "pm_sandbox_"
# ISO 4217's code for "no currency": a zero-amount card check moves no money
NO_CURRENCY = "XXX"


@dataclass(frozen=True)
class Card:
    """What the customer typed; lives only as long as the request that carries it."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str

    def __repr__(self) -> str:  # never in a log or a traceback
        return f"Card(****{self.number[-4:]}, {self.exp_month:02d}/{self.exp_year})"


@dataclass(frozen=True)
class PaymentMethod:
    """A tokenized card: all we ever store of it."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    # the provider's customer the method is attached to (Stripe's `cus_…`), if it has any
    customer: str | None = None


@dataclass(frozen=True)
class ChargeResult:
    charge_id: str
    status: str  # SUCCEEDED | DECLINED | REQUIRES_ACTION
    amount: int
    currency: str
    # card_declined | insufficient_funds | authentication_required | authentication_failed
    decline_code: str | None = None
    # what the browser needs to authenticate a charge that REQUIRES_ACTION
    client_secret: str | None = None
    # the provider's customer the charge was made for, when the provider says (Stripe's
    # `cus_…`): a settlement checks it is the customer of the method charged
    customer: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    charge_id: str  # the charge refunded
    status: str  # SUCCEEDED
    amount: int
    currency: str


class RefundRefused(Exception):
    """The provider will not refund this (no such charge, not paid, more than was charged):
    asking again gives the same answer."""


class InvalidCard(Exception):
    """The provider refuses the card details themselves; `field` names the bad one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class CardRefused(Exception):
    """The provider declines the payment method itself (before any charge); `decline_code`
    as a declined charge has it."""

    def __init__(self, decline_code: str) -> None:
        super().__init__(decline_code)
        self.decline_code = decline_code


class SignatureMismatch(Exception):
    """A webhook whose signature does not verify (or has none): never acted upon. (The
    service answers it with `exceptions.InvalidWebhookSignature`.)"""


class WebhooksUnsupported(Exception):
    """This provider sends no webhooks."""


class ProviderUnavailable(Exception):
    """No answer (timeout, connection lost): the charge's outcome is unknown."""


class RequestRefused(ProviderUnavailable):
    """The provider refused the request itself (an unknown customer, a payment method it
    never made): not a card decline, so nobody is told their card was declined; the charge
    is re-checked like one whose answer was lost, and the log says what to fix."""


class IdempotencyMismatch(Exception):
    """An idempotency key reused for a different charge: a bug on our side, never retried."""


class PaymentProvider(ABC):
    name = "abstract"
    # whether card numbers may reach this provider through us (`tokenize`); when not, the
    # browser hands its payment method to the provider itself and we `attach` it
    accepts_cards = True
    # how long `retrieve` may not yet find a charge the provider made (Stripe's search is
    # eventually consistent): a charge is not given up as never made before that
    lookup_lag = timedelta(0)

    @abstractmethod
    def tokenize(self, card: Card) -> PaymentMethod:
        """A reusable payment method for `card`; `InvalidCard` when the card is refused."""

    def attach(
        self, payment_method_id: str, customer_id: str, email: str | None, name: str | None
    ) -> PaymentMethod:
        """The payment method `payment_method_id` (made by the provider's own card form),
        kept for our company `customer_id` so that it can be charged again off-session.

        `InvalidCard("payment_method", …)` for one the provider does not know, `CardRefused`
        when it declines the card, `ProviderUnavailable` when it does not answer.
        """
        raise InvalidCard("payment_method", "This provider takes a card, not a payment method.")

    @abstractmethod
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
        """Charge once per `idempotency_key`: a repeated call returns the first result.

        `description`: what the charge is for, as the provider's dashboard shows it (what a
        finance person matches to our receipts).

        `customer`: the provider's customer the method is attached to; `off_session`: the
        customer is not there (a renewal), so a charge that needs authentication is declined
        (`authentication_required`) instead of answering `REQUIRES_ACTION`.
        Raises `ProviderUnavailable` when the outcome is unknown.
        """

    def confirm(self, intent_id: str) -> ChargeResult:
        """What became of a charge that answered `REQUIRES_ACTION`, now that the customer
        authenticated (or not): SUCCEEDED, DECLINED `authentication_failed`, or still
        REQUIRES_ACTION. Raises `ProviderUnavailable` when the provider cannot say."""
        raise ProviderUnavailable(f"{self.name} has no charge {intent_id} to confirm")

    def cancel(self, intent_id: str) -> bool:
        """Give up a charge still waiting for the customer: whether it is given up (False:
        the provider refused, e.g. because the customer authenticated meanwhile, so ask
        again with `confirm`). Raises `ProviderUnavailable` when the provider cannot say."""
        return True

    def parse_event(self, payload: str, signature: str | None) -> dict[str, Any]:
        """The webhook event `payload` once its `signature` verifies: `SignatureMismatch`
        otherwise, `WebhooksUnsupported` from a provider that sends none."""
        raise WebhooksUnsupported(self.name)

    def intent_result(self, intent: Mapping[str, Any]) -> ChargeResult:
        """A charge as a webhook event names it (Stripe's PaymentIntent), as a
        `ChargeResult`; `ProviderUnavailable` while its end is not known yet."""
        raise WebhooksUnsupported(self.name)

    @abstractmethod
    def retrieve(self, idempotency_key: str) -> ChargeResult | None:
        """The charge made with `idempotency_key`, or None if the provider never made one.

        Raises `ProviderUnavailable` when the provider cannot say.
        """

    @abstractmethod
    def refund(
        self, charge_id: str, amount: int, currency: str, idempotency_key: str
    ) -> RefundResult:
        """Give back `amount` of the charge `charge_id`, once per `idempotency_key` (a
        repeated call returns the first refund) and at most once per charge.

        Raises `RefundRefused` when the charge cannot be refunded, `ProviderUnavailable`
        when the outcome is unknown (asking again with the same key is safe).
        """

    @abstractmethod
    def authorize(
        self, payment_method: str, idempotency_key: str, customer: str | None = None
    ) -> ChargeResult:
        """Check that a card can be charged with a zero-amount authorization: nothing is
        charged; `declined` with a code as a charge would be. Once per `idempotency_key`.

        Raises `ProviderUnavailable` when the outcome is unknown.
        """


class Ledger(Protocol):
    """Where the sandbox keeps its charges, refunds and authorizations, by idempotency key.

    A record: `{kind, charge_id, status, amount, currency, decline_code, refunded_charge_id}`
    (`charge_id` is the record's own provider ID: `ch_…`, `re_…` or `au_…`).
    """

    def get(self, idempotency_key: str) -> dict[str, Any] | None: ...

    def find(self, charge_id: str) -> dict[str, Any] | None:
        """The record whose provider ID is `charge_id`, or None."""
        ...

    def refund_of(self, charge_id: str) -> dict[str, Any] | None:
        """The refund of the charge `charge_id`, or None."""
        ...

    def put_if_absent(self, idempotency_key: str, record: dict[str, Any]) -> dict[str, Any]:
        """Store `record` unless the key is taken (or the charge it refunds has a refund);
        return whichever record holds the key (or that refund)."""
        ...


class MemoryLedger:
    """A ledger in a dict, for unit tests and one-process tools."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def get(self, idempotency_key: str) -> dict[str, Any] | None:
        return self.records.get(idempotency_key)

    def find(self, charge_id: str) -> dict[str, Any] | None:
        return next((r for r in self.records.values() if r["charge_id"] == charge_id), None)

    def refund_of(self, charge_id: str) -> dict[str, Any] | None:
        return next(
            (r for r in self.records.values() if r.get("refunded_charge_id") == charge_id), None
        )

    def put_if_absent(self, idempotency_key: str, record: dict[str, Any]) -> dict[str, Any]:
        refunded = record.get("refunded_charge_id")
        earlier = self.refund_of(refunded) if refunded else None
        if earlier is not None and idempotency_key not in self.records:
            return earlier
        return self.records.setdefault(idempotency_key, record)

    def charges(self) -> list[dict[str, Any]]:
        """The charges made (not refunds or card checks)."""
        return [r for r in self.records.values() if r.get("kind", CHARGE) == CHARGE]

    def refunds(self) -> list[dict[str, Any]]:
        return [r for r in self.records.values() if r.get("kind") == REFUND]


def sandbox_behaviour(token: str) -> str:
    """What a sandbox payment method does when charged: `ok` or a decline code."""
    if not token.startswith(_METHOD_PREFIX):
        return "card_declined"
    behaviour = token[len(_METHOD_PREFIX) :].rsplit("_", 1)[0]
    return behaviour if behaviour in ("ok", "card_declined", "insufficient_funds") else "ok"


class SandboxProvider(PaymentProvider):
    """The embedded default: test cards, Luhn and expiry checks, charges in a ledger.

    Its tokens say how the card behaves (`pm_sandbox_card_declined_…`) and nothing else.
    """

    name = "sandbox"

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def attach(
        self, payment_method_id: str, customer_id: str, email: str | None, name: str | None
    ) -> PaymentMethod:
        raise InvalidCard("payment_method", "The sandbox takes a card, not a payment method.")

    def tokenize(self, card: Card) -> PaymentMethod:
        number = domain.normalize_card_number(card.number)
        if not domain.luhn_valid(number):
            raise InvalidCard("number", "The card number is not valid.")
        if not (card.cvc.isdigit() and len(card.cvc) in (3, 4)):
            raise InvalidCard("cvc", "The security code must be 3 or 4 digits.")
        behaviour = TEST_CARDS.get(number, "ok")
        return PaymentMethod(
            token=f"{_METHOD_PREFIX}{behaviour}_{secrets.token_hex(8)}",
            brand=domain.card_brand(number),
            last4=number[-4:],
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        )

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
        existing = self.ledger.get(idempotency_key)
        if existing is None:
            existing = self.ledger.put_if_absent(
                idempotency_key, self._answer(CHARGE, "ch", amount, currency, payment_method)
            )
        if existing.get("kind", CHARGE) != CHARGE:
            raise IdempotencyMismatch(idempotency_key)
        if existing["amount"] != amount or existing["currency"] != currency:
            raise IdempotencyMismatch(idempotency_key)
        return _charge_result(existing)

    def retrieve(self, idempotency_key: str) -> ChargeResult | None:
        existing = self.ledger.get(idempotency_key)
        if existing is None or existing.get("kind", CHARGE) != CHARGE:
            return None
        return _charge_result(existing)

    def refund(
        self, charge_id: str, amount: int, currency: str, idempotency_key: str
    ) -> RefundResult:
        existing = self.ledger.get(idempotency_key)
        if existing is None:
            charge = self.ledger.find(charge_id)
            if charge is None or charge.get("kind", CHARGE) != CHARGE:
                raise RefundRefused(f"no charge {charge_id}")
            if charge["status"] != SUCCEEDED:
                raise RefundRefused(f"charge {charge_id} was not paid")
            if not 0 < amount <= charge["amount"] or currency != charge["currency"]:
                raise RefundRefused(
                    f"cannot refund {amount} {currency} of {charge['amount']} {charge['currency']}"
                )
            existing = self.ledger.put_if_absent(
                idempotency_key,
                {
                    "kind": REFUND,
                    "charge_id": f"re_sandbox_{secrets.token_hex(10)}",
                    "status": SUCCEEDED,
                    "amount": amount,
                    "currency": currency,
                    "decline_code": None,
                    "refunded_charge_id": charge_id,
                },
            )
        if existing.get("kind") != REFUND or existing["refunded_charge_id"] != charge_id:
            raise IdempotencyMismatch(idempotency_key)
        return RefundResult(
            refund_id=existing["charge_id"],
            charge_id=existing["refunded_charge_id"],
            status=existing["status"],
            amount=existing["amount"],
            currency=existing["currency"],
        )

    def authorize(
        self, payment_method: str, idempotency_key: str, customer: str | None = None
    ) -> ChargeResult:
        existing = self.ledger.get(idempotency_key)
        if existing is None:
            existing = self.ledger.put_if_absent(
                idempotency_key, self._answer(AUTHORIZATION, "au", 0, NO_CURRENCY, payment_method)
            )
        if existing.get("kind") != AUTHORIZATION:
            raise IdempotencyMismatch(idempotency_key)
        return _charge_result(existing)

    @staticmethod
    def _answer(
        kind: str, prefix: str, amount: int, currency: str, payment_method: str
    ) -> dict[str, Any]:
        """How the sandbox answers a charge or a card check with this payment method."""
        behaviour = sandbox_behaviour(payment_method)
        return {
            "kind": kind,
            "charge_id": f"{prefix}_sandbox_{secrets.token_hex(10)}",
            "status": SUCCEEDED if behaviour == "ok" else DECLINED,
            "amount": amount,
            "currency": currency,
            "decline_code": None if behaviour == "ok" else behaviour,
            "refunded_charge_id": None,
        }


def _charge_result(record: dict[str, Any]) -> ChargeResult:
    return ChargeResult(
        charge_id=record["charge_id"],
        status=record["status"],
        amount=record["amount"],
        currency=record["currency"],
        decline_code=record.get("decline_code"),
    )
