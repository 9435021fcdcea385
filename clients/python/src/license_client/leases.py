"""Floating licenses: a lease on one seat, renewed by a heartbeat thread; borrowing a seat.

A floating license's seats are shared by any number of installations, at most `seats` at
once. `checkout` takes one (`POST /api/v1/leases`) for one lease period; a daemon thread
renews it every third of that period (`POST /api/v1/leases/{id}/heartbeat`, the lease's
token as `Authorization: Bearer`); `checkin` gives it back (`DELETE /api/v1/leases/{id}`).

- How long the lease lasts is judged on this process's monotonic clock, never by comparing
  the wall clock with the server's `exp`: the deadline is when the answer arrived plus one
  period (its certificate's exp - iat), so a clock that is off changes nothing.
- Network gap: the heartbeat is retried with backoff (jitter, at most a third of the period)
  for as long as the lease lasts; its end is the deadline.
- The lease lapsed (410 `lease_expired` with reason `expired`: a gap outlived it; or its
  deadline passed while the machine slept): the thread checks out again at once.
- The lease was ended on purpose (410 with reason `revoked` in the portal, or `checked_in`):
  it is lost, never taken back, so the seat an admin freed stays free.
- 401, the server no longer knows the token: another process of this installation checked
  out since, which gave the same lease a new token and stored it in `lease.json`. The thread
  adopts that token and keeps beating (the two processes share the lease); if `lease.json`
  holds no newer token for this lease, the lease is lost.
- Lost: when checking out again is refused (no seat free any more, license suspended, ...) or
  the server cannot be reached by the deadline, too. State `lost`, a reason, the error, and
  the `on_lost` callback, once. The thread never raises into the program; the product decides
  what to do.
- `borrow(days)`: a lease until then that needs no heartbeat, for a laptop that leaves the
  office; the certificate and token stay in the data folder, so any later process validates
  it offline until its end (then `LEASE_EXPIRED`) and `checkin` returns it early.

`lease.json` in the data folder holds the license ID, machine name, server URL, the password
(unless `remember_password=False`: checking out again needs it) and the current lease: its
certificate (`exp` = the lease's end, claim `lease_id`), its token, and `ended` once the
server said it ended. The certificate is what validation reads, like an activation's. Every
read-modify-write of it, and every check-out together with storing its new token, holds the
file's lock (`Store.locked`), so two processes of one installation never store a stale token.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import signal
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from types import FrameType
from typing import Any, Callable
from urllib.parse import quote

from . import jws
from .errors import (
    InvalidCertificate,
    InvalidLeaseToken,
    LeaseExpired,
    LicenseError,
    LicenseExpired,
    LicenseSuspended,
    NotCheckedOut,
    ProtocolError,
    ServiceUnavailable,
    StorageError,
    TooManyAttempts,
    WrongProduct,
)
from .storage import Store
from .transport import Api

LEASE_FILE = "lease.json"

# LeaseStatus.state
NONE = "none"  # no lease held by this process (a stored one may have ended)
LIVE = "live"  # held, the heartbeat keeps it
RETRYING = "retrying"  # held, but the last heartbeat could not reach the server
BORROWED = "borrowed"  # a borrowed lease, valid until its end without any heartbeat
LOST = "lost"  # the lease ended and checking out again failed: the product must stop

# the heartbeat's retries never wait longer than this, however long the lease period
MAX_RETRY_DELAY = 60.0
# errors that say nothing about the lease: retry while it lasts
RETRY_ERRORS = (ServiceUnavailable, ProtocolError, TooManyAttempts, InvalidCertificate)
# the server has no live lease with this token any more
GONE_ERRORS = (LeaseExpired, InvalidLeaseToken)
# 410 reasons that mean someone ended the lease on purpose: lost, never checked out again
ENDED_ON_PURPOSE = ("revoked", "checked_in")
# the verdict a lost lease leaves for offline validation, by the error that ended it
ENDED_CODES: dict[type[LicenseError], str] = {
    LeaseExpired: "LEASE_EXPIRED",
    LicenseSuspended: "SUSPENDED",
    LicenseExpired: "EXPIRED",
}

log = logging.getLogger("license_client.leases")


@dataclass(frozen=True)
class Lease:
    """One seat of a floating license held by this installation until `expires_at`.

    `certificate` is the signed lease certificate (claims as an activation's plus `lease_id`,
    `borrowed`, and `exp` = `expires_at`). `token` (not shown in `repr` or `to_dict`) is the
    lease's credential for heartbeats and check-in.
    """

    lease_id: str
    license_id: str
    installation_id: str
    machine_name: str | None
    certificate: str
    issued_at: datetime
    expires_at: datetime
    borrowed: bool = False
    server: str | None = None
    token: str = field(default="", repr=False, compare=False)

    @property
    def period(self) -> timedelta:
        """One lease period (what a heartbeat extends it by): the certificate's exp - iat."""
        return max(self.expires_at - self.issued_at, timedelta(seconds=1))

    @property
    def heartbeat_interval(self) -> timedelta:
        return self.period / 3

    def live(self, now: datetime) -> bool:
        return now < self.expires_at

    def to_dict(self) -> dict[str, Any]:
        """For JSON output: everything but the token."""
        return {
            "lease_id": self.lease_id,
            "license_id": self.license_id,
            "installation_id": self.installation_id,
            "machine_name": self.machine_name,
            "expires_at": iso(self.expires_at),
            "issued_at": iso(self.issued_at),
            "borrowed": self.borrowed,
            "server": self.server,
            "certificate": self.certificate,
        }


@dataclass(frozen=True)
class LeaseStatus:
    """Where this installation's lease stands (`client.lease_status()`, and what `on_lost`
    gets). `state` is `none`, `live`, `retrying`, `borrowed` or `lost`; `reason` says it in
    words; `error` is the last error (for `lost`, why checking out again failed: a
    `NoSeatsAvailable` names the machines holding the seats)."""

    state: str
    reason: str
    lease: Lease | None = None
    error: LicenseError | None = None
    last_heartbeat_at: datetime | None = None
    next_heartbeat_at: datetime | None = None

    @property
    def held(self) -> bool:
        """Whether the product may use the seat now."""
        return self.state in (LIVE, RETRYING, BORROWED)

    @property
    def lost(self) -> bool:
        return self.state == LOST

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "lease": self.lease.to_dict() if self.lease else None,
            "error": self.error.to_dict() if self.error else None,
            "last_heartbeat_at": iso(self.last_heartbeat_at),
            "next_heartbeat_at": iso(self.next_heartbeat_at),
        }


class _Keeper:
    """One check-out's heartbeat: the lease it keeps and what it knows of it."""

    def __init__(
        self,
        lease: Lease,
        password: str,
        machine_name: str,
        on_lost: Callable[[LeaseStatus], Any] | None,
        now: datetime,
        received: float,
    ) -> None:
        self.lease = lease
        self.password = password
        self.machine_name = machine_name
        self.on_lost = on_lost
        self.state = LIVE
        self.reason = f"Checked out until {iso(lease.expires_at)}."
        self.error: LicenseError | None = None
        self.attempt = 0
        self.last_heartbeat_at: datetime | None = None
        # on the monotonic clock: when the lease ends, and when the next heartbeat is due
        self.deadline = received + lease.period.total_seconds()
        self.due = received + lease.heartbeat_interval.total_seconds()
        self.next_at: datetime | None = now + lease.heartbeat_interval
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def status(self) -> LeaseStatus:
        return LeaseStatus(
            state=self.state,
            reason=self.reason,
            lease=self.lease,
            error=self.error,
            last_heartbeat_at=self.last_heartbeat_at,
            next_heartbeat_at=self.next_at,
        )

    def renewed(self, lease: Lease, now: datetime, received: float, reason: str) -> None:
        """A fresh lease from the server, answered at `received` (monotonic)."""
        self.lease = lease
        self.state, self.error, self.attempt, self.reason = LIVE, None, 0, reason
        self.last_heartbeat_at = now
        self.deadline = received + lease.period.total_seconds()
        self.due = received + lease.heartbeat_interval.total_seconds()
        self.next_at = now + lease.heartbeat_interval


class Leases:
    """This installation's lease of a floating license (`LicenseClient` delegates here).

    Collaborators come from the client: its data folder, clock and lock, `api(document)` (an
    `Api` for the stored or configured server), `verify(token, api)` (a certificate from the
    server, verified against the trusted keys and this installation), `wait(seconds)`
    between heartbeats (default: an interruptible wait; tests pass one that records), and
    `monotonic()` (seconds, for how long the lease lasts here; tests pass one they move).
    """

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        lock: threading.RLock,
        api: Callable[[dict[str, Any] | None], Api],
        verify: Callable[[Any, Api], jws.Certificate],
        installation_id: Callable[[], str],
        product: str | None = None,
        remember_password: bool = True,
        backoff: float = 0.5,
        wait: Callable[[float], Any] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clock = clock
        self.lock = lock
        self._api = api
        self._verify = verify
        self._installation_id = installation_id
        self.product = product
        self.remember_password = remember_password
        self.backoff = backoff
        self._wait = wait
        self._monotonic = monotonic
        self._keeper: _Keeper | None = None
        self._exit_registered = False
        self._previous_sigterm: Any = None
        # what SIGTERM did before our first handler; the end of the chain if it loops back
        self._first_sigterm: Any = None
        self._sigterm_depth = 0

    # -- what the client calls ----------------------------------------------------------------

    def checkout(
        self,
        license_id: str | None = None,
        password: str | None = None,
        machine_name: str | None = None,
        borrow_until: datetime | None = None,
        on_lost: Callable[[LeaseStatus], Any] | None = None,
        heartbeat: bool = True,
    ) -> Lease:
        """Take a seat (or return the one held); see `LicenseClient.checkout`."""
        now = self.clock()
        with self.lock:
            keeper = self._keeper
            if (
                keeper is not None
                and keeper.state in (LIVE, RETRYING)
                and borrow_until is None
                and license_id in (None, keeper.lease.license_id)
            ):
                return keeper.lease
            document = self._document()
            same = license_id in (None, document.get("license_id"))
            stored = held_lease(document) if same else None
            if (
                borrow_until is None
                and stored is not None
                and stored.borrowed
                and stored.live(now)
                and not ended(document)
            ):
                # a borrowed seat needs no server: this is how a laptop runs offline
                return stored
            license_id = license_id or _str(document.get("license_id"))
            if not license_id:
                raise LicenseError(
                    "No license to check out: give the license ID (and its password).",
                    code="license_id_required",
                )
            password = password or (_str(document.get("password")) if same else None)
            if not password:
                raise LicenseError(
                    "No password is stored for this license: give it to check out.",
                    code="password_required",
                )
            machine_name = (
                machine_name
                or (_str(document.get("machine_name")) if same else None)
                or socket.gethostname()
                or "unknown"
            )
        api = self._api(document if same and document.get("server") else None)
        # the new token and its storing are one step for the other processes of this machine
        with self.store.locked(LEASE_FILE):
            lease = self._request_lease(api, license_id, password, machine_name, borrow_until)
            received = self._monotonic()
            with self.lock:
                self._stop_keeper()
                try:
                    self._save(lease, license_id, password, machine_name)
                except StorageError:
                    # nobody could validate or return a lease that is not stored: give it back
                    self._return(lease, retries=0)
                    raise
                if lease.borrowed:
                    return lease
                keeper = _Keeper(lease, password, machine_name, on_lost, now, received)
                self._keeper = keeper
                if heartbeat:
                    self._start(keeper)
        self._guard_exit()
        return lease

    def borrow(
        self,
        days: float,
        license_id: str | None = None,
        password: str | None = None,
        machine_name: str | None = None,
    ) -> Lease:
        """A lease until now + `days` that needs no heartbeat; see `LicenseClient.borrow`."""
        if not days > 0:
            raise ValueError("a seat is borrowed for more than 0 days")
        until = self.clock() + timedelta(days=days)
        return self.checkout(license_id, password, machine_name, borrow_until=until)

    def checkin(self, quiet: bool = False) -> Lease | None:
        """Stop the heartbeat and give the seat back; the lease given back (None when
        `quiet` and nothing was held or the server could not be told)."""
        with self.lock:
            keeper = self._keeper
            self._stop_keeper()
            document = self._document()
            lease = keeper.lease if keeper is not None else held_lease(document)
        self._restore_sigterm()
        if lease is None:
            if quiet:
                return None
            raise NotCheckedOut("This installation holds no lease to check in.")
        try:
            self._return(lease, retries=0 if quiet else None)
        except LicenseError:
            if quiet:  # at exit: the seat frees itself at the lease's end
                log.warning("could not check in lease %s", lease.lease_id, exc_info=True)
                return None
            raise  # the stored lease stays: `checkin` again later
        with self.store.locked(LEASE_FILE), self.lock:
            document = self._document()
            if (held_lease(document) or lease).lease_id == lease.lease_id:
                document["lease"] = None
                self.store.write_json(LEASE_FILE, document)
        return lease

    def heartbeat(self) -> LeaseStatus:
        """One heartbeat now (or a new check-out when the lease ended); the status after it."""
        keeper = self._keeper
        if keeper is not None and keeper.state in (LIVE, RETRYING):
            self._step(keeper)
        return self.status()

    def status(self) -> LeaseStatus:
        with self.lock:
            keeper = self._keeper
            if keeper is not None:
                return keeper.status()
            document = self._document()
        lease = held_lease(document)
        if lease is None:
            return LeaseStatus(NONE, "No lease is held.")
        ending = ended(document)
        if ending:
            return LeaseStatus(NONE, ending.get("reason") or "The lease has ended.", lease)
        if not lease.live(self.clock()):
            return LeaseStatus(NONE, f"The lease ended on {iso(lease.expires_at)}.", lease)
        if lease.borrowed:
            return LeaseStatus(BORROWED, f"Borrowed until {iso(lease.expires_at)}.", lease)
        return LeaseStatus(
            NONE,
            f"A lease until {iso(lease.expires_at)} is stored, but no heartbeat keeps it here.",
            lease,
        )

    def at_exit(self) -> None:
        """atexit and SIGTERM: check in a heartbeat lease (never a borrowed one); never raises."""
        keeper = self._keeper
        if keeper is None or keeper.lease.borrowed:
            return
        try:
            self.checkin(quiet=True)
        except Exception:  # at exit nothing may escape
            log.warning("check-in at exit failed", exc_info=True)

    # -- the heartbeat ------------------------------------------------------------------------

    def _start(self, keeper: _Keeper) -> None:
        keeper.thread = threading.Thread(
            target=self._run, args=(keeper,), name="license-client-heartbeat", daemon=True
        )
        keeper.thread.start()

    def _guard_exit(self) -> None:
        """Check in at exit and on SIGTERM: every lease held here, with a thread or not."""
        if not self._exit_registered:
            atexit.register(self.at_exit)
            self._exit_registered = True
        self._install_sigterm()

    def _run(self, keeper: _Keeper) -> None:
        wait = self._wait or keeper.stop.wait
        while True:
            with self.lock:
                if keeper is not self._keeper or keeper.stop.is_set() or keeper.next_at is None:
                    return
                delay = max(0.0, keeper.due - self._monotonic())
            wait(delay)
            if keeper.stop.is_set():
                return
            try:
                self._step(keeper)
            except Exception as error:  # a bug must not end the thread silently
                log.exception("the lease heartbeat failed")
                self._lose(keeper, LicenseError(f"The lease heartbeat failed: {error!r}"))

    def _step(self, keeper: _Keeper, adopted: bool = False) -> None:
        now = self.clock()
        lease = keeper.lease
        if self._monotonic() >= keeper.deadline:  # the machine slept, or the gap outlasted it
            self._renew(keeper, f"The lease lapsed at {iso(lease.expires_at)}")
            return
        try:
            api = self._api({"server": lease.server} if lease.server else None)
            answer = api.call(
                "POST",
                f"/api/v1/leases/{quote(lease.lease_id, safe='')}/heartbeat",
                token=lease.token,
            )
            received = self._monotonic()
            fresh = self._lease_from(api, answer, lease.token, lease.license_id, lease.lease_id)
        except InvalidLeaseToken as error:
            if not adopted and self._adopt(keeper):
                self._step(keeper, adopted=True)  # the same lease, with the other's token
            else:  # checking out again would take the lease from whoever has it now
                reason = (
                    "The server no longer knows this lease's token, and no other process of "
                    "this installation stored a newer one"
                )
                self._lose(keeper, error, reason, code="LEASE_EXPIRED")
            return
        except LeaseExpired as error:
            if error.reason in ENDED_ON_PURPOSE:  # the seat was freed on purpose: leave it
                reason = f"{_gone(error)}; it is not checked out again"
                self._lose(keeper, error, reason, code="LEASE_EXPIRED")
            else:
                self._renew(keeper, _gone(error))
            return
        except RETRY_ERRORS as error:
            self._retry(keeper, error, now)
            return
        except LicenseError as error:  # suspended, license expired: waiting does not help
            self._lose(keeper, error)
            return
        with self.store.locked(LEASE_FILE), self.lock:
            if keeper is not self._keeper or keeper.stop.is_set():
                return  # checked in meanwhile
            reason = f"Renewed until {iso(fresh.expires_at)}."
            if adopted:
                reason = (
                    "Another process of this installation checked the lease out again; with "
                    f"its token, renewed until {iso(fresh.expires_at)}."
                )
            keeper.renewed(fresh, now, received, reason)
            self._save_quietly(fresh)

    def _adopt(self, keeper: _Keeper) -> bool:
        """After a 401: take the token another process of this installation stored for the
        same lease (its check-out gave the lease a new token); False if there is none."""
        with self.store.locked(LEASE_FILE), self.lock:
            if keeper is not self._keeper or keeper.stop.is_set():
                return False
            try:
                stored = held_lease(self._document())
            except StorageError:
                log.warning("could not read the stored lease", exc_info=True)
                return False
            lease = keeper.lease
            if (
                stored is None
                or stored.lease_id != lease.lease_id
                or not stored.token
                or stored.token == lease.token
            ):
                return False
            keeper.lease = replace(lease, token=stored.token)
            return True

    def _retry(self, keeper: _Keeper, error: LicenseError, now: datetime) -> None:
        with self.lock:
            if keeper is not self._keeper or keeper.stop.is_set():
                return
            keeper.attempt += 1
            lease = keeper.lease
            ceiling = min(
                MAX_RETRY_DELAY,
                lease.heartbeat_interval.total_seconds(),
                self.backoff * 2**keeper.attempt,
            )
            # jitter: the clients of an office that lost the server do not return in lockstep
            delay = ceiling / 2 + random.uniform(0, ceiling / 2)
            retry_after = getattr(error, "retry_after", None)
            if retry_after:
                delay = max(delay, retry_after)
            # the lease's end is the deadline: then it is a new check-out or lost
            clock = self._monotonic()
            delay = max(0.0, min(delay, keeper.deadline - clock))
            keeper.due = clock + delay
            keeper.next_at = now + timedelta(seconds=delay)
            keeper.state, keeper.error = RETRYING, error
            keeper.reason = (
                f"The license server cannot be reached ({error.message}); retrying while the "
                f"lease lasts, until {iso(lease.expires_at)}."
            )

    def _renew(self, keeper: _Keeper, cause: str) -> None:
        """Check out again after the lease ended; lost if that fails."""
        lease = keeper.lease
        # the new token and its storing are one step for the other processes of this machine
        with self.store.locked(LEASE_FILE):
            try:
                api = self._api({"server": lease.server} if lease.server else None)
                fresh = self._request_lease(
                    api, lease.license_id, keeper.password, keeper.machine_name, None
                )
            except LicenseError as error:
                failure: LicenseError | None = error
            else:
                failure = None
                received, now = self._monotonic(), self.clock()
                with self.lock:
                    stale = keeper is not self._keeper or keeper.stop.is_set()
                    if not stale:
                        reason = f"{cause}; checked out again until {iso(fresh.expires_at)}."
                        keeper.renewed(fresh, now, received, reason)
                        self._save_quietly(fresh, rotated=True)
        if failure is not None:  # reported outside the lock: on_lost may take its time
            reason = f"{cause}; checking out again failed: {failure.message}"
            self._lose(keeper, failure, reason, code="LEASE_EXPIRED")
            return
        if stale:  # checked in while this check-out was on its way: give the seat back
            try:
                self._return(fresh, retries=0)
            except LicenseError:
                log.warning("could not return lease %s", fresh.lease_id, exc_info=True)

    def _lose(
        self,
        keeper: _Keeper,
        error: LicenseError,
        reason: str | None = None,
        code: str | None = None,
    ) -> None:
        """The lease is over for this process: say why (`reason`, default the error's), and
        leave `code` (default by the error) for offline validation in `lease.json`."""
        with self.store.locked(LEASE_FILE), self.lock:
            if keeper is not self._keeper or keeper.stop.is_set() or keeper.state == LOST:
                return
            reason = reason or error.message
            keeper.state, keeper.error, keeper.reason, keeper.next_at = LOST, error, reason, None
            code = code or ENDED_CODES.get(type(error))
            document = self._document()
            stored = document.get("lease")
            if (
                code
                and isinstance(stored, dict)
                and stored.get("lease_id") == keeper.lease.lease_id
                and stored.get("lease_token") in (None, keeper.lease.token)
            ):
                # offline validation must not bring back a lease the server ended
                stored["ended"] = {"code": code, "reason": reason, "at": iso(self.clock())}
                try:
                    self.store.write_json(LEASE_FILE, document)
                except StorageError:
                    log.warning("could not record the lost lease", exc_info=True)
            status = keeper.status()
            callback = keeper.on_lost
        log.warning("lease lost: %s", reason)
        if callback is not None:
            try:
                callback(status)
            except Exception:  # the product's callback must not end the heartbeat's thread badly
                log.exception("the on_lost callback failed")

    # -- the server ---------------------------------------------------------------------------

    def _request_lease(
        self,
        api: Api,
        license_id: str,
        password: str,
        machine_name: str,
        borrow_until: datetime | None,
    ) -> Lease:
        payload: dict[str, Any] = {
            "license_id": license_id,
            "password": password,
            "installation_id": self._installation_id(),
            "machine_name": machine_name,
        }
        if borrow_until is not None:
            payload["borrow_until"] = iso(borrow_until)
        if self.product:
            # the server refuses another product's license before a seat is taken
            payload["product"] = self.product
        answer = api.call("POST", "/api/v1/leases", payload)
        token = answer.get("lease_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise ProtocolError("The check-out answer has no lease token.")
        lease = self._lease_from(api, answer, token, license_id)
        certificate = jws.parse(lease.certificate)[1]
        product = certificate.get("product")
        product = product.get("code") if isinstance(product, dict) else product
        if self.product and not jws.same_product(product, self.product):
            # a server that did not check the product: give the seat back at once
            self._return(lease, retries=0)
            raise WrongProduct(
                f"License {license_id} is for product {product!r}, not {self.product!r}; its "
                "seat was given back.",
                details={"license_id": license_id, "product": product, "requested": self.product},
            )
        return lease

    def _lease_from(
        self,
        api: Api,
        answer: Any,
        token: str,
        license_id: str,
        lease_id: str | None = None,
    ) -> Lease:
        """The lease of a check-out or heartbeat answer, from its verified certificate."""
        if not isinstance(answer, dict):
            raise ProtocolError("The lease answer is not a JSON object.")
        certificate = self._verify(answer.get("certificate"), api)
        claimed = _str(certificate.claims.get("lease_id"))
        if claimed is None or (lease_id is not None and claimed != lease_id):
            raise ProtocolError("The server's certificate is not this lease's.")
        expires = certificate.expires_at
        if expires is None:
            raise ProtocolError("The lease certificate has no expiry.")
        view = answer.get("lease") if isinstance(answer.get("lease"), dict) else {}
        return Lease(
            lease_id=claimed,
            license_id=certificate.license_id or license_id,
            installation_id=certificate.installation_id or self._installation_id(),
            machine_name=certificate.machine_name or _str(view.get("machine_name")),
            certificate=certificate.token,
            issued_at=certificate.issued_at or self.clock(),
            expires_at=expires,
            borrowed=certificate.claims.get("borrowed") is True,
            server=api.base_url,
            token=token,
        )

    def _return(self, lease: Lease, retries: int | None = None) -> None:
        """DELETE the lease; one it no longer is (ended, token replaced) counts as returned."""
        api = self._api({"server": lease.server} if lease.server else None)
        if retries is not None:
            api.retries = retries
        path = f"/api/v1/leases/{quote(lease.lease_id, safe='')}"
        with contextlib.suppress(GONE_ERRORS):
            api.call("DELETE", path, token=lease.token)

    # -- storage and signals ------------------------------------------------------------------

    def _document(self) -> dict[str, Any]:
        return self.store.read_json(LEASE_FILE) or {}

    def _save(self, lease: Lease, license_id: str, password: str, machine_name: str) -> None:
        document: dict[str, Any] = {
            "version": 1,
            "server": lease.server,
            "license_id": license_id,
            "machine_name": machine_name,
            "lease": _lease_record(lease, self.clock()),
        }
        if self.remember_password:
            document["password"] = password
        self.store.write_json(LEASE_FILE, document)

    def _save_quietly(self, lease: Lease, rotated: bool = False) -> None:
        """A renewed lease into lease.json (the thread keeps going if the folder is read-only).
        Called with the file's lock held. After a heartbeat (not `rotated`), a different token
        stored for the same lease is newer than ours (another process checked out since, and
        a check-out stores its token under the lock): it stays, and the keeper adopts it."""
        try:
            document = self._document()
        except StorageError:
            log.warning("could not read the stored lease", exc_info=True)
            return
        stored = held_lease(document)
        if (
            not rotated
            and stored is not None
            and stored.lease_id == lease.lease_id
            and stored.token
            and stored.token != lease.token
        ):
            lease = replace(lease, token=stored.token)
            keeper = self._keeper
            if keeper is not None and keeper.lease.lease_id == lease.lease_id:
                keeper.lease = lease
        document["lease"] = _lease_record(lease, self.clock())
        document.setdefault("version", 1)
        document.setdefault("license_id", lease.license_id)
        try:
            self.store.write_json(LEASE_FILE, document)
        except StorageError:
            log.warning("could not store the renewed lease", exc_info=True)

    def _stop_keeper(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.stop.set()

    def _install_sigterm(self) -> None:
        """Check in on SIGTERM too, then do what the program did before (its own handler, or
        the default: end). Only the main thread may set a handler; an ignored SIGTERM stays
        ignored."""
        if threading.current_thread() is not threading.main_thread():
            return
        current = signal.getsignal(signal.SIGTERM)
        if current == self._on_sigterm or current == signal.SIG_IGN:
            return
        if self._first_sigterm is None:
            self._first_sigterm = current if current is not None else signal.SIG_DFL
        self._previous_sigterm = current
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _restore_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        # a handler set after ours (and chaining to it) stays
        if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            previous = self._previous_sigterm
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
            if previous == self._first_sigterm:
                self._first_sigterm = None  # all undone: the next check-out starts afresh

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self._sigterm_depth:
            # called back by a handler we chain to (the program set it after ours and chains
            # to us, and a later check-out made it our previous one): the loop ends here, with
            # what SIGTERM did before any of ours
            if self._sigterm_depth > 1:
                return
            previous = self._first_sigterm
        else:
            previous = self._previous_sigterm
        self._sigterm_depth += 1
        try:
            self.at_exit()
            self._restore_sigterm()
            if callable(previous):
                previous(signum, frame)
            else:  # SIG_DFL (or set outside Python): end the process as SIGTERM would have
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
        finally:
            self._sigterm_depth -= 1


def held_lease(document: dict[str, Any] | None) -> Lease | None:
    """The lease stored in `lease.json`'s document (certificate unverified: for routing and
    display; validation verifies it)."""
    record = (document or {}).get("lease")
    if not isinstance(record, dict):
        return None
    token = record.get("certificate")
    try:
        _, claims, _, _ = jws.parse(token)
    except jws.CertificateError:
        return None
    certificate = jws.Certificate(token, {}, claims)
    lease_id = _str(record.get("lease_id")) or _str(claims.get("lease_id"))
    expires = certificate.expires_at
    if lease_id is None or expires is None:
        return None
    return Lease(
        lease_id=lease_id,
        license_id=certificate.license_id or _str((document or {}).get("license_id")) or "",
        installation_id=certificate.installation_id or "",
        machine_name=certificate.machine_name,
        certificate=token,
        issued_at=certificate.issued_at or expires,
        expires_at=expires,
        borrowed=claims.get("borrowed") is True,
        server=_str((document or {}).get("server")),
        token=_str(record.get("lease_token")) or "",
    )


def ended(document: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the server said when it ended the stored lease (`code`, `reason`, `at`), if so."""
    record = (document or {}).get("lease")
    value = record.get("ended") if isinstance(record, dict) else None
    return value if isinstance(value, dict) else None


def is_lease(certificate: jws.Certificate) -> bool:
    """Whether a certificate is a floating license's lease (its signed `lease_id` claim)."""
    return isinstance(certificate.claims.get("lease_id"), str)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    utc = moment.astimezone(timezone.utc).replace(microsecond=0)
    return utc.isoformat().replace("+00:00", "Z")


def _lease_record(lease: Lease, now: datetime) -> dict[str, Any]:
    return {
        "lease_id": lease.lease_id,
        "certificate": lease.certificate,
        "lease_token": lease.token,
        "borrowed": lease.borrowed,
        "expires_at": iso(lease.expires_at),
        "stored_at": iso(now),
    }


def _gone(error: LeaseExpired) -> str:
    reason = error.reason
    return {
        "revoked": "The lease was revoked in the portal",
        "checked_in": "The lease was checked in",
        "expired": "The lease lapsed",
    }.get(reason or "", "The lease ended")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
