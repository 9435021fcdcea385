"""License Portal client: activate, deactivate and validate this installation's license.

from license_client import LicenseClient

client = LicenseClient("https://licenses.example.com", product="cadpro")
client.activate("LIC-7Q2M-9XKD", "activation password")  # once, online
result = client.validate()       # online, offline within the grace period if unreachable
result = client.validate(online=False)  # the signed certificate alone, no network
"""

__version__ = "0.1.0"

from .client import LicenseClient
from .errors import (
    InvalidCertificate,
    InvalidCredentials,
    LicenseError,
    LicenseExpired,
    LicenseSuspended,
    NetworkError,
    NoSeatsAvailable,
    NotActivated,
    ProtocolError,
    ServiceUnavailable,
    StorageError,
    TooManyAttempts,
    ValidationError,
)
from .installation import installation_id
from .jws import Certificate, CertificateError, KeySet
from .results import Status, Validation

__all__ = [
    "Certificate",
    "CertificateError",
    "InvalidCertificate",
    "InvalidCredentials",
    "KeySet",
    "LicenseClient",
    "LicenseError",
    "LicenseExpired",
    "LicenseSuspended",
    "NetworkError",
    "NoSeatsAvailable",
    "NotActivated",
    "ProtocolError",
    "ServiceUnavailable",
    "Status",
    "StorageError",
    "TooManyAttempts",
    "Validation",
    "ValidationError",
    "__version__",
    "installation_id",
]
