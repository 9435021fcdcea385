"""`portalctl product create|list|show|archive|unarchive|feature add` and
`portalctl license issue|show|list|suspend|resume|extend|deactivate|features|activate-offline|
leases|revoke-lease`.

Identifiers are typed in any case: codes are sent lower case, customer and license IDs upper
case (common/identifiers.py), as the services store them. The staff guardrails (an expired
license, an extension that shortens, an end date for a perpetual license) are the
services'; `--force` passes them on purpose.

Also `seed_demo(rpc, company)`, which `portalctl demo` calls: two products, three licenses
(one expiring soon, one perpetual) with installations and history.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from common import identifiers
from common.errors import PortalError
from portalctl.base import Rpc, Subparsers, command, feature_codes
from portalctl.errors import UsageError
from portalctl.output import Table, emit

REASON_MAX = 500
# a request file is at most 16 KiB (licensing says what is wrong with a longer one); reading
# a little more lets licensing see that it is too long, not a cut-off copy
REQUEST_READ_MAX = 16 * 1024 + 1
FEATURE_COLUMNS = (("code", "Code"), ("name", "Name"))
LEASE_COLUMNS = (
    ("lease_id", "Lease ID"),
    ("machine_name", "Machine"),
    ("started_at", "Since"),
    ("expires_at", "Expires"),
    ("borrowed_until", "Borrowed until"),
)
# `license leases --all` shows how each ended, too
ENDED_COLUMNS = (("status", "Status"), ("ended_at", "Ended"))
MODELS = ("node_locked", "floating")

DEMO_PRODUCTS = (
    {"code": "cadpro", "name": "CAD Pro"},
    {"code": "femsolver", "name": "FEM Solver"},
)


def _date(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value}") from None


def lease_id(value: str) -> str:
    """`ls-7kqx-m2pd` → `LS-7KQX-M2PD`: lease IDs are typed in any case."""
    text = value.strip().upper()
    if not text:
        raise argparse.ArgumentTypeError("give a lease ID such as LS-7KQX-M2PD")
    return text


def _moment(value: str | None) -> str:
    """`2026-12-02T16:45:07.123+00:00` → `2026-12-02 16:45:07 UTC`; "" for none."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _reason(value: str) -> str:
    reason = value.strip()
    if not reason or len(reason) > REASON_MAX:
        raise argparse.ArgumentTypeError(f"give 1 to {REASON_MAX} characters")
    return reason


def create_product(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc("licensing", "create_product", {"code": args.code, "name": args.name})


def list_products(rpc: Rpc, args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.all:
        return rpc("licensing", "list_products", include_archived=True)
    return rpc("licensing", "list_products")


def show_product(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc("licensing", "get_product", args.code)


def archive_product(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc("licensing", "archive_product", args.code)


def unarchive_product(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc("licensing", "unarchive_product", args.code)


def add_feature(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    """The product with its features, the new one among them."""
    return rpc(
        "licensing", "add_product_feature", args.product, {"code": args.code, "name": args.name}
    )


def issue(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "customer_id": args.customer,
        "product": args.product,
        "seats": args.seats,
        "expires_at": args.expires,
    }
    if args.features:
        payload["features"] = args.features
    # only what was typed: licensing applies the defaults (node-locked; a floating
    # license's 900 s lease and 7 days of borrowing) and refuses numbers without floating
    terms = (
        ("model", args.model),
        ("lease_seconds", args.lease_seconds),
        ("max_borrow_days", args.max_borrow_days),
    )
    payload.update({key: value for key, value in terms if value is not None})
    if args.force:
        payload["force"] = True
    license = rpc("licensing", "issue_license", payload)
    return rpc("licensing", "get_license", license["license_id"])


def show(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    """The license; a floating one with its model, lease period, borrowing limit and live
    leases (licensing's `get_license` answers them), which the lines name in words."""
    license = rpc("licensing", "get_license", args.license_id)
    if args.json or license.get("model") != "floating":
        return license
    shown = dict(license)
    shown["lease_seconds"] = _period(license.get("lease_seconds"))
    days = license.get("max_borrow_days")
    shown["max_borrow_days"] = "not allowed" if days == 0 else f"{days} days"
    shown["leases"] = [_lease_line(lease) for lease in license.get("leases") or []]
    return shown


def _period(seconds: int | None) -> str:
    """`900` → `900 s (15 min)`: the lease period as set and as people read it."""
    if seconds is None:
        return ""
    if seconds % 3600 == 0:
        return f"{seconds} s ({seconds // 3600} h)"
    if seconds % 60 == 0:
        return f"{seconds} s ({seconds // 60} min)"
    return f"{seconds} s"


def _lease_line(lease: dict[str, Any]) -> str:
    """One live lease in a line: ID, machine, since, until (and borrowed)."""
    line = (
        f"{lease['lease_id']}  {lease['machine_name']}  since {_moment(lease['started_at'])}"
        f"  expires {_moment(lease['expires_at'])}"
    )
    if lease.get("borrowed_until"):
        line += f"  borrowed until {_moment(lease['borrowed_until'])}"
    return line


def leases(rpc: Rpc, args: argparse.Namespace) -> Table:
    """A floating license's live leases, oldest first (`--all`: ended ones too, with how
    and when they ended). With --json: licensing's `list_leases` answer."""
    if args.all:
        answer = rpc("licensing", "list_leases", args.license_id, include_ended=True)
    else:
        answer = rpc("licensing", "list_leases", args.license_id)
    columns = LEASE_COLUMNS + ENDED_COLUMNS if args.all else LEASE_COLUMNS
    moments = ("started_at", "expires_at", "borrowed_until", "ended_at")
    rows = [
        {
            key: _moment(lease.get(key)) if key in moments else str(lease.get(key) or "")
            for key, _ in columns
        }
        for lease in answer
    ]
    return Table(columns, rows, answer)


def revoke_lease(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    """The lease, revoked: its machine's next heartbeat gets 410 and must check out again."""
    return rpc("licensing", "revoke_lease", None, args.license_id, args.lease_id)


def list_licenses(rpc: Rpc, args: argparse.Namespace) -> list[dict[str, Any]]:
    return rpc("licensing", "list_licenses", args.customer)


def suspend(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    if args.reason is None:
        return rpc("licensing", "suspend_license", args.license_id)
    return rpc("licensing", "suspend_license", args.license_id, args.reason)


def resume(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc("licensing", "resume_license", args.license_id)


def extend(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    if args.force:
        return rpc("licensing", "extend_license", args.license_id, args.until, force=True)
    return rpc("licensing", "extend_license", args.license_id, args.until)


def deactivate(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any]:
    return rpc(
        "licensing", "deactivate_installation", None, args.license_id, args.installation_id, "staff"
    )


def features(rpc: Rpc, args: argparse.Namespace) -> Table:
    """A license's features; changed first with `--add` / `--remove` (a code in both is
    removed, as licensing has it). With --json: `{license_id, product, features}`."""
    if args.add or args.remove:
        change = {"add": args.add or [], "remove": args.remove or []}
        license = rpc("licensing", "change_license_features", args.license_id, change)
    else:
        # the features only: no reason to fetch (and audit a view of) the password
        license = rpc("licensing", "get_license", args.license_id, reveal_password=False)
    shown = {key: license.get(key) for key in ("license_id", "product", "features")}
    rows = [{"code": item["code"], "name": item["name"]} for item in license.get("features") or []]
    return Table(FEATURE_COLUMNS, rows, shown)


def read_request(path: Path) -> str:
    """The request file's text; a `UsageError` saying why it cannot be read."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(REQUEST_READ_MAX)
    except OSError as exc:
        raise UsageError(f"--request: cannot read {path}: {exc.strerror or exc}.") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"--request: {path} is not a text file; give the activation request file the "
            "machine wrote (license-client offline-request)."
        ) from None


def write_response(path: Path, text: str) -> None:
    """Write the response file whole or not at all: a half-written file on a USB stick
    would only fail later, on the offline machine."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"--out: cannot write in {directory}: {exc.strerror or exc}.") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise UsageError(f"--out: cannot write {path}: {exc.strerror or exc}.") from None


def activate_offline(rpc: Rpc, args: argparse.Namespace) -> dict[str, Any] | None:
    """Staff turn an air-gapped machine's request file into its response file.

    The response goes to `--out` (or stdout, exactly the file's text, for `> FILE`); what to
    do with it goes to stderr, so stdout stays the file or the one JSON document.
    """
    if args.out is not None and args.out.resolve() == args.request.resolve():
        raise UsageError("--out would overwrite the request file; give another file name.")
    text = read_request(args.request)
    result = rpc("licensing", "activate_offline", None, args.license_id, text)
    activation = result.get("activation") or {}
    machine = activation.get("machine_name") or activation.get("installation_id") or "?"
    seat = "a new seat" if result.get("created") else "already active there, no new seat"
    if args.out is not None:
        write_response(args.out, result["response"])
        where = f"The response file is {args.out}"
    else:
        where = "The response file went to standard output (save it as a file)"
    print(
        f"Activated {args.license_id} offline on {machine} ({seat}). {where}: carry it to "
        "that machine and install it there with `license-client offline-install FILE`; it "
        "works only on the machine that wrote the request.",
        file=sys.stderr,
    )
    shown = {"activation": activation, "created": result.get("created")}
    if args.json:
        if args.out is None:
            shown["response"] = result["response"]
        else:
            shown["out"] = str(args.out)
        emit(shown, True)
    elif args.out is None:
        sys.stdout.write(result["response"])
        if not result["response"].endswith("\n"):
            sys.stdout.write("\n")
    else:
        emit(activation, False)
    return None


def register(groups: Subparsers, common: argparse.ArgumentParser) -> None:
    group = groups.add_parser("product", help="products that licenses are issued for")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser = command(commands, common, "create", create_product, "create a product")
    parser.add_argument(
        "--code",
        required=True,
        type=identifiers.code,
        help="e.g. CAD-PRO: letters, digits, . _ - in any case (stored in lower case)",
    )
    parser.add_argument("--name", required=True, help="e.g. 'CAD Pro'")
    parser = command(commands, common, "list", list_products, "list the products on sale")
    parser.add_argument("--all", action="store_true", help="include archived products")
    parser = command(commands, common, "show", show_product, "show one product")
    parser.add_argument("code", type=identifiers.code)
    parser = command(
        commands,
        common,
        "archive",
        archive_product,
        "take a product off sale at once (its licenses and installations go on working)",
    )
    parser.add_argument("code", type=identifiers.code)
    parser = command(
        commands, common, "unarchive", unarchive_product, "put an archived product back on sale"
    )
    parser.add_argument("code", type=identifiers.code)
    feature = commands.add_parser(
        "feature", help="features (modules) of a product, which plans and licenses grant"
    )
    feature_commands = feature.add_subparsers(
        dest="feature_command", metavar="COMMAND", required=True
    )
    parser = command(feature_commands, common, "add", add_feature, "add a feature to a product")
    parser.add_argument("--product", required=True, type=identifiers.code, help="its code")
    parser.add_argument(
        "--code",
        required=True,
        type=identifiers.code,
        help="e.g. steel: letters, digits, . _ - in any case (stored in lower case)",
    )
    parser.add_argument("--name", required=True, help="e.g. 'Steel design'")

    group = groups.add_parser("license", help="licenses of companies")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser = command(commands, common, "issue", issue, "issue a license to a company")
    parser.add_argument(
        "--customer", required=True, type=identifiers.customer_id, help="e.g. C4829113"
    )
    parser.add_argument("--product", required=True, type=identifiers.code, help="its code")
    parser.add_argument("--seats", required=True, type=int)
    parser.add_argument(
        "--expires",
        type=_date,
        default=None,
        help="YYYY-MM-DD (valid through that day, UTC); without it the license is perpetual",
    )
    parser.add_argument(
        "--features",
        type=feature_codes,
        default=None,
        help="the product's feature codes it unlocks, comma separated (default: none)",
    )
    parser.add_argument(
        "--model",
        choices=MODELS,
        default=None,
        help="node_locked (default): a seat per activated machine; floating: a seat per"
        " machine running it now (leases)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=int,
        default=None,
        help="floating only: how long a lease lasts without a heartbeat, 60 to 86400 (default 900)",
    )
    parser.add_argument(
        "--max-borrow-days",
        type=int,
        default=None,
        help="floating only: the longest a machine may borrow a seat offline, 0 to 90"
        " (0: not allowed; default 7)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="issue it even if --expires is already past or the product is archived",
    )
    parser = command(
        commands,
        common,
        "show",
        show,
        "show a license, its password and machines (floating: its model and live leases)",
    )
    parser.add_argument("license_id", type=identifiers.license_id)
    parser = command(
        commands, common, "leases", leases, "list the live leases of a floating license"
    )
    parser.add_argument("license_id", type=identifiers.license_id)
    parser.add_argument("--all", action="store_true", help="include ended leases")
    parser = command(
        commands,
        common,
        "revoke-lease",
        revoke_lease,
        "revoke a lease of a floating license: its seat is free at once",
    )
    parser.add_argument("license_id", type=identifiers.license_id)
    parser.add_argument("lease_id", type=lease_id, help="e.g. LS-7KQX-M2PD")
    parser = command(commands, common, "list", list_licenses, "list a company's licenses")
    parser.add_argument("--customer", required=True, type=identifiers.customer_id)
    parser = command(
        commands,
        common,
        "suspend",
        suspend,
        "suspend a license (no activations; the company is emailed, with the reason)",
    )
    parser.add_argument("license_id", type=identifiers.license_id)
    parser.add_argument(
        "--reason",
        type=_reason,
        help=f"why, in words for the customer (at most {REASON_MAX} characters); the email "
        "and the portal show it",
    )
    parser = command(
        commands, common, "resume", resume, "lift a suspension (the company is emailed)"
    )
    parser.add_argument("license_id", type=identifiers.license_id)
    parser = command(commands, common, "extend", extend, "move a license's expiry date")
    parser.add_argument("license_id", type=identifiers.license_id)
    parser.add_argument("--until", required=True, type=_date, help="YYYY-MM-DD")
    parser.add_argument(
        "--force",
        action="store_true",
        help="also move it earlier, or give a perpetual license an end date",
    )
    parser = command(
        commands, common, "deactivate", deactivate, "deactivate an installation (by staff)"
    )
    parser.add_argument("license_id", type=identifiers.license_id)
    parser.add_argument("installation_id")
    parser = command(
        commands,
        common,
        "features",
        features,
        "show a license's features, or add and remove some (the company is emailed)",
    )
    parser.add_argument("license_id", type=identifiers.license_id)
    parser.add_argument("--add", type=feature_codes, help="feature codes, comma separated")
    parser.add_argument("--remove", type=feature_codes, help="feature codes, comma separated")
    parser = command(
        commands,
        common,
        "activate-offline",
        activate_offline,
        "activate an air-gapped machine from its request file; writes the response file",
    )
    parser.add_argument("license_id", type=identifiers.license_id)
    parser.add_argument(
        "--request",
        required=True,
        type=Path,
        help="the activation request file the machine wrote (license-client offline-request)",
    )
    parser.add_argument(
        "--out", type=Path, help="where to write the response file (default: standard output)"
    )


def _ensure_products(rpc: Rpc) -> None:
    known = {item["code"] for item in rpc("licensing", "list_products")}
    for product in DEMO_PRODUCTS:
        if product["code"] not in known:
            try:
                rpc("licensing", "create_product", dict(product))
            except PortalError as exc:
                if exc.code != "product_exists":  # another seeder was quicker
                    raise


def seed_demo(rpc: Rpc, company: dict[str, Any]) -> dict[str, Any]:
    """Licenses with installations and history for the demo company (once)."""
    customer_id = company["customer_id"]
    _ensure_products(rpc)
    existing = rpc("licensing", "list_licenses", customer_id)
    if not any(item["product"]["code"] == "femsolver" for item in existing):
        today = datetime.now(UTC).date()
        yearly = _issue(rpc, customer_id, "cadpro", 5, today + timedelta(days=365))
        _activate(rpc, yearly, "demo-ws-01-6f1c", "CAD-WS-01")
        _activate(rpc, yearly, "demo-ws-02-93ab", "CAD-WS-02")
        _activate(rpc, yearly, "demo-laptop-4d07", "Dana's laptop")
        rpc(
            "licensing",
            "deactivate_installation",
            customer_id,
            yearly["license_id"],
            "demo-laptop-4d07",
            "portal",
        )
        perpetual = _issue(rpc, customer_id, "femsolver", 2, None)
        _activate(rpc, perpetual, "demo-hpc-node-1", "HPC-Node-1")
        _issue(rpc, customer_id, "cadpro", 1, today + timedelta(days=20))
        existing = rpc("licensing", "list_licenses", customer_id)
    floating = [item for item in existing if item.get("model") == "floating"]
    if not floating:
        _seed_floating(rpc, customer_id)
        existing = rpc("licensing", "list_licenses", customer_id)
    elif _renew_workstation_lease(rpc, customer_id, floating[0]["license_id"]):
        existing = rpc("licensing", "list_licenses", customer_id)
    return {
        "licenses": [
            {
                key: item[key]
                for key in (
                    "license_id",
                    "product",
                    "seats",
                    "seats_in_use",
                    "expires_at",
                    "status",
                    "model",
                )
            }
            for item in existing
        ]
    }


DEMO_WORKSTATION = ("demo-ws-03-c2e8", "CAD-WS-03")


def _seed_floating(rpc: Rpc, customer_id: str) -> None:
    """A floating license of 3 seats shared by the office: one workstation holds a lease
    (it lapses in 15 minutes unless something renews it: `portalctl demo` again does) and a
    laptop borrowed one for a week's trip, so the portal shows both kinds, and one seat is
    left to check out."""
    expires = datetime.now(UTC).date() + timedelta(days=365)
    terms = {"model": "floating", "lease_seconds": 900, "max_borrow_days": 7}
    floating = _issue(rpc, customer_id, "cadpro", 3, expires, **terms)
    trip_end = datetime.now(UTC) + timedelta(days=7)
    password = floating["activation_password"]
    _checkout(rpc, floating["license_id"], password, *DEMO_WORKSTATION, None)
    _checkout(
        rpc,
        floating["license_id"],
        password,
        "demo-laptop-8a51",
        "Dana's laptop",
        trip_end.isoformat(),
    )


def _renew_workstation_lease(rpc: Rpc, customer_id: str, license_id: str) -> bool:
    """The office workstation's lease again, when it has lapsed since the last `demo`
    (True: it was taken again)."""
    license = rpc("licensing", "get_license", license_id, customer_id)
    installation_id, machine_name = DEMO_WORKSTATION
    if any(lease["installation_id"] == installation_id for lease in license["leases"]):
        return False
    try:
        _checkout(
            rpc, license_id, license["activation_password"], installation_id, machine_name, None
        )
    except PortalError as exc:  # the office took every seat, or the license ended
        if exc.code not in ("no_seats_available", "license_expired", "license_suspended"):
            raise
        return False
    return True


def _checkout(
    rpc: Rpc,
    license_id: str,
    password: str,
    installation_id: str,
    machine_name: str,
    borrow_until: str | None,
) -> None:
    rpc(
        "licensing",
        "checkout",
        {
            "license_id": license_id,
            "password": password,
            "installation_id": installation_id,
            "machine_name": machine_name,
            "borrow_until": borrow_until,
        },
    )


def _issue(
    rpc: Rpc,
    customer_id: str,
    product: str,
    seats: int,
    expires: date | None,
    **terms: Any,
) -> dict:
    payload = {
        "customer_id": customer_id,
        "product": product,
        "seats": seats,
        "expires_at": expires.isoformat() if expires else None,
        **terms,
    }
    license = rpc("licensing", "issue_license", payload)
    return rpc("licensing", "get_license", license["license_id"])


def _activate(rpc: Rpc, license: dict[str, Any], installation_id: str, machine_name: str) -> None:
    rpc(
        "licensing",
        "activate",
        {
            "license_id": license["license_id"],
            "password": license["activation_password"],
            "installation_id": installation_id,
            "machine_name": machine_name,
        },
    )
