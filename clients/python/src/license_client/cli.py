"""`license-client`: activate, deactivate and check this machine's license from a shell.

    license-client --server URL activate LICENSE_ID [--password P] [--machine-name NAME]
    license-client status [--offline]
    license-client deactivate
    license-client id

    license-client offline-request --license-id L --product P [--machine-name N] --out FILE
    license-client offline-install FILE [--product P] [--jwks FILE]
    license-client deactivate --offline --out FILE

    license-client checkout [LICENSE_ID] [--password P]   # a floating license's seat, held
    license-client borrow --days N [LICENSE_ID]           # a seat to take along, offline
    license-client checkin

`checkout` holds the seat in the foreground (heartbeats) until Ctrl-C or SIGTERM, then checks
it in; `borrow` keeps a seat without heartbeats until then (valid offline, in any process)
and `checkin` returns it early. The license ID and password are remembered after the first.

The three offline commands never use the network: pass the JWKS shipped with the product with
`--jwks FILE` (or rely on keys cached at an earlier online contact).

Options go before or after the command: `--server URL` (else `$LICENSE_SERVER_URL`, else the
server the activation was made with), `--product CODE` (`$LICENSE_CLIENT_PRODUCT`),
`--data-dir DIR` (`$LICENSE_CLIENT_DATA_DIR`), `--installation-id ID`, `--jwks FILE` (pinned
keys), `--timeout S`, `--retries N`, `--json` (exactly one JSON document on stdout).

Exit codes: 0 done / license valid; 1 license not valid; 2 usage error; 3 not activated;
4 refused by the server (credentials, seats, expired, suspended, throttled, bad input);
5 server unreachable or unavailable; 6 local data folder (or the --out file) unusable;
7 offline file refused (malformed or cut short, answers another request, or its certificate
does not verify).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import getpass
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .client import LicenseClient
from .errors import (
    BorrowNotAllowed,
    LicenseError,
    NotActivated,
    NotCheckedOut,
    OfflineFileError,
    ProtocolError,
    ServiceUnavailable,
    StorageError,
    TooManyAttempts,
)
from .leases import Lease
from .offline import MAX_FILE_BYTES
from .results import NOT_ACTIVATED, Status
from .storage import atomic_write

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_NOT_ACTIVATED = 3
EXIT_REFUSED = 4
EXIT_UNREACHABLE = 5
EXIT_STORAGE = 6
EXIT_FILE_REFUSED = 7

SERVER_ENV = "LICENSE_SERVER_URL"
PRODUCT_ENV = "LICENSE_CLIENT_PRODUCT"
PASSWORD_ENV = "LICENSE_CLIENT_PASSWORD"  # noqa: S105 - a variable name, not a secret


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(passwords_in(argv))
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        client = LicenseClient(
            base_url=args.server or os.environ.get(SERVER_ENV) or None,
            product=args.product or os.environ.get(PRODUCT_ENV) or None,
            data_dir=args.data_dir,
            jwks=Path(args.jwks) if args.jwks else None,
            timeout=args.timeout,
            retries=args.retries,
            installation_id=args.installation_id,
        )
        return COMMANDS[args.command](client, args)
    except LicenseError as error:
        return fail(args, error)
    except (ValueError, OSError) as error:
        return fail(args, LicenseError(str(error), code="usage_error"), EXIT_USAGE)
    except KeyboardInterrupt:
        return 130


def cmd_activate(client: LicenseClient, args: argparse.Namespace) -> int:
    password = args.password or os.environ.get(PASSWORD_ENV) or read_password(args.license_id)
    validation = client.activate(args.license_id, password, machine_name=args.machine_name)
    if not args.json:
        print(f"Activated license {args.license_id} on this machine.")
    # the server just issued the certificate: the activation's own (online) verdict
    return show_status(
        dataclasses.replace(client.status(online=False), validation=validation), args
    )


def cmd_deactivate(client: LicenseClient, args: argparse.Namespace) -> int:
    if args.offline:
        return deactivate_offline(client, args)
    if args.out:
        raise usage_error("--out is for `deactivate --offline` (the proof file).")
    status = client.status(online=False)
    client.deactivate(password=args.password or os.environ.get(PASSWORD_ENV) or None)
    if args.json:
        emit(
            {
                "deactivated": True,
                "license_id": status.license_id,
                "installation_id": status.installation_id,
            }
        )
    else:
        print(f"Deactivated license {status.license_id} on this machine; its seat is free.")
    return EXIT_OK


def deactivate_offline(client: LicenseClient, args: argparse.Namespace) -> int:
    if not args.out:
        raise usage_error("`deactivate --offline` needs --out FILE: where to write the proof.")
    status = client.status(online=False)
    # the proof is written out before the certificate is deleted: a failed write loses nothing
    client.deactivate_offline(out=args.out)
    license_id = status.license_id or _kept_license(client)
    if args.json:
        emit(
            {
                "deactivated": True,
                "offline": True,
                "license_id": license_id,
                "installation_id": client.installation_id,
                "proof_file": args.out,
            }
        )
    else:
        print(
            f"Deleted this machine's certificate of license {license_id} and wrote the "
            f"deactivation proof to {args.out}.\n"
            "Upload the proof on the license's page in the portal (Offline deactivation) to "
            "free the seat."
        )
    return EXIT_OK


def cmd_offline_request(client: LicenseClient, args: argparse.Namespace) -> int:
    text = client.offline_request(args.license_id, machine_name=args.machine_name)
    write_file(args.out, text)
    request = json.loads(text)
    if args.json:
        emit(
            {
                "request_file": args.out,
                "license_id": request["license_id"],
                "installation_id": request["installation_id"],
                "machine_name": request["machine_name"],
                "product": request["product"],
                "requested_at": request["requested_at"],
            }
        )
    else:
        print(
            f"Wrote the activation request for license {request['license_id']} to {args.out}.\n"
            "Take it to the portal (the license's page, Offline activation), then install the "
            "response file here with: license-client offline-install FILE"
        )
    return EXIT_OK


def cmd_offline_install(client: LicenseClient, args: argparse.Namespace) -> int:
    text = read_file(args.file)
    validation = client.install_offline_response(text)
    if not args.json:
        print(f"Installed the offline activation of license {validation.license_id}.")
    return show_status(client.status(online=False), args)


def cmd_status(client: LicenseClient, args: argparse.Namespace) -> int:
    return show_status(client.status(online=not args.offline), args)


def cmd_id(client: LicenseClient, args: argparse.Namespace) -> int:
    if args.json:
        emit({"installation_id": client.installation_id, "data_dir": str(client.data_dir)})
    else:
        print(client.installation_id)
    return EXIT_OK


def cmd_checkout(client: LicenseClient, args: argparse.Namespace) -> int:
    """Hold a seat in the foreground: what someone trying a floating license needs to see."""
    lost = threading.Event()

    def leave(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM ends the hold like Ctrl-C: check in, exit 0

    main = threading.current_thread() is threading.main_thread()
    # set before the check-out: the kit's own handler (check in) then chains to this one
    previous = signal.signal(signal.SIGTERM, leave) if main else None
    try:
        lease = checking_out(
            args,
            lambda password: client.checkout(
                args.license_id,
                password,
                machine_name=args.machine_name,
                on_lost=lambda status: lost.set(),
            ),
        )
        if lease.borrowed:  # a borrowed seat needs no heartbeat: nothing to hold
            if args.json:
                emit(lease.to_dict())
            else:
                print(
                    f"This machine has borrowed a seat of license {lease.license_id} until "
                    f"{_when(lease.expires_at)} (lease {lease.lease_id}); nothing to hold."
                )
            return EXIT_OK
        try:  # from here on, Ctrl-C means: check the seat in
            if args.json:
                emit(lease.to_dict())
            else:
                every = int(lease.heartbeat_interval.total_seconds())
                print(
                    f"Checked out a seat of license {lease.license_id} on "
                    f"{lease.machine_name or 'this machine'}: lease {lease.lease_id}, until "
                    f"{_when(lease.expires_at)}, renewed every {every} s.\n"
                    "Holding the seat; press Ctrl-C (or send SIGTERM) to check it in."
                )
            sys.stdout.flush()
            while not lost.wait(1.0):
                pass
        except KeyboardInterrupt:
            return checkin_after_hold(client, lease, args)
        status = client.lease_status()
        print(f"license-client: the seat is lost: {status.reason}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)


def checkin_after_hold(client: LicenseClient, lease: Lease, args: argparse.Namespace) -> int:
    with contextlib.suppress(NotCheckedOut):  # SIGTERM: the kit's handler checked it in
        client.checkin()
    message = f"Checked in lease {lease.lease_id} of license {lease.license_id}; the seat is free."
    print(message, file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK


def cmd_borrow(client: LicenseClient, args: argparse.Namespace) -> int:
    if args.days <= 0:
        raise usage_error("--days must be 1 or more.")
    lease = checking_out(
        args,
        lambda password: client.borrow(
            args.days, args.license_id, password, machine_name=args.machine_name
        ),
    )
    if args.json:
        emit(lease.to_dict())
    else:
        print(
            f"Borrowed a seat of license {lease.license_id} until {_when(lease.expires_at)} "
            f"(lease {lease.lease_id}).\nThis machine may run the product offline until then; "
            "return the seat early with: license-client checkin"
        )
    return EXIT_OK


def cmd_checkin(client: LicenseClient, args: argparse.Namespace) -> int:
    lease = client.checkin()
    if args.json:
        emit({"checked_in": True, "lease_id": lease.lease_id, "license_id": lease.license_id})
    else:
        print(f"Checked in lease {lease.lease_id} of license {lease.license_id}; its seat is free.")
    return EXIT_OK


def checking_out(args: argparse.Namespace, call: Callable[[str | None], Lease]) -> Lease:
    """`call(password)` with the given password, else the remembered one, else asked for."""
    password = args.password or os.environ.get(PASSWORD_ENV) or None
    try:
        return call(password)
    except LicenseError as error:
        if error.code != "password_required" or password:
            raise
    return call(read_password(args.license_id or "the license"))


COMMANDS = {
    "activate": cmd_activate,
    "deactivate": cmd_deactivate,
    "offline-request": cmd_offline_request,
    "offline-install": cmd_offline_install,
    "status": cmd_status,
    "id": cmd_id,
    "checkout": cmd_checkout,
    "borrow": cmd_borrow,
    "checkin": cmd_checkin,
}


def show_status(status: Status, args: argparse.Namespace) -> int:
    validation = status.validation
    if validation.code == NOT_ACTIVATED:
        code = EXIT_NOT_ACTIVATED
    else:
        code = EXIT_OK if validation.valid else EXIT_INVALID
    if args.json:
        emit(status.to_dict())
        return code
    where = "online" if validation.online else "offline"
    lease = status.lease
    if lease and not status.activated:
        print(
            f"Lease {lease['lease_id']} of license {status.license_id} "
            f"({status.product or 'product ?'}): {validation.code}, checked {where}."
        )
    elif not status.activated:
        print("Not activated on this machine.")
    else:
        print(
            f"License {status.license_id} ({status.product or 'product ?'}): "
            f"{validation.code}, checked {where}."
        )
    print(f"  {validation.reason}")
    rows = [
        ("installation", status.installation_id),
        ("machine", status.machine_name),
        ("customer", status.customer_id),
        ("expires", _when(status.expires_at) if status.activated or lease else None),
        (
            "borrowed",
            "yes (no heartbeat needed until then)" if lease and lease["borrowed"] else None,
        ),
        ("features", ", ".join(status.features) or "none" if status.activated or lease else None),
        ("activated", _activated(status)),
        ("last online", _when(status.last_online_check)),
        ("grace until", _when(status.grace_until)),
        ("server", status.server),
        ("data folder", status.data_dir),
    ]
    for label, value in rows:
        if value:
            print(f"  {label:<13} {value}")
    return code


def _activated(status: Status) -> str | None:
    when = _when(status.activated_at)
    if when and status.source:
        return f"{when} ({status.source})"
    return when


def _kept_license(client: LicenseClient) -> str | None:
    kept = client.store.read_json("deactivation-proof.json") or {}
    value = kept.get("license_id")
    return value if isinstance(value, str) else None


def usage_error(message: str) -> LicenseError:
    return LicenseError(message, code="usage_error")


def read_file(name: str) -> bytes:
    """A file the user carried in; at most one byte over the limit is read, so a huge file
    is refused without reading it all."""
    try:
        with open(name, "rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise usage_error(f"Cannot read {name}: {exc.strerror or exc}.") from exc


def write_file(name: str, text: str) -> None:
    try:
        # readable by others: a request holds no secret, and it is copied to a USB stick
        atomic_write(Path(name), text.encode("utf-8"), mode=0o644)
    except OSError as exc:
        raise StorageError(
            f"Cannot write {name}: {exc.strerror or exc}.", code="cannot_write_file"
        ) from exc


def fail(args: argparse.Namespace, error: LicenseError, code: int | None = None) -> int:
    code = code if code is not None else exit_code(error)
    if getattr(args, "json", False):
        emit({"error": error.to_dict()})
    message = error.message
    if isinstance(error, BorrowNotAllowed) and error.max_borrow_days is not None:
        if error.max_borrow_days == 0:
            message += " This license does not lend seats."
        else:
            latest = f" (until {_when(error.latest)})" if error.latest else ""
            message += f" At most {error.max_borrow_days} days{latest}."
    if isinstance(error, TooManyAttempts) and error.retry_after:
        message += f" Retry in {int(error.retry_after)} s."
    print(f"license-client: {message}", file=sys.stderr)
    return code


def exit_code(error: LicenseError) -> int:
    if isinstance(error, NotActivated):
        return EXIT_NOT_ACTIVATED
    if isinstance(error, OfflineFileError):
        return EXIT_FILE_REFUSED
    if isinstance(error, (ServiceUnavailable, ProtocolError)):
        return EXIT_UNREACHABLE
    if isinstance(error, StorageError):
        return EXIT_STORAGE
    if error.code in (
        "no_server",
        "password_required",
        "bad_url",
        "usage_error",
        "product_required",
        "bad_license_id",
        "no_signing_keys",
        "not_offline_activation",
        "license_id_required",
    ):
        return EXIT_USAGE
    return EXIT_REFUSED


def read_password(license_id: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f"Activation password for {license_id}: ")
    line = sys.stdin.readline() if sys.stdin is not None else ""
    return line.rstrip("\r\n")


def emit(document: Any) -> None:
    print(json.dumps(document, indent=2, sort_keys=True))


def _when(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


REDACTED = "[redacted]"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error never echoes a password: argparse repeats the arguments it
    did not expect, and `--password X` in the wrong place would print X."""

    def __init__(self, *args: Any, secrets: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.secrets = sorted((s for s in secrets if s), key=len, reverse=True)

    def error(self, message: str) -> NoReturn:
        for secret in self.secrets:
            message = message.replace(secret, REDACTED)
        super().error(message)


def passwords_in(argv: Sequence[str]) -> list[str]:
    """The values given to `--password` (or an abbreviation argparse would accept, such as
    `--pass`), wherever they stand in `argv`."""
    found = []
    for index, token in enumerate(argv):
        name, equals, value = token.partition("=")
        if len(name) < 4 or not "--password".startswith(name):
            continue
        if equals:
            found.append(value)
        elif index + 1 < len(argv):
            found.append(argv[index + 1])
    return found


def build_parser(secrets: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The command line; `secrets` are never shown in a usage error."""
    common = argparse.ArgumentParser(add_help=False)
    _add_common(common, suppress=True)
    parser = Parser(
        secrets=secrets,
        prog="license-client",
        description="Activate, deactivate and check this machine's License Portal license.",
        epilog="Exit codes: 0 ok/valid, 1 not valid, 2 usage, 3 not activated, 4 refused by "
        "the server, 5 server unreachable, 6 data folder unusable, 7 offline file refused.",
    )
    parser.add_argument("--version", action="version", version=f"license-client {__version__}")
    _add_common(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    activate = commands.add_parser(
        "activate", parents=[common], help="activate this machine (uses a seat)", secrets=secrets
    )
    activate.add_argument("license_id", help="the license ID, e.g. LIC-7Q2M-9XKD")
    activate.add_argument(
        "--password",
        help=f"the license's activation password or the company password (else ${PASSWORD_ENV},"
        " else asked for, or read from standard input)",
    )
    activate.add_argument("--machine-name", help="the name shown in the portal (default: hostname)")

    deactivate = commands.add_parser(
        "deactivate", parents=[common], help="release this machine's seat", secrets=secrets
    )
    deactivate.add_argument("--password", help="if it changed since the activation")
    deactivate.add_argument(
        "--offline",
        action="store_true",
        help="no network: delete the offline certificate and write a deactivation proof",
    )
    deactivate.add_argument(
        "--out", metavar="FILE", help="with --offline: where to write the proof (required)"
    )

    request = commands.add_parser(
        "offline-request",
        parents=[common],
        help="write an activation request file for an offline machine (no network)",
        secrets=secrets,
    )
    request.add_argument("--license-id", required=True, help="the license ID, e.g. L-7KQX-M2PD")
    request.add_argument("--machine-name", help="the name shown in the portal (default: hostname)")
    request.add_argument("--out", required=True, metavar="FILE", help="the request file to write")

    install = commands.add_parser(
        "offline-install",
        parents=[common],
        help="install the portal's activation response file (no network)",
        secrets=secrets,
    )
    install.add_argument("file", metavar="FILE", help="the response file from the portal")

    status = commands.add_parser(
        "status",
        parents=[common],
        help="is the license valid here? (online, else offline)",
        secrets=secrets,
    )
    status.add_argument(
        "--offline", action="store_true", help="check the stored certificate only, no network"
    )

    commands.add_parser(
        "id", parents=[common], help="print this machine's installation ID", secrets=secrets
    )

    checkout = commands.add_parser(
        "checkout",
        parents=[common],
        help="floating license: hold a seat until Ctrl-C or SIGTERM, then check it in",
        secrets=secrets,
    )
    borrow = commands.add_parser(
        "borrow",
        parents=[common],
        help="floating license: borrow a seat for N days (valid offline, no heartbeat)",
        secrets=secrets,
    )
    borrow.add_argument(
        "--days",
        type=int,
        required=True,
        metavar="N",
        help="how long (at most the license's limit)",
    )
    for command in (checkout, borrow):
        command.add_argument(
            "license_id",
            nargs="?",
            help="the floating license's ID (default: the one checked out before)",
        )
        command.add_argument(
            "--password",
            help=f"the license's activation password or the company password (else "
            f"${PASSWORD_ENV}, else the one remembered, else asked for)",
        )
        command.add_argument(
            "--machine-name", help="the name shown in the portal (default: hostname)"
        )
    commands.add_parser(
        "checkin",
        parents=[common],
        help="floating license: give the seat back (a borrowed one too)",
        secrets=secrets,
    )
    return parser


def _add_common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--server",
        default=default(None),
        metavar="URL",
        help=f"the License Portal's URL (else ${SERVER_ENV}, else the one used to activate)",
    )
    parser.add_argument(
        "--product",
        default=default(None),
        metavar="CODE",
        help=f"the product code; the installation ID depends on it (else ${PRODUCT_ENV})",
    )
    parser.add_argument(
        "--data-dir",
        default=default(None),
        metavar="DIR",
        help="where the activation is stored (else $LICENSE_CLIENT_DATA_DIR, else the per-user"
        " data folder)",
    )
    parser.add_argument(
        "--installation-id",
        default=default(None),
        metavar="ID",
        help="use this installation ID (else $LICENSE_CLIENT_INSTALLATION_ID, else derived)",
    )
    parser.add_argument(
        "--jwks",
        default=default(None),
        metavar="FILE",
        help="pinned signing keys (a JWKS file) instead of the server's",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=default(10.0),
        metavar="S",
        help="seconds per HTTP request",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=default(3),
        metavar="N",
        help="retries after 503 or network errors",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print one JSON document",
    )
