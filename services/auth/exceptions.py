"""Errors the auth service raises across the bus (codes are part of the public contract)."""

from common.errors import Conflict, NotFound, PortalError, ValidationFailed


class InvalidCredentials(PortalError):
    code = "invalid_credentials"
    message = "The login or password is incorrect."


class Unauthenticated(PortalError):
    code = "unauthenticated"
    message = "Please log in: the session is missing, expired or revoked."


class TooManyAttempts(PortalError):
    code = "too_many_attempts"
    message = "Too many failed attempts. Try again later."


class InvalidToken(PortalError):
    code = "invalid_token"
    message = "This link is invalid, used or expired. Ask for a new one."


class WeakPassword(ValidationFailed):
    code = "weak_password"
    message = "The new password does not meet the rules."


class EmailTaken(Conflict):
    code = "email_taken"
    message = "A company with this contact email already exists."


class CompanyNotFound(NotFound):
    code = "company_not_found"
    message = "No company with this customer ID."


class PasswordAlreadySet(Conflict):
    """`resend_invite` for a company that has a password: a reset is the tool then."""

    code = "password_already_set"
    message = (
        "This company has already set its password: no invitation is sent. Its contact can"
        ' use "Forgot password" on the sign-in page.'
    )


class UserNotFound(NotFound):
    code = "user_not_found"
    message = "No user with this ID in this company."


class LastOwner(Conflict):
    code = "last_owner"
    message = "The company must keep at least one active owner."


class ContactIsOwner(Conflict):
    code = "contact_is_owner"
    message = "The company's contact is always an owner; staff can change the contact."


class InvitationNotPending(Conflict):
    code = "invitation_not_pending"
    message = "This user has accepted the invitation or is disabled: there is none to resend."


__all__ = [
    "CompanyNotFound",
    "ContactIsOwner",
    "EmailTaken",
    "InvalidCredentials",
    "InvalidToken",
    "InvitationNotPending",
    "LastOwner",
    "PasswordAlreadySet",
    "TooManyAttempts",
    "Unauthenticated",
    "UserNotFound",
    "WeakPassword",
]
