"""Errors the licensing service raises across the bus (codes are part of the public contract),
and the one that never crosses it: a payment that cannot be applied."""

from common.errors import Conflict, NotFound, PortalError


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


class WrongProduct(Conflict):
    """The product names another product than the license's (409): `details.license_id`,
    `details.product` (the license's code), `details.requested` (what the product sent)."""

    code = "wrong_product"
    message = "This license is for another product."


class FloatingLicense(Conflict):
    code = "floating_license"
    message = "This license is floating: check out a lease instead (POST /api/v1/leases)."


class NodeLockedLicense(Conflict):
    code = "node_locked_license"
    message = "This license is node-locked: activate it instead (POST /api/v1/activations)."


class BorrowNotAllowed(PortalError):
    """A borrowing longer than the license allows, or any when it allows none (422):
    `details.max_borrow_days`, `details.latest` (null when none is allowed)."""

    code = "borrow_not_allowed"
    message = "This license does not allow borrowing a seat for that long."


class InvalidLeaseToken(PortalError):
    """An unknown lease ID and a wrong lease token look exactly the same (401)."""

    code = "invalid_lease_token"
    message = "The lease ID or lease token is incorrect."


class LeaseExpired(PortalError):
    """The lease ended (410): `details.lease_id`, `details.reason` (expired, revoked or
    checked_in) and `details.ended_at`; the product must check out again."""

    code = "lease_expired"
    message = "This lease has ended; check out a new one."


class LeaseNotFound(NotFound):
    code = "lease_not_found"
    message = "No such lease of this license."


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


class ProductArchived(Conflict):
    code = "product_archived"
    message = "This product is archived (off sale); unarchive it first."


class ExpiresInPast(PortalError):
    code = "expires_in_past"
    message = "This expiry date is already past."


class ExtensionShortens(PortalError):
    code = "extension_shortens"
    message = "This date is earlier than the license's current expiry."


class LicenseIsPerpetual(PortalError):
    code = "license_is_perpetual"
    message = "This license is perpetual; extending it would give it an end date."


class InvalidRequest(PortalError):
    """A malformed or foreign activation request file: `details.problem` says what, in
    words, and `details.field` which field (when one is to blame)."""

    code = "invalid_request"
    message = "This activation request file cannot be used."


class InvalidProof(PortalError):
    """A malformed, forged, reused or foreign deactivation proof."""

    code = "invalid_proof"
    message = "This deactivation proof cannot be used."


class UnknownFeature(PortalError):
    """A feature code the product does not offer (422): the message and `details.feature`
    name the first, `details.features` lists every unknown one, `details.product` the
    product."""

    code = "unknown_feature"
    message = "This product has no such feature."


class FeatureExists(Conflict):
    """The product already offers a feature with this code (409): `details.product`,
    `details.code`."""

    code = "feature_exists"
    message = "This product already has a feature with this code."


# a staff guardrail's refusal code (domain) → the error that says it
GUARDRAILS: dict[str, type[PortalError]] = {
    error.code: error for error in (ExpiresInPast, ExtensionShortens, LicenseIsPerpetual)
}


# what makes a well-formed payment impossible to deliver: `payment_not_applied`'s reasons
NOT_APPLICABLE: tuple[type[PortalError], ...] = (
    ProductNotFound,
    ProductArchived,
    LicenseNotFound,
    LicenseSuspended,
    LicenseIsPerpetual,
)


class PaymentNotApplicable(Exception):
    """A well-formed `payment_succeeded` that can never be applied here (unknown or archived
    product, a license unknown, suspended or of another company, a renewal naming no
    license). Never crosses the bus: the use case records it and publishes
    `payment_not_applied` with `code` and `message`, so billing refunds the payment."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


__all__ = [
    "GUARDRAILS",
    "NOT_APPLICABLE",
    "ExpiresInPast",
    "BorrowNotAllowed",
    "ExtensionShortens",
    "FeatureExists",
    "FloatingLicense",
    "InstallationNotFound",
    "InvalidProof",
    "InvalidRequest",
    "InvalidCredentials",
    "InvalidLeaseToken",
    "LeaseExpired",
    "LeaseNotFound",
    "LicenseExpired",
    "LicenseIsPerpetual",
    "LicenseNotFound",
    "LicenseSuspended",
    "NoSeatsAvailable",
    "NodeLockedLicense",
    "PaymentNotApplicable",
    "ProductArchived",
    "ProductExists",
    "ProductNotFound",
    "TooManyAttempts",
    "UnknownFeature",
    "WrongProduct",
]
