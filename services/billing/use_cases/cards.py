"""A card typed by a customer, checked and tokenized: what purchases and card changes share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.billing import domain
from services.billing.exceptions import invalid_field
from services.billing.providers import Card, InvalidCard, PaymentMethod, PaymentProvider


def tokenize(provider: PaymentProvider, card: dict[str, Any], now: datetime) -> PaymentMethod:
    """The provider's payment method for `card` (`{number, exp_month, exp_year, cvc}`);
    `validation_error` naming the field for an expired card or one the provider refuses."""
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
