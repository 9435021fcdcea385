"""Errors the billing service raises across the bus (codes are part of the public contract)."""

from common.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PortalError,
    ServiceUnavailable,
    ValidationFailed,
)


class CardDeclined(PortalError):
    code = "card_declined"
    message = "The card was declined."


class InsufficientFunds(PortalError):
    code = "insufficient_funds"
    message = "The card was declined for insufficient funds."


class AuthenticationFailed(PortalError):
    """The customer's bank did not confirm a charge that needed 3-D Secure (402)."""

    code = "authentication_failed"
    message = "Your bank did not confirm the payment; nothing was charged."


class CardNotAccepted(ValidationFailed):
    """A card number sent to billing while the provider takes payment methods only (422)."""

    code = "card_not_accepted"
    message = "Card numbers are not accepted here: pay with the card form of the portal (Stripe)."

    def __init__(self) -> None:
        super().__init__(details={"fields": {"card": [self.message]}})


class InvalidWebhookSignature(PortalError):
    """A webhook whose signature does not verify (400): nothing is recorded."""

    code = "invalid_signature"
    message = "The webhook's signature does not verify."


class PaymentUnconfirmed(ServiceUnavailable):
    """The provider did not answer: the charge is re-checked later, never blindly repeated."""

    code = "payment_unconfirmed"
    message = (
        "The payment provider did not confirm the charge. It is being checked: if it went "
        "through, the receipt appears in your payment history shortly. Please do not pay again."
    )


class PlanNotFound(NotFound):
    code = "plan_not_found"
    message = "No plan with this code."


class PurchaseNotFound(NotFound):
    code = "purchase_not_found"
    message = "No purchase with this ID."


class PaymentNotFound(NotFound):
    code = "payment_not_found"
    message = "No payment with this receipt number."


class RecurringPaymentNotFound(NotFound):
    code = "recurring_payment_not_found"
    message = "No recurring payment with this ID."


class PlanExists(Conflict):
    code = "plan_exists"
    message = "A plan with this code already exists."


class ProductArchived(Conflict):
    """The plan's product is off sale (licensing archived it): nothing is sold for it."""

    code = "product_archived"
    message = "This product is no longer sold."


class UnknownFeature(ValidationFailed):
    """A plan names a feature its product does not have (licensing's `get_product`)."""

    code = "unknown_feature"
    message = "The product has no such feature."


def unknown_feature(code: str, product_code: str) -> UnknownFeature:
    """`unknown_feature` naming the code: "Product cadpro has no feature 'steel'."."""
    return UnknownFeature(
        f"Product {product_code} has no feature '{code}'.",
        details={"feature": code, "product_code": product_code},
    )


class LicenseSuspended(Forbidden):
    code = "license_suspended"
    message = "This license is suspended and cannot be renewed. Please contact the vendor."


class RecurringPaymentEnded(Conflict):
    code = "recurring_payment_ended"
    message = (
        "This recurring payment has ended and cannot be resumed: its paid period is over, "
        "or it was not cancelled by the customer. Buy a renewal of the license instead."
    )


# a card change whose card the bank wants confirmed (3-D Secure) cannot do it there
CONFIRM_ELSEWHERE = (
    "Your bank asks to confirm this card: use it for a purchase or renewal in the portal, "
    "or choose another card."
)


def declined(decline_code: str | None, card_check: bool = False) -> PortalError:
    """The error for a provider's decline code (unknown codes are a plain decline);
    `card_check`: the decline of a card change's zero-amount check."""
    if decline_code == InsufficientFunds.code:
        return InsufficientFunds()
    if decline_code == AuthenticationFailed.code:
        return AuthenticationFailed()
    confirm_elsewhere = card_check and decline_code == "authentication_required"
    message = CONFIRM_ELSEWHERE if confirm_elsewhere else None
    return CardDeclined(message, details={"decline_code": decline_code or CardDeclined.code})


def invalid_field(path: list[str], message: str) -> ValidationFailed:
    """A 422 naming a nested field: `invalid_field(["card", "number"], "…")`."""
    fields: dict = {path[-1]: [message]}
    for name in reversed(path[:-1]):
        fields = {name: fields}
    return ValidationFailed(f"Invalid value for: {'.'.join(path)}.", details={"fields": fields})


__all__ = [
    "AuthenticationFailed",
    "CardDeclined",
    "CardNotAccepted",
    "InvalidWebhookSignature",
    "PurchaseNotFound",
    "InsufficientFunds",
    "PaymentNotFound",
    "PaymentUnconfirmed",
    "LicenseSuspended",
    "PlanExists",
    "PlanNotFound",
    "ProductArchived",
    "RecurringPaymentEnded",
    "RecurringPaymentNotFound",
    "UnknownFeature",
    "declined",
    "invalid_field",
    "unknown_feature",
]
