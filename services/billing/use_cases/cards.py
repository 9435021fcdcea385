"""A card typed by a customer, checked and tokenized, or a payment method the provider's own
card form made, attached to the company: what purchases and card changes share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.errors import ServiceUnavailable
from common.unit_of_work import UnitOfWork
from services.billing import domain
from services.billing.exceptions import CardNotAccepted, declined, invalid_field
from services.billing.providers import (
    Card,
    CardRefused,
    InvalidCard,
    PaymentMethod,
    PaymentProvider,
    ProviderUnavailable,
)
from services.billing.repository import BillingRepository


def tokenize(provider: PaymentProvider, card: dict[str, Any], now: datetime) -> PaymentMethod:
    """The provider's payment method for `card` (`{number, exp_month, exp_year, cvc}`);
    `card_not_accepted` when the provider takes no card numbers, `validation_error` naming
    the field for an expired card or one the provider refuses."""
    if not provider.accepts_cards:
        raise CardNotAccepted()
    if domain.card_expired(card["exp_month"], card["exp_year"], now):
        raise invalid_field(["card", "exp_year"], "The card has expired.")
    try:
        return provider.tokenize(
            Card(
                number=domain.normalize_card_number(card["number"]),
                exp_month=card["exp_month"],
                exp_year=card["exp_year"],
                cvc=card["cvc"],
            )
        )
    except InvalidCard as exc:
        raise invalid_field(["card", exc.field], exc.message) from exc


def attach(
    uow: UnitOfWork[BillingRepository],
    provider: PaymentProvider,
    payment_method: str,
    customer_id: str,
) -> PaymentMethod:
    """The provider's payment method `payment_method` (`pm_…`), kept for the company (its
    provider customer is named as its receipts name it); `validation_error` on
    `payment_method` for one the provider does not take, `card_declined` /
    `insufficient_funds` when it declines the card, `service_unavailable` (nothing charged)
    when it does not answer."""
    name = uow.read(_billing_name, customer_id)
    try:
        return provider.attach(payment_method, customer_id, None, name)
    except InvalidCard as exc:
        raise invalid_field(["payment_method"], exc.message) from exc
    except CardRefused as exc:
        raise declined(exc.decline_code) from exc
    except ProviderUnavailable as exc:
        raise ServiceUnavailable(
            "The payment provider did not answer; nothing was charged. Try again.",
            details={"service": "payment_provider"},
        ) from exc


def _billing_name(repo: BillingRepository, customer_id: str) -> str | None:
    return repo.billing_name(customer_id)
