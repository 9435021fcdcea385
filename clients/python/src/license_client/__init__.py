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

# a floating license: hold a seat while the product runs, or borrow one for a trip
lease = client.checkout("LIC-7Q2M-9XKD", "activation password", on_lost=warn_user)
client.checkin()                 # also at exit and on SIGTERM
client.borrow(days=5)            # valid offline until then, in any later process
"""

__version__ = "0.1.0"

from .client import LicenseClient
from .errors import (
    BorrowNotAllowed,
    FloatingLicense,
    InvalidCertificate,
    InvalidCredentials,
    InvalidLeaseToken,
    InvalidResponseFile,
    LeaseExpired,
    LicenseError,
    LicenseExpired,
    LicenseSuspended,
    NetworkError,
    NodeLockedLicense,
    NoSeatsAvailable,
    NotActivated,
    NotCheckedOut,
    NotOfflineActivation,
    OfflineFileError,
    ProtocolError,
    ResponseMismatch,
    SeatHolder,
    ServiceUnavailable,
    StorageError,
    TooManyAttempts,
    UntrustedResponse,
    ValidationError,
    WrongProduct,
)
from .installation import installation_id
from .jws import Certificate, CertificateError, KeySet
from .leases import Lease, LeaseStatus
from .results import Status, Validation

__all__ = [
    "BorrowNotAllowed",
    "Certificate",
    "CertificateError",
    "FloatingLicense",
    "InvalidCertificate",
    "InvalidCredentials",
    "InvalidLeaseToken",
    "InvalidResponseFile",
    "KeySet",
    "Lease",
    "LeaseExpired",
    "LeaseStatus",
    "LicenseClient",
    "LicenseError",
    "LicenseExpired",
    "LicenseSuspended",
    "NetworkError",
    "NoSeatsAvailable",
    "NodeLockedLicense",
    "NotActivated",
    "NotCheckedOut",
    "NotOfflineActivation",
    "OfflineFileError",
    "ProtocolError",
    "ResponseMismatch",
    "SeatHolder",
    "ServiceUnavailable",
    "Status",
    "StorageError",
    "TooManyAttempts",
    "UntrustedResponse",
    "Validation",
    "ValidationError",
    "WrongProduct",
    "__version__",
    "installation_id",
]
