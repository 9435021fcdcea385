"""`LicenseClient`: activate, deactivate and validate this installation's license.

Three files in the data folder hold everything (each replaced atomically, mode 0600):

- `activation.json`: license ID, installation ID, machine name, the signed certificate, the
  server URL and (unless `remember_password=False`) the password, which `deactivate()` and a
  certificate refresh need;
- `keys.json`: the server's JWKS as last fetched from `GET /api/v1/signing-keys`;
- `state.json`: the last successful online check, the last verdict of the server, the signed
  answer of the last valid online check (its `features` count, verified again on every read),
  and the latest time this client has seen (for the clock-rollback check).

Anyone who can write the data folder can edit these files, so nothing that unlocks anything
is taken from a field the kit wrote itself: whether the installation was activated offline
(no grace period) is the certificate's signed `source` claim, and newer features come only
from a signed answer that verifies against the keys this client trusts.

Offline activation adds two: `offline-request.json`, the pending request (its nonce, license,
installation, product and time) that only its own response may answer, and
`deactivation-proof.json`, the last deactivation proof, kept so it can be written out again.
An offline activation's `activation.json` also holds its `deactivation_secret` (its
`source` there is for people reading the file; the kit reads the certificate's).

A floating license keeps its lease in `lease.json` instead (see `leases`): validation reads
the lease's certificate when no activation is stored, valid until the lease's end (no grace
period beyond it), then `LEASE_EXPIRED`.
"""

from __future__ import annotations

import contextlib
import functools
import re
import secrets
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Union

from . import jws, leases, offline
from . import results as r
from .errors import (
    InvalidCertificate,
    LicenseError,
    NotActivated,
    NotOfflineActivation,
    ProtocolError,
    ResponseMismatch,
    ServiceUnavailable,
    StorageError,
    TooManyAttempts,
    UntrustedResponse,
)
from .installation import installation_id as derive_installation_id
from .leases import Lease, LeaseStatus
from .results import Status, Validation
from .storage import Store, atomic_write, default_data_dir
from .transport import Api, Transport

ACTIVATION_FILE = "activation.json"
KEYS_FILE = "keys.json"
STATE_FILE = "state.json"
CERTIFICATE_EXPIRY = object()  # `_result`'s default: the certificate's own expiry
PENDING_FILE = "offline-request.json"
PROOF_FILE = "deactivation-proof.json"
# the server's verdicts that keep holding offline until an online check says otherwise
STICKY_VERDICTS = (r.DEACTIVATED, r.SUSPENDED, r.EXPIRED, r.BAD_SIGNATURE, r.LEASE_EXPIRED)
# the latest time seen is written at most this often: validating stays cheap, and a rollback
# that stays within this window is below any useful tolerance anyway
LAST_SEEN_WRITE_INTERVAL = timedelta(minutes=1)
# who freed a seat (a signed answer's `deactivated_by`), in words for the user
DEACTIVATED_BY = {
    "portal": "from the portal",
    "product": "by this program",
    "staff": "by the vendor's staff",
    "offline": "with an offline deactivation proof",
    "system": "by the license server",
}
# errors of an online check that say nothing about the license: fall back to offline
FALLBACK_ERRORS = (ServiceUnavailable, ProtocolError, TooManyAttempts)

JwksSource = Union[dict, str, bytes, Path]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class LicenseClient:
    """This installation's license, for one product, against one License Portal server.

    >>> client = LicenseClient("https://licenses.example.com", product="cadpro")
    >>> client.activate("LIC-7Q2M-9XKD", "the activation password")   # once, online
    >>> if not client.validate():                                       # at every start
    ...     ask_for_a_license()

    Arguments:
        base_url: the portal's URL (without `/api/v1`); None to use the one stored at
            activation (offline use needs none).
        product: the product code; certificates for other products are refused, and it is
            the default `namespace`.
        data_dir: where the activation is kept (default: the per-user data folder, see
            `storage`).
        jwks: a pinned JWKS (dict, JSON text, or a path to a JSON file): offline validation
            trusts only these keys and never fetches any. Default: the server's keys, fetched
            at activation and refreshed online.
        timeout, retries: per HTTP request; retries apply to 503 and network errors only.
        grace_period: how long after the last successful online check an online validation
            that cannot reach the server still passes on the certificate alone.
        clock_tolerance: how far the clock may go back before validation refuses.
        clock: returns the current time (timezone-aware); for tests.
        installation_id: overrides the derived installation ID (also
            `$LICENSE_CLIENT_INSTALLATION_ID`).
        namespace: what the installation ID is hashed with (default: the product code).
        remember_password: keep the password for `deactivate()` and certificate refreshes
            (and, for a floating license, for `checkout()` without arguments).
        transport, sleep: the HTTP seam and the backoff's sleep; for tests.
        wait: what the heartbeat thread waits between heartbeats with (`wait(seconds)`);
            default an interruptible wait that `checkin()` ends; for tests.
        monotonic: seconds on a clock that only goes forward (default `time.monotonic`):
            how long a lease lasts is judged on it, never on `clock` against the server's
            time; for tests.
    """

    def __init__(
        self,
        base_url: str | None = None,
        product: str | None = None,
        data_dir: str | Path | None = None,
        jwks: JwksSource | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        grace_period: timedelta = timedelta(days=7),
        clock_tolerance: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = utcnow,
        installation_id: str | None = None,
        namespace: str | None = None,
        remember_password: bool = True,
        keys_max_age: timedelta = timedelta(days=1),
        transport: Transport | None = None,
        sleep: Callable[[float], None] | None = None,
        backoff: float = 0.5,
        wait: Callable[[float], Any] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.product = product
        self.namespace = namespace or product or "default"
        self.store = Store(data_dir if data_dir is not None else default_data_dir(self.namespace))
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.grace_period = grace_period
        self.clock_tolerance = clock_tolerance
        self.clock = clock
        self.remember_password = remember_password
        self.keys_max_age = keys_max_age
        self._transport = transport
        self._sleep = sleep
        self._installation_override = installation_id
        self._installation_id: str | None = None
        self._pinned = _load_keyset(jwks) if jwks is not None else None
        self._lock = threading.RLock()
        self._cache: dict[str, tuple[Any, Any]] = {}
        self._last_seen_mem: datetime | None = None
        self._leases = leases.Leases(
            self.store,
            clock,
            self._lock,
            api=self._api,
            verify=self._verify_server_certificate,
            installation_id=lambda: self.installation_id,
            product=product,
            remember_password=remember_password,
            backoff=backoff,
            wait=wait,
            monotonic=monotonic,
        )

    # -- identity ---------------------------------------------------------------------------

    @property
    def installation_id(self) -> str:
        """This machine's installation ID (see `license_client.installation`)."""
        if self._installation_id is None:
            self._installation_id = derive_installation_id(
                self.namespace, self.store, self._installation_override
            )
        return self._installation_id

    @property
    def data_dir(self) -> Path:
        return self.store.folder

    # -- activation -------------------------------------------------------------------------

    def activate(
        self, license_id: str, password: str, machine_name: str | None = None
    ) -> Validation:
        """Activate this installation and store its certificate; returns its validation
        (online: the server just issued the certificate).

        Idempotent: activating an installation that is already active uses no new seat and
        just renews the stored certificate. The server and the machine name of the previous
        activation (kept after a deactivation too) are used unless given; a first activation
        names the machine after its host name. The product code is sent along, so a license
        of another product is refused before a seat is taken. Raises `InvalidCredentials`,
        `WrongProduct`, `NoSeatsAvailable`, `LicenseExpired`, `LicenseSuspended`,
        `TooManyAttempts`, `ValidationError`, `ServiceUnavailable`/`NetworkError`, or
        `InvalidCertificate` when the answer does not verify against the server's (or the
        pinned) keys.
        """
        with self._lock:
            previous = self._previous()
            machine_name = (
                machine_name or previous.get("machine_name") or socket.gethostname() or "unknown"
            )
            api = self._api(previous)
            keys = self._pinned or self._fetch_keys(api)
            payload = {
                "license_id": license_id,
                "password": password,
                "installation_id": self.installation_id,
                "machine_name": machine_name,
            }
            if self.product:
                payload["product"] = self.product
            answer = api.call("POST", "/api/v1/activations", payload)
            token = answer.get("certificate") if isinstance(answer, dict) else None
            certificate = self._verify_new(token, keys, api)
            now = self.clock()
            activation: dict[str, Any] = {
                "version": 1,
                "server": api.base_url,
                "license_id": certificate.license_id or license_id,
                "installation_id": self.installation_id,
                "machine_name": certificate.machine_name or machine_name,
                "certificate": certificate.token,
                "activated_at": _iso(now),
                "source": "online",
            }
            if isinstance(answer.get("activation"), dict):
                activation["activation"] = answer["activation"]
            if self.remember_password:
                activation["password"] = password
            self.store.write_json(ACTIVATION_FILE, activation)
            # a proof of an earlier offline activation cannot free this one's seat
            self.store.remove(PROOF_FILE)
            state = self._state()
            # kept beyond a deactivation: activating again needs neither
            state.update(
                last_online_ok=_iso(now),
                verdict=None,
                server=api.base_url,
                machine_name=activation["machine_name"],
            )
            _forget_answer(state)
            self._set_last_seen(state, now, reset=True)
            self.store.write_json(STATE_FILE, state)
            self._cache.clear()
            validation = self.validate(online=False)
        if not validation.valid:
            return validation
        return self._copy(
            validation,
            online=True,
            reason=f"Activated online: the license server at {api.base_url} issued this "
            f"certificate just now; it is valid{_until(validation.expires_at)}.",
        )

    def deactivate(self, password: str | None = None) -> None:
        """Release this installation's seat on the server and forget the activation.

        Uses the stored password unless one is given. Raises `NotActivated` when nothing is
        stored, and the server's errors (`InvalidCredentials` after the password was rotated,
        ...) otherwise; the stored activation stays until the server has released the seat.
        """
        with self._lock:
            activation = self._activation()
            if activation is None:
                raise NotActivated()
            password = password or activation.get("password")
            if not isinstance(password, str) or not password:
                raise LicenseError(
                    "No password is stored for this activation: give the activation password "
                    "(license-client deactivate --password ...).",
                    code="password_required",
                )
            try:
                self._api(activation).call(
                    "POST",
                    "/api/v1/deactivations",
                    {
                        "license_id": activation.get("license_id"),
                        "password": password,
                        "installation_id": activation.get("installation_id")
                        or self.installation_id,
                    },
                )
            except LicenseError as error:
                # already gone on the server (deactivated from the portal): just forget it here
                if not (error.code.endswith("not_found") or error.code == "not_activated"):
                    raise
            self.forget()

    # -- offline activation -----------------------------------------------------------------

    def offline_request(self, license_id: str, machine_name: str | None = None) -> str:
        """The text of an activation request file for this machine; no network.

        Take the file to the portal (the license's page, "Offline activation"), and install
        the response it gives with `install_offline_response`. The request is remembered as
        pending (its nonce, license, installation, product and time): only the response to
        the latest request installs, so a new request makes the responses to older ones
        useless.

        >>> text = client.offline_request("L-7KQX-M2PD", machine_name="CAD-WS-07")
        >>> json.loads(text)["type"]
        'activation_request'
        """
        if not self.product:
            raise LicenseError(
                "An offline request names the product: give the product code (--product CODE, or "
                "$LICENSE_CLIENT_PRODUCT).",
                code="product_required",
            )
        license_id = (license_id or "").strip()
        if not license_id or len(license_id) > offline.MAX_ID_LENGTH:
            raise LicenseError(
                "The license ID is missing or too long (e.g. L-7KQX-M2PD).", code="bad_license_id"
            )
        machine_name = (machine_name or socket.gethostname() or "unknown").strip()
        # the portal refuses control characters: a machine name goes into emails and logs
        machine_name = re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", machine_name).strip()
        machine_name = machine_name[: offline.MAX_NAME_LENGTH] or "unknown"
        with self._lock:
            now = self.clock()
            document = offline.request_document(
                license_id,
                self.installation_id,
                machine_name,
                self.product,
                now,
                offline.new_nonce(),
            )
            pending = {
                key: document[key]
                for key in ("license_id", "installation_id", "product", "requested_at", "nonce")
            }
            pending["machine_name"] = machine_name
            self.store.write_json(PENDING_FILE, pending)
        return offline.dumps(document)

    def install_offline_response(self, text: str | bytes) -> Validation:
        """Install the portal's activation response (the file's text); no network.

        The response must answer this machine's pending request (same nonce, license,
        installation and product), and its certificate must verify against the keys this
        client trusts: the pinned `jwks`, else the JWKS cached at an earlier online contact;
        never a key that travels with the file. Then the certificate and the deactivation
        secret are stored (one atomic write), the pending request is forgotten, and the
        offline validation is returned (VALID, with the license's features).

        Raises `InvalidResponseFile` (malformed, cut short, unknown field), `ResponseMismatch`
        (answers another request, or none is pending), `UntrustedResponse` (the certificate
        does not verify), `LicenseError(code="no_signing_keys")` when no key is known.
        Installing the same response again just returns the validation.
        """
        fields = offline.parse_response(text)
        with self._lock:
            pending = self.store.read_json(PENDING_FILE)
            if pending is None or not _same(pending.get("nonce"), fields["nonce"]):
                installed = self._activation() or {}
                if _same(installed.get("request_nonce"), fields["nonce"]) and (
                    installed.get("certificate") == fields["certificate"]
                ):
                    return self.validate(online=False)
                prefix = (
                    ""
                    if pending
                    else "No activation request is pending on this machine (for this product "
                    "and data folder). "
                )
                raise ResponseMismatch(
                    prefix + "This response answers another request; make a new request on "
                    "this machine.",
                    details={"problem": "nonce"},
                )
            self._check_response_names(fields, pending)
            keys = self._pinned or self._cached_keys()
            if not keys:
                raise LicenseError(
                    "No signing keys to verify the response with: give the JWKS file shipped "
                    "with the product (--jwks FILE).",
                    code="no_signing_keys",
                )
            try:
                certificate = keys.verify(fields["certificate"])
            except jws.CertificateError as error:
                raise UntrustedResponse(
                    f"The response's certificate does not verify against the signing keys "
                    f"this program trusts ({error.message}); it was not issued by the "
                    "license portal for this product. Ask the portal for a new response.",
                    details={"reason": error.reason},
                ) from None
            self._check_certificate_names(certificate, fields)
            if not _same(certificate.claims.get("nonce"), pending.get("nonce")):
                # the outer file's nonce is not signed: an older genuine certificate for this
                # installation could be rewrapped with the pending nonce
                raise ResponseMismatch(
                    "The response's certificate is not the answer to this request (it was "
                    "issued for another or an older request); make a new request on this "
                    "machine.",
                    details={"problem": "nonce"},
                )
            now = self.clock()
            activation: dict[str, Any] = {
                "version": 1,
                "license_id": fields["license_id"],
                "installation_id": self.installation_id,
                "machine_name": certificate.machine_name or _str(pending.get("machine_name")),
                "certificate": certificate.token,
                "activated_at": _iso(now),
                "source": "offline",
                "request_nonce": fields["nonce"],
                "deactivation_secret": fields["deactivation_secret"],
            }
            if self.base_url:
                activation["server"] = self.base_url
            # certificate and secret in one atomic write: never one without the other
            self.store.write_json(ACTIVATION_FILE, activation)
            self.store.remove(PENDING_FILE)
            self.store.remove(PROOF_FILE)
            state = self._state()
            # no online check happened: the grace period starts at the next one
            state.update(verdict=None, last_online_ok=None)
            _forget_answer(state)
            with contextlib.suppress(LicenseError):
                self.store.write_json(STATE_FILE, state)
            self._cache.clear()
        return self.validate(online=False)

    def deactivate_offline(self, out: str | Path | None = None) -> str:
        """Delete this machine's offline certificate and return the deactivation proof's text;
        no network.

        With `out`, the proof is first written there (atomically): if that fails
        (`StorageError`), nothing is deleted. The proof is also kept in the data folder, and
        calling this again once deactivated returns (and writes) that same proof, so a lost
        file can be written again. Upload the proof on the license's page in the portal
        ("Offline deactivation") to free the seat; it is valid once.

        Raises `NotActivated` when nothing is stored (and no proof is kept),
        `NotOfflineActivation` when the activation was made online (deactivate online).
        """
        with self._lock:
            activation = self._activation()
            if activation is None:
                kept = self.store.read_json(PROOF_FILE)
                if kept is None or not isinstance(kept.get("text"), str):
                    raise NotActivated()
                if out is not None:
                    _write_out(out, kept["text"])
                return kept["text"]
            secret = _str(activation.get("deactivation_secret"))
            if secret is None:
                raise NotOfflineActivation()
            license_id = _str(activation.get("license_id")) or ""
            installation = _str(activation.get("installation_id")) or self.installation_id
            proof = offline.dumps(
                offline.proof_document(license_id, installation, self.clock(), secret)
            )
            if out is not None:
                _write_out(out, proof)
            self.store.write_json(PROOF_FILE, {"license_id": license_id, "text": proof})
            self.store.remove(ACTIVATION_FILE)
            state = self._state()
            state.update(verdict=None, last_online_ok=None)
            _forget_answer(state)
            with contextlib.suppress(LicenseError):
                self.store.write_json(STATE_FILE, state)
            self._cache.clear()
            return proof

    def _check_response_names(self, fields: dict[str, Any], pending: dict[str, Any]) -> None:
        """The response names what the pending request named: same license, this
        installation, this product."""
        expected = {
            "license_id": pending.get("license_id"),
            "installation_id": self.installation_id,
            "product": self.product or pending.get("product"),
        }
        for name, value in expected.items():
            found = fields[name]
            if name != "installation_id":
                # the portal answers canonical IDs and codes ("l-7kqx-m2pd" → "L-7KQX-M2PD")
                found, value = found.strip().casefold(), str(value).strip().casefold()
            if found != value:
                raise ResponseMismatch(
                    f"This response is for {name.replace('_', ' ')} {fields[name]!r}, but the "
                    f"request was for {expected[name]!r}: it answers another request; make a new "
                    "request on this machine.",
                    details={"problem": name, "field": name},
                )

    def _check_certificate_names(
        self, certificate: jws.Certificate, fields: dict[str, Any]
    ) -> None:
        problem = self._identity_problem(certificate)
        if problem is None and certificate.license_id != fields["license_id"]:
            problem = (r.MALFORMED, "The certificate is for another license than the response.")
        if problem is not None:
            raise ResponseMismatch(
                f"{problem[1]} This response answers another request; make a new request on "
                "this machine.",
                details={"problem": problem[0].lower()},
            )

    # -- floating licenses (leases; see `license_client.leases`) -----------------------------

    def checkout(
        self,
        license_id: str | None = None,
        password: str | None = None,
        *,
        borrow_until: datetime | None = None,
        machine_name: str | None = None,
        on_lost: Callable[[LeaseStatus], Any] | None = None,
        heartbeat: bool = True,
    ) -> Lease:
        """Take a seat of a floating license; a daemon thread keeps it (every third of the
        lease period) until `checkin()`, which also runs at exit and on SIGTERM.

        The license ID and password are remembered (`lease.json`): later calls may omit
        them. Idempotent: the lease held (or a borrowed one still running, with no network)
        comes back. If the lease ends and checking out again fails, the status turns `lost`
        and `on_lost(status)` is called from the thread. `heartbeat=False`: no thread, call
        `heartbeat()` yourself. Raises `NoSeatsAvailable` (`.machines`: who holds the seats
        and until when), `NodeLockedLicense`, `BorrowNotAllowed`, `InvalidCredentials`, ...

        >>> lease = client.checkout("L-7KQX-M2PD", "the password", on_lost=warn_user)
        """
        return self._leases.checkout(
            license_id, password, machine_name, borrow_until, on_lost, heartbeat
        )

    def borrow(
        self,
        days: float,
        license_id: str | None = None,
        password: str | None = None,
        *,
        machine_name: str | None = None,
    ) -> Lease:
        """Borrow a seat for `days` (at most the license's `max_borrow_days`): no heartbeat,
        valid offline until its end in any later process; `checkin()` returns it early.
        Raises `BorrowNotAllowed` (`.max_borrow_days`, `.latest`) and checkout's errors."""
        return self._leases.borrow(days, license_id, password, machine_name)

    def checkin(self) -> Lease:
        """Stop the heartbeat and give the seat back (a borrowed one too); the lease given
        back. Raises `NotCheckedOut` when none is held, the server's errors otherwise (the
        stored lease then stays, to check in later)."""
        lease = self._leases.checkin()
        assert lease is not None  # not quiet: None is raised as NotCheckedOut
        return lease

    def heartbeat(self) -> LeaseStatus:
        """One heartbeat now, as the thread does it (for `checkout(heartbeat=False)`)."""
        return self._leases.heartbeat()

    def lease_status(self) -> LeaseStatus:
        """Where the lease stands: `state` (`none`, `live`, `retrying`, `borrowed`, `lost`),
        `reason`, `lease`, `error`, `next_heartbeat_at`; no network."""
        return self._leases.status()

    @property
    def lease(self) -> Lease | None:
        """The lease this installation may use now, or None (none, ended or lost)."""
        status = self._leases.status()
        return status.lease if status.held else None

    @property
    def lease_lost(self) -> bool:
        """Whether the lease ended and could not be checked out again (stop the work)."""
        return self._leases.status().lost

    # -- features ---------------------------------------------------------------------------

    def has_feature(self, code: str) -> bool:
        """Whether the license unlocks the feature (module) `code`; no network.

        From the certificate's `features`, or from the last online validation's answer when
        that is newer than the certificate. False whenever the license is not valid here.

        >>> if client.has_feature("steel"):
        ...     enable_steel_design()
        """
        return code in self.validate(online=False).features

    def forget(self) -> None:
        """Drop the stored activation without asking the server (the seat stays taken)."""
        with self._lock:
            self.store.remove(ACTIVATION_FILE)
            state = self._state()
            state.update(verdict=None, last_online_ok=None)
            _forget_answer(state)
            self.store.write_json(STATE_FILE, state)
            self._cache.clear()

    # -- validation -------------------------------------------------------------------------

    def validate(self, online: bool = True) -> Validation:
        """Whether this installation may run. Never raises for an invalid license.

        Online: the server's verdict on the stored certificate (plus the local checks of
        machine and product); if the server cannot be reached, the certificate alone, but only
        within `grace_period` of the last successful online check (an installation activated
        offline, from a response file, has no grace period to run out: air-gapped is its
        normal state). Offline: the certificate's
        signature, expiry, installation ID and product, and the clock-rollback check.
        """
        with self._lock:
            if not online:
                return self._validate_offline()
            return self._validate_online()

    def status(self, online: bool = False) -> Status:
        """The stored activation and its validation (offline unless `online`)."""
        validation = self.validate(online=online)
        with self._lock:
            activation = self._activation() or {}
            lease = None if activation else leases.held_lease(self._read(leases.LEASE_FILE))
            state = self._state()
            claims = _unverified_claims(
                activation.get("certificate") or (lease.certificate if lease else None)
            )
            last_ok = offline.parse_time(state.get("last_online_ok")) if activation else None
            return Status(
                activated=bool(activation),
                installation_id=self.installation_id,
                data_dir=str(self.store.folder),
                validation=validation,
                server=self.base_url
                or _str(activation.get("server"))
                or (lease.server if lease else None),
                license_id=_str(activation.get("license_id"))
                or (claims.license_id if claims else None),
                machine_name=_str(activation.get("machine_name"))
                or (claims.machine_name if claims else None),
                product=claims.product if claims else None,
                customer_id=claims.customer_id if claims else None,
                activated_at=offline.parse_time(activation.get("activated_at")),
                expires_at=claims.expires_at if claims else None,
                last_online_check=last_ok,
                grace_until=last_ok + self.grace_period if last_ok else None,
                features=validation.features,
                # the certificate's claim, as the grace period reads it (not activation.json's)
                source=(
                    ("offline" if claims and _activated_offline(claims) else "online")
                    if activation
                    else None
                ),
                lease=lease.to_dict() if lease else None,
            )

    @property
    def certificate(self) -> str | None:
        """The stored certificate (a compact JWS), or None."""
        activation = self._activation()
        return _str(activation.get("certificate")) if activation else None

    # -- the two paths ----------------------------------------------------------------------

    def _validate_offline(self, now: datetime | None = None) -> Validation:
        return self._check_offline(now or self.clock())[0]

    def _check_offline(self, now: datetime) -> tuple[Validation, jws.Certificate | None]:
        """The offline validation, and the certificate when its signature verified."""
        activation = self._held()
        if activation is None:
            return self._result(now, r.NOT_ACTIVATED, "This installation is not activated."), None
        keys = self._pinned or self._cached_keys()
        if not keys:
            return self._result(
                now,
                r.UNKNOWN_KEY,
                "No signing keys to verify the certificate with: validate online once, or pin "
                "the JWKS.",
            ), None
        try:
            certificate = keys.verify(activation["certificate"])
        except jws.CertificateError as error:
            reason = f"The certificate is invalid: {error.message}."
            return self._result(now, error.reason, reason), None
        problem = self._identity_problem(certificate)
        if problem:
            return self._result(now, *problem, certificate=certificate), certificate
        state = self._state()
        rollback = self._rollback(state, certificate, now)
        if rollback:
            return self._result(
                now, r.CLOCK_ROLLBACK, rollback, certificate=certificate
            ), certificate
        expires = certificate.expires_at
        lease = leases.is_lease(certificate)
        if expires is not None and now >= expires:
            if lease:
                reason = f"The lease ended on {_iso(expires)}; check out again."
                return self._result(
                    now, r.LEASE_EXPIRED, reason, certificate=certificate
                ), certificate
            reason = (
                f"The license expired on {_iso(expires)}: renew it in the portal"
                f"{_at(self._portal(activation))}, then validate online to fetch the renewed "
                "certificate."
            )
            return self._result(now, r.EXPIRED, reason, certificate=certificate), certificate
        ending = activation.get("ended") if lease else None
        if isinstance(ending, dict) and isinstance(ending.get("code"), str):
            reason = _str(ending.get("reason")) or "The license server ended the lease."
            return self._result(now, ending["code"], reason, certificate=certificate), certificate
        verdict = state.get("verdict")
        if (
            isinstance(verdict, dict)
            and verdict.get("code") in STICKY_VERDICTS
            and verdict.get("certificate") == certificate.token
        ):
            said = _str(verdict.get("reason")) or f"The license server said {verdict['code']}."
            return self._result(
                now,
                verdict["code"],
                f"{said} (Checked online on {verdict.get('at')}; validate online to update.)",
                certificate=certificate,
            ), certificate
        features = self._features(certificate, state, keys)
        self._set_last_seen(state, now)
        until = f" until {_iso(expires)}" if expires else " (perpetual)"
        what = "lease" if lease else "certificate"
        if lease and certificate.claims.get("borrowed") is True:
            what = "borrowed lease"
        return self._result(
            now,
            r.VALID,
            f"The {what} is valid{until}.",
            certificate=certificate,
            valid=True,
            features=features,
        ), certificate

    def _validate_online(self) -> Validation:
        now = self.clock()
        activation = self._held()
        if activation is None:
            return self._result(now, r.NOT_ACTIVATED, "This installation is not activated.")
        token = activation["certificate"]
        claims = _unverified_claims(token)
        if claims is None:
            return self._result(now, r.MALFORMED, "The stored certificate is not a JWS.")
        problem = self._identity_problem(claims)
        if problem:
            return self._result(now, *problem, certificate=claims)
        try:
            api = self._api(activation)
        except LicenseError as error:  # no server known: as good as unreachable
            return self._fallback(now, error)
        nonce = secrets.token_urlsafe(24)
        try:
            answer = api.call("POST", "/api/v1/validations", {"certificate": token, "nonce": nonce})
        except FALLBACK_ERRORS as error:
            return self._fallback(now, error)
        except LicenseError as error:
            return self._result(
                now,
                r.MALFORMED,
                f"The server refused the certificate: {error.message}",
                certificate=claims,
                online=True,
            )
        try:
            # only the signed answer counts: the plain fields beside it prove nothing
            signed = self._signed_answer(api, answer, nonce, claims, now)
        except LicenseError as error:
            return self._fallback(now, error)
        answer = signed.claims
        code = answer["code"]
        valid = answer.get("valid") is True and code == r.VALID
        state = self._state()
        expires = offline.parse_time(answer.get("expires_at")) if answer.get("expires_at") else None
        features: tuple[str, ...] = ()
        if valid:
            # the server vouches for the time too: forget a clock that once ran ahead
            state.update(last_online_ok=_iso(now), verdict=None)
            self._set_last_seen(state, now, reset=True)
            _forget_answer(state)
            if "features" in answer:  # as of now: newer than the certificate's
                features = jws.feature_codes(answer.get("features"))
                # the signed token itself, verified again when read: a plain list here
                # would be one edit away from unlocking every module
                state["answer"] = signed.token
            else:  # a server from before features
                features = claims.features
        else:
            reason = _verdict_reason(answer, self._portal(activation))
            state["verdict"] = {
                "code": code,
                "at": _iso(now),
                "certificate": token,
                "reason": reason,
            }
            _forget_answer(state)
        self.store.write_json(STATE_FILE, state)
        self._cache.pop(STATE_FILE, None)
        if valid:
            if not leases.is_lease(claims):  # a lease is renewed by its heartbeat instead
                self._refresh(api, activation, claims, expires)
            reason = "The license server confirmed the license."
        return self._result(
            now,
            code,
            reason,
            certificate=claims,
            valid=valid,
            online=True,
            # a lease ends before the license does: its certificate's exp
            expires_at=expires
            if "expires_at" in answer and not leases.is_lease(claims)
            else claims.expires_at,
            features=features,
        )

    def _signed_answer(
        self, api: Api, answer: Any, nonce: str, certificate: jws.Certificate, now: datetime
    ) -> jws.SignedAnswer:
        """The server's verdict from `signed_answer`, verified like a certificate (pinned or
        cached keys), for this request (`nonce`), fresh (`iat` within `clock_tolerance`) and
        about this certificate; `ProtocolError` otherwise, which is as good as no answer."""
        token = answer.get("signed_answer") if isinstance(answer, dict) else None
        if not isinstance(token, str):
            raise ProtocolError("The validation answer is not signed.")
        keys = self._pinned or self._cached_keys()
        try:
            try:
                signed = keys.verify_answer(token)
            except jws.CertificateError as error:
                if error.reason != jws.UNKNOWN_KEY or self._pinned is not None:
                    raise
                signed = self._fetch_keys(api).verify_answer(token)  # a key rotated meanwhile
        except jws.CertificateError as error:
            raise ProtocolError(
                f"The validation answer does not verify: {error.message}."
            ) from None
        claims = signed.claims
        if claims.get("nonce") != nonce:
            raise ProtocolError("The validation answer is not the answer to this request.")
        issued = signed.issued_at
        if issued is None or abs(now - issued) > self.clock_tolerance:
            raise ProtocolError("The validation answer is stale (or the clock is off).")
        code = claims.get("code")
        if not isinstance(code, str):
            raise ProtocolError("The validation answer has no code.")
        if code != r.BAD_SIGNATURE and (
            claims.get("license_id") != certificate.license_id
            or claims.get("installation_id") != certificate.installation_id
        ):
            raise ProtocolError("The validation answer is about another certificate.")
        return signed

    def _fallback(self, now: datetime, error: LicenseError) -> Validation:
        local, certificate = self._check_offline(now)
        if not local.valid:
            return local
        if certificate is not None and leases.is_lease(certificate):
            # a lease has no grace period: its certificate holds until the lease's end
            return self._copy(
                local,
                reason=f"Checked offline: the license server could not be reached "
                f"({error.message}); the lease is valid until it ends, "
                f"{_iso(certificate.expires_at)}.",
            )
        if certificate is not None and _activated_offline(certificate):
            # activated from a response file: the machine is air-gapped by design, so no
            # grace period runs out; the signed certificate (and its expiry) decides. Its
            # signed `source` claim says so, never activation.json (anyone may edit that)
            return self._copy(
                local,
                reason=f"Checked offline: the license server could not be reached "
                f"({error.message}); this installation was activated offline and its "
                f"certificate is valid{_until(certificate.expires_at)}.",
            )
        last_ok = offline.parse_time(self._state().get("last_online_ok"))
        if last_ok is None or now > last_ok + self.grace_period:
            if last_ok is None:
                when = "has never been confirmed online"
            else:
                when = (
                    f"was last confirmed online on {_iso(last_ok)}: its grace period of "
                    f"{_duration(self.grace_period)} ended on {_iso(last_ok + self.grace_period)}"
                )
            return self._copy(
                local,
                valid=False,
                code=r.GRACE_EXPIRED,
                reason=f"The license server could not be reached ({error.message}) and the "
                f"license {when}. Connect this machine to the license server and validate "
                "again.",
                grace_until=last_ok + self.grace_period if last_ok else None,
            )
        grace_until = last_ok + self.grace_period
        return self._copy(
            local,
            reason=f"Checked offline: the license server could not be reached "
            f"({error.message}); valid until {_iso(grace_until)} "
            f"({_duration(grace_until - now)} of grace left).",
            grace_until=grace_until,
        )

    # -- checks -----------------------------------------------------------------------------

    @staticmethod
    def _features(
        certificate: jws.Certificate, state: dict[str, Any], keys: jws.KeySet
    ) -> tuple[str, ...]:
        """The certificate's features, unless the server answered others for the same
        activation after the certificate was issued (features changed since).

        That answer counts only as the signed token the server gave: verified again with the
        keys this client trusts, a VALID answer about this license and installation, its
        `features` and `iat` from its claims. Anything else in the state is ignored.
        """
        token = state.get("answer")
        if not isinstance(token, str):
            return certificate.features
        try:
            answer = keys.verify_answer(token)
        except jws.CertificateError:
            return certificate.features
        claims = answer.claims
        if (
            claims.get("valid") is not True
            or claims.get("code") != r.VALID
            or "features" not in claims
            or claims.get("license_id") != certificate.license_id
            or claims.get("installation_id") != certificate.installation_id
        ):
            return certificate.features
        at = answer.issued_at
        issued = certificate.issued_at
        if at is None or (issued is not None and at < issued):
            return certificate.features
        return jws.feature_codes(claims.get("features"))

    def _identity_problem(self, certificate: jws.Certificate) -> tuple[str, str] | None:
        if certificate.installation_id != self.installation_id:
            return (
                r.WRONG_MACHINE,
                "The certificate was issued to another installation, not to this machine.",
            )
        if self.product and not jws.same_product(certificate.product, self.product):
            return (
                r.WRONG_PRODUCT,
                f"The certificate is for product {certificate.product!r}, not {self.product!r}.",
            )
        if "exp" in certificate.claims and certificate.expires_at is None:
            return (r.MALFORMED, "The certificate's expiry is not a date.")
        return None

    def _rollback(
        self, state: dict[str, Any], certificate: jws.Certificate, now: datetime
    ) -> str | None:
        seen = self._last_seen(state)
        if seen is not None and now < seen - self.clock_tolerance:
            return (
                f"The system clock ({_iso(now)}) is behind a time this program has already seen "
                f"({_iso(seen)}); correct the clock, or validate online."
            )
        issued = certificate.issued_at
        if issued is not None and now < issued - self.clock_tolerance:
            return (
                f"The system clock ({_iso(now)}) is before the certificate was issued "
                f"({_iso(issued)}); correct the clock."
            )
        return None

    def _last_seen(self, state: dict[str, Any]) -> datetime | None:
        stored = offline.parse_time(state.get("last_seen"))
        mem = self._last_seen_mem
        if stored is None or (mem is not None and mem > stored):
            return mem
        return stored

    def _set_last_seen(self, state: dict[str, Any], now: datetime, reset: bool = False) -> None:
        """Remember `now` as seen, writing it when it moved on enough; `reset` sets it (the
        caller writes the state) after the server vouched for the license."""
        if reset:
            self._last_seen_mem = now
            state["last_seen"] = _iso(now)
            return
        if self._last_seen_mem is None or now > self._last_seen_mem:
            self._last_seen_mem = now
        stored = offline.parse_time(state.get("last_seen"))
        if stored is not None and now - stored < LAST_SEEN_WRITE_INTERVAL:
            return
        state["last_seen"] = _iso(now)
        # a read-only data folder must not make a valid license invalid
        with contextlib.suppress(LicenseError):
            self.store.write_json(STATE_FILE, state)
        self._cache.pop(STATE_FILE, None)

    # -- keys and certificates --------------------------------------------------------------

    def _fetch_keys(self, api: Api) -> jws.KeySet:
        document = api.call("GET", "/api/v1/signing-keys")
        try:
            keys = jws.KeySet.from_jwks(document if isinstance(document, dict) else {})
        except jws.CertificateError as error:
            raise ProtocolError(f"The server's signing keys are not a JWKS: {error}") from None
        if not keys:
            raise ProtocolError("The server published no Ed25519 signing key.")
        self.store.write_json(KEYS_FILE, {"jwks": keys.document, "fetched_at": _iso(self.clock())})
        self._cache.pop(KEYS_FILE, None)
        return keys

    def _verify_new(self, token: Any, keys: jws.KeySet, api: Api) -> jws.Certificate:
        try:
            try:
                certificate = keys.verify(token)
            except jws.CertificateError as error:
                if error.reason != jws.UNKNOWN_KEY or self._pinned is not None:
                    raise
                certificate = self._fetch_keys(api).verify(token)  # a key rotated meanwhile
        except jws.CertificateError as error:
            raise InvalidCertificate(
                f"The server's certificate does not verify: {error.message}.",
                details={"reason": error.reason},
            ) from None
        if certificate.installation_id != self.installation_id:
            raise InvalidCertificate("The server's certificate names another installation.")
        return certificate

    def _verify_server_certificate(self, token: Any, api: Api) -> jws.Certificate:
        """A certificate the server just answered (a lease's), verified with the pinned or
        cached keys (fetched first when there are none)."""
        keys = self._pinned or self._cached_keys()
        if not keys:
            keys = self._fetch_keys(api)
        return self._verify_new(token, keys, api)

    def _refresh(
        self,
        api: Api,
        activation: dict[str, Any],
        claims: jws.Certificate,
        server_expiry: datetime | None,
    ) -> None:
        """After a VALID online check: fresh keys when stale, a fresh certificate when the
        license's expiry changed (extended or renewed). Best effort: errors are ignored."""
        try:
            if self._pinned is None:
                keys_doc = self.store.read_json(KEYS_FILE) or {}
                fetched = offline.parse_time(keys_doc.get("fetched_at"))
                keys = self._cached_keys()
                if (
                    fetched is None
                    or self.clock() - fetched > self.keys_max_age
                    or keys.key_for(claims.kid) is None
                ):
                    self._fetch_keys(api)
            if (
                _str(activation.get("password"))
                and server_expiry != claims.expires_at
                and (
                    server_expiry is None
                    or claims.expires_at is None
                    or abs((server_expiry - claims.expires_at).total_seconds()) > 1
                )
            ):
                self.activate(
                    _str(activation.get("license_id")) or "",
                    activation["password"],
                    _str(activation.get("machine_name")),
                )
        except (LicenseError, OSError):
            pass

    # -- storage ----------------------------------------------------------------------------

    def _read(self, name: str) -> dict[str, Any] | None:
        """A data file, re-read only when another process or call replaced it."""
        stamp = self.store.stamp(name)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == stamp and stamp is not None:
            return cached[1]
        document = self.store.read_json(name) if stamp is not None else None
        self._cache[name] = (stamp, document)
        return document

    def _activation(self) -> dict[str, Any] | None:
        return self._read(ACTIVATION_FILE)

    def _held(self) -> dict[str, Any] | None:
        """What validation reads: the stored activation, else a floating license's stored
        lease (as `{certificate, server, license_id, ended}`); None when neither is."""
        activation = self._activation()
        if activation is not None and isinstance(activation.get("certificate"), str):
            return activation
        document = self._read(leases.LEASE_FILE)
        record = document.get("lease") if document else None
        if not isinstance(record, dict) or not isinstance(record.get("certificate"), str):
            return None
        return {
            "certificate": record["certificate"],
            "server": document.get("server"),
            "license_id": document.get("license_id"),
            "ended": record.get("ended"),
        }

    def _state(self) -> dict[str, Any]:
        return dict(self._read(STATE_FILE) or {})

    def _cached_keys(self) -> jws.KeySet:
        stamp = self.store.stamp(KEYS_FILE)
        cached = self._cache.get("keyset")
        if cached is not None and cached[0] == stamp:
            return cached[1]
        document = self.store.read_json(KEYS_FILE) if stamp is not None else None
        try:
            keys = jws.KeySet.from_jwks((document or {}).get("jwks") or {"keys": []})
        except jws.CertificateError:
            keys = jws.KeySet()
        self._cache["keyset"] = (stamp, keys)
        return keys

    def _portal(self, held: dict[str, Any] | None = None) -> str | None:
        """The server's URL: the configured one, else the one `held` (the activation or a
        lease document) names, else the one this installation was last activated with."""
        return (
            self.base_url
            or (_str(held.get("server")) if held else None)
            or _str(self._state().get("server"))
        )

    def _previous(self) -> dict[str, str | None]:
        """The server and machine name this installation was last activated with: the stored
        activation's, else what state.json kept through a deactivation."""
        activation = self._activation() or {}
        state = self._state()
        return {
            name: _str(activation.get(name)) or _str(state.get(name))
            for name in ("server", "machine_name")
        }

    def _api(self, activation: dict[str, Any] | None = None) -> Api:
        """The API of the server `_portal(activation)` names."""
        base_url = self._portal(activation)
        if not base_url:
            raise LicenseError(
                "This installation knows no license server yet: give the License Portal's "
                "URL (license-client --server URL, or $LICENSE_SERVER_URL).",
                code="no_server",
            )
        kwargs: dict[str, Any] = {}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        return Api(
            base_url,
            transport=self._transport,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
            **kwargs,
        )

    # -- results ----------------------------------------------------------------------------

    def _result(
        self,
        now: datetime,
        code: str,
        reason: str,
        certificate: jws.Certificate | None = None,
        valid: bool = False,
        online: bool = False,
        expires_at: datetime | None | object = CERTIFICATE_EXPIRY,
        features: tuple[str, ...] = (),
    ) -> Validation:
        """`expires_at`: the certificate's unless given (None: perpetual, as a server's
        answer may say of a license made perpetual since the certificate)."""
        if expires_at is CERTIFICATE_EXPIRY:
            expires_at = certificate.expires_at if certificate else None
        return Validation(
            valid=valid,
            code=code,
            reason=reason,
            online=online,
            checked_at=now,
            license_id=certificate.license_id if certificate else None,
            installation_id=self.installation_id,
            machine_name=certificate.machine_name if certificate else None,
            product=certificate.product if certificate else None,
            customer_id=certificate.customer_id if certificate else None,
            expires_at=expires_at,  # type: ignore[arg-type]
            features=features if valid else (),
        )

    @staticmethod
    def _copy(validation: Validation, **changes: Any) -> Validation:
        values = {**validation.__dict__, **changes}
        if not values["valid"]:
            values["features"] = ()  # an invalid license unlocks nothing
        return Validation(**values)


def _write_out(out: str | Path, text: str) -> None:
    """Write a file for the user to carry (atomically: a half-written proof helps nobody)."""
    path = Path(out)
    try:
        atomic_write(path, text.encode("utf-8"))
    except OSError as exc:
        raise StorageError(
            f"Cannot write {path}: {exc.strerror or exc}; nothing was deleted, try another place.",
            code="cannot_write_file",
        ) from exc


def _same(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and secrets.compare_digest(a, b)


def _load_keyset(source: JwksSource) -> jws.KeySet:
    if isinstance(source, Path):
        source = source.read_text(encoding="utf-8")
    keys = jws.KeySet.from_jwks(source)
    if not keys:
        raise ValueError("the pinned JWKS holds no Ed25519 key")
    return keys


def _activated_offline(certificate: jws.Certificate) -> bool:
    """Whether licensing issued the certificate by offline activation (its `source` claim;
    an online activation's certificate has none)."""
    return certificate.claims.get("source") == "offline"


def _unverified_claims(token: Any) -> jws.Certificate | None:
    """The certificate's claims without checking the signature (for display and routing)."""
    try:
        header, claims, _, _ = jws.parse(token)
    except jws.CertificateError:
        return None
    return jws.Certificate(token, header, claims)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return _iso_text(moment)


def _verdict_reason(answer: dict[str, Any], portal: str | None) -> str:
    """What a signed answer other than VALID means for this machine: what happened, since
    when, and what to do next (who and when come from the answer when the server says)."""
    code = answer.get("code")
    license_id = _str(answer.get("license_id"))
    if code == r.DEACTIVATED:
        by = DEACTIVATED_BY.get(_str(answer.get("deactivated_by")) or "")
        at = _iso(offline.parse_time(answer.get("deactivated_at")))
        how = ", ".join(part for part in (by, f"at {at}" if at else None) if part)
        return (
            f"This machine was deactivated on the license server{f' ({how})' if how else ''}. "
            "Activate again with `license-client activate`, or ask your administrator"
            f"{f' at {portal}' if portal else ''} for a seat."
        )
    if code == r.SUSPENDED:
        subject = f"License {license_id}" if license_id else "The license"
        since = _iso(offline.parse_time(answer.get("suspended_at")))
        why = _str(answer.get("suspension_reason"))
        return (
            f"{subject} is suspended{f' since {since}' if since else ''}"
            f"{f' (reason: {why})' if why else ''}: contact your vendor."
        )
    if code == r.EXPIRED:
        expired = _iso(offline.parse_time(answer.get("expires_at")))
        return (
            f"The license expired{f' on {expired}' if expired else ''}: renew it in the "
            f"portal{_at(portal)}, then validate online again."
        )
    if code == r.LEASE_EXPIRED:
        return "The license server ended this lease: check out again."
    if code == r.BAD_SIGNATURE:
        return (
            "The license server does not recognise this certificate (it was altered, or "
            "signed with a key the server no longer has): activate again."
        )
    return f"The license server says {code}."


def _at(portal: str | None) -> str:
    return f" ({portal})" if portal else ""


def _duration(span: timedelta) -> str:
    """ "3 days", "1 day", "5 hours", "less than an hour"."""
    if span >= timedelta(days=1):
        return f"{span.days} day{'s' if span.days != 1 else ''}"
    hours = int(span.total_seconds() // 3600)
    if hours >= 1:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return "less than an hour"


def _until(expires: datetime | None) -> str:
    return f" until {_iso(expires)}" if expires else " with no end (perpetual)"


@functools.lru_cache(maxsize=64)
def _iso_text(moment: datetime) -> str:
    # whole seconds: these times are shown to people and compared against hours and days
    utc = moment.astimezone(timezone.utc).replace(microsecond=0)
    return utc.isoformat().replace("+00:00", "Z")


def _forget_answer(state: dict[str, Any]) -> None:
    """Drop the last online answer's features (and the unsigned list older kits kept)."""
    state.pop("answer", None)
    state.pop("features", None)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
