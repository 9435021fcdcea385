"""License Portal client: activate, deactivate and validate this installation's license.

from license_client import LicenseClient

client = LicenseClient("https://licenses.example.com", product="cadpro")
client.activate("LIC-7Q2M-9XKD", "activation password")  # once, online
result = client.validate()       # online, offline within the grace period if unreachable
result = client.validate(online=False)  # the signed certificate alone, no network
client.has_feature("steel")      # a module the license unlocks

# an air-gapped machine: request file → portal → response file
text = client.offline_request("LIC-7Q2M-9XKD")
client.install_offline_response(response_text)
proof = client.deactivate_offline(out="deactivation-proof.json")
"""

__version__ = "0.1.0"

from .client import LicenseClient
from .errors import (
    InvalidCertificate,
    InvalidCredentials,
    InvalidResponseFile,
    LicenseError,
    LicenseExpired,
    LicenseSuspended,
    NetworkError,
    NoSeatsAvailable,
    NotActivated,
    NotOfflineActivation,
    OfflineFileError,
    ProtocolError,
    ResponseMismatch,
    ServiceUnavailable,
    StorageError,
    TooManyAttempts,
    UntrustedResponse,
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
    "InvalidResponseFile",
    "KeySet",
    "LicenseClient",
    "LicenseError",
    "LicenseExpired",
    "LicenseSuspended",
    "NetworkError",
    "NoSeatsAvailable",
    "NotActivated",
    "NotOfflineActivation",
    "OfflineFileError",
    "ProtocolError",
    "ResponseMismatch",
    "ServiceUnavailable",
    "Status",
    "StorageError",
    "TooManyAttempts",
    "UntrustedResponse",
    "Validation",
    "ValidationError",
    "__version__",
    "installation_id",
]
