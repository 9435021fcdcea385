"""Errors the licensing service raises across the bus (codes are part of the public contract),
and the one that never crosses it: a payment event to park."""

from common.errors import Conflict, NotFound, PortalError
from common.handlers import Poison


class InvalidCredentials(PortalError):
    """A wrong password and an unknown license look exactly the same."""

    code = "invalid_credentials"
    message = "The license ID or password is incorrect."


class TooManyAttempts(PortalError):
    code = "too_many_attempts"
    message = "Too many failed attempts for this license. Try again later."


class LicenseExpired(PortalError):
    code = "license_expired"
    message = "This license has expired."


class LicenseSuspended(PortalError):
    code = "license_suspended"
    message = "This license is suspended."


class NoSeatsAvailable(Conflict):
    code = "no_seats_available"
    message = "Every seat of this license is in use; deactivate an installation first."


class LicenseNotFound(NotFound):
    code = "license_not_found"
    message = "No such license."


class ProductNotFound(NotFound):
    code = "product_not_found"
    message = "No such product."


class InstallationNotFound(NotFound):
    code = "installation_not_found"
    message = "No such installation of this license."


class ProductExists(Conflict):
    code = "product_exists"
    message = "A product with this code already exists."


class PaymentNotApplicable(Poison):
    """A `payment_succeeded` that can never be applied here (unknown product, another
    company's license, a renewal naming no license): the handler parks it."""


__all__ = [
    "InstallationNotFound",
    "InvalidCredentials",
    "LicenseExpired",
    "LicenseNotFound",
    "LicenseSuspended",
    "NoSeatsAvailable",
    "PaymentNotApplicable",
    "ProductExists",
    "ProductNotFound",
    "TooManyAttempts",
]
