"""License use cases for staff and the portal: issue, read, label, rotate, suspend, extend,
and the features a license unlocks (`hold` and `release` are the suspension itself, for
staff and for a disputed payment alike).

A company asking about another company's license gets `LicenseNotFound`, exactly as for a
license that does not exist. IDs and codes arrive canonical (the entrypoints load them with
common.schemas); staff guardrails (`domain.issue_refusal`, `domain.extension_refusal`)
refuse what is almost surely a mistake unless the request says `force`.

Each change states its fact of the company's audit trail (common/audit.py) with the actor
the entrypoint names: staff through portalctl, a portal user, or the system (a payment).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common import audit
from common.audit import Actor
from common.timeutil import iso
from common.unit_of_work import Outcome
from services.licensing import domain, views
from services.licensing.crypto import PasswordBox
from services.licensing.exceptions import GUARDRAILS, LicenseNotFound, UnknownFeature
from services.licensing.models import License, LicenseFeature, Product
from services.licensing.repository import LicensingRepository
from services.licensing.use_cases.products import product_on_sale


def find_license(
    repo: LicensingRepository, license_id: str, customer_id: str | None, lock: bool = False
) -> License:
    """The license, or `LicenseNotFound` when it is missing or belongs to someone else."""
    license = repo.license(domain.normalize_license_id(license_id), lock=lock)
    if license is None or (customer_id is not None and license.customer_id != customer_id):
        raise LicenseNotFound(details={"license_id": license_id})
    return license


def refuse_unless(refusal: str | None, force: bool, details: dict[str, Any]) -> None:
    """Raise the staff guardrail error for `refusal` (a domain code) unless `force`."""
    if refusal is not None and not force:
        raise GUARDRAILS[refusal](details=details)


def issue_license(
    repo: LicensingRepository,
    box: PasswordBox,
    data: dict[str, Any],
    actor: Actor,
    now: datetime,
) -> Outcome:
    """Staff: `{customer_id, product, seats, expires_at, features, force}` → the license,
    and `license_issued`. `UnknownFeature` for a code the product lacks. Refused unless
    `force`: an archived product (`ProductArchived`), an expiry already past
    (`ExpiresInPast`)."""
    force = data.get("force", False)
    product = product_on_sale(repo, data["product"], force)
    check_features(product, data.get("features", ()))
    expires_at = data.get("expires_at")
    refuse_unless(
        domain.issue_refusal(expires_at, now),
        force,
        {"expires_at": iso(expires_at), "now": iso(now)},
    )
    return new_license(repo, box, product, data, actor, now)


def new_license(
    repo: LicensingRepository,
    box: PasswordBox,
    product: Product,
    data: dict[str, Any],
    actor: Actor,
    now: datetime,
) -> Outcome:
    """Issue `{customer_id, seats, expires_at, features?, model?, lease_seconds?,
    max_borrow_days?}` of `product` (checked by the caller, features and lease terms
    included: `domain.lease_terms`)."""
    license_id = domain.new_license_id()
    while repo.license_id_exists(license_id):
        license_id = domain.new_license_id()
    license = License(
        license_id=license_id,
        customer_id=data["customer_id"],
        product=product,
        seats=data["seats"],
        expires_at=data.get("expires_at"),
        activation_password=box.encrypt(domain.new_activation_password()),
        password_rotated_at=now,
        created_at=now,
        features=[
            LicenseFeature(code=code) for code in domain.feature_codes(data.get("features", ()))
        ],
        model=data.get("model") or domain.NODE_LOCKED,
        lease_seconds=data.get("lease_seconds"),
        max_borrow_days=data.get("max_borrow_days"),
    )
    repo.add(license)
    return Outcome(
        views.license_view(license, now, 0),
        [("license_issued", views.license_issued(license, now))],
        audit=[
            _fact(
                license,
                actor,
                "license_issued",
                now,
                product=product.code,
                seats=license.seats,
                expires_at=iso(license.expires_at),
                features=views.feature_codes(license),
                **_terms(license),
            )
        ],
    )


def _terms(license: License) -> dict[str, Any]:
    """A floating license's model and lease terms, for its audit fact (nothing when
    node-locked: the trail's entries of those stay as they were)."""
    if license.model != domain.FLOATING:
        return {}
    return {
        "model": license.model,
        "lease_seconds": license.lease_seconds,
        "max_borrow_days": license.max_borrow_days,
    }


def seats_in_use(repo: LicensingRepository, license: License, now: datetime) -> int:
    """The seats taken now: active installations, or a floating license's live leases."""
    if license.model == domain.FLOATING:
        return repo.live_counts([license.id], now).get(license.id, 0)
    return repo.seats_in_use_of(license.id)


def check_features(product: Product, codes: Any) -> None:
    """`UnknownFeature` naming the first of `codes` that is no feature of `product`."""
    unknown = domain.unknown_features(codes, [item.code for item in product.features])
    if unknown:
        raise UnknownFeature(
            f"Product {product.code} has no feature {unknown[0]}.",
            details={"product": product.code, "feature": unknown[0], "features": unknown},
        )


def change_features(
    license: License, add: Any, remove: Any, actor: Actor, now: datetime
) -> Outcome:
    """Add and remove feature codes (of its product) on a locked license; the outcome has
    `license_features_changed` and its audit fact only when something changed."""
    change = domain.change_features(views.feature_codes(license), add, remove)
    if not change.changed:
        return Outcome()
    kept = {item.code: item for item in license.features}
    # removed rows are deleted (delete-orphan), kept ones stay as they are
    license.features = [kept.get(code) or LicenseFeature(code=code) for code in change.features]
    event = views.license_features_changed(license, change.added, change.removed, actor)
    fact = _fact(
        license,
        actor,
        "license_features_changed",
        now,
        added=change.added,
        removed=change.removed,
    )
    return Outcome(events=[("license_features_changed", event)], audit=[fact])


def change_license_features(
    repo: LicensingRepository,
    license_id: str,
    add: list[str],
    remove: list[str],
    actor: Actor,
    now: datetime,
) -> Outcome:
    """Staff: grant and withdraw features → the license. `UnknownFeature` naming a code its
    product lacks; nothing to change: the license as it is, no event."""
    license = find_license(repo, license_id, None, lock=True)
    check_features(license.product, [*add, *remove])
    outcome = change_features(license, add, remove, actor, now)
    view = views.license_view(license, now, seats_in_use(repo, license, now))
    return Outcome(view, outcome.events, audit=outcome.audit)


def _fact(
    license: License, actor: Actor, action: str, now: datetime, **details: Any
) -> audit.AuditEntry:
    """The audit trail's entry of `action` on `license` (its target) by `actor`."""
    return audit.entry(
        license.customer_id, actor, action, ("license", license.license_id), now, **details
    )


def show_license(
    repo: LicensingRepository,
    box: PasswordBox,
    license_id: str,
    customer_id: str | None,
    reveal_password: bool,
    actor: Actor,
    now: datetime,
) -> Outcome:
    """The license with every installation (newest first), and its activation password
    unless `reveal_password` is false (then `activation_password` is null).

    Shown to a portal user (`domain.password_view_audited`), the password is the trail's
    `activation_password_viewed`: the entrypoint runs this as a write, once per request, and
    the result holds the password sealed (`views.sealed_detail`), since the request ledger
    stores it; `open_detail` makes the answer, as for a rotation. Otherwise it is a read,
    and the result is the answer.
    """
    license = find_license(repo, license_id, customer_id)
    installations = repo.installations(license.id)
    floating = floating_facts(repo, license, now)
    if domain.password_view_audited(reveal_password, actor.type):
        return Outcome(
            views.sealed_detail(license, now, installations, floating),
            audit=[_fact(license, actor, "activation_password_viewed", now)],
        )
    password = box.decrypt(license.activation_password) if reveal_password else None
    return Outcome(views.license_detail_view(license, now, installations, password, floating))


def floating_facts(
    repo: LicensingRepository, license: License, now: datetime
) -> views.FloatingFacts | None:
    """A floating license's live leases and usage of the last days (None: node-locked)."""
    if license.model != domain.FLOATING:
        return None
    today = now.date()
    usage = repo.usage(license.id, domain.usage_window(today))
    return views.FloatingFacts(
        repo.live_leases(license.id, now), domain.usage_summary(usage, today)
    )


def open_detail(box: PasswordBox, detail: dict[str, Any]) -> dict[str, Any]:
    """The answer of `show_license`'s result: a sealed password opened."""
    if "sealed_password" not in detail:
        return detail
    return views.opened_detail(detail, box.decrypt(detail["sealed_password"]))


def list_licenses(
    repo: LicensingRepository, customer_id: str, now: datetime
) -> list[dict[str, Any]]:
    licenses = repo.licenses_of(customer_id)
    in_use = repo.seats_in_use([item.id for item in licenses if item.model != domain.FLOATING])
    leased = repo.live_counts([item.id for item in licenses if item.model == domain.FLOATING], now)
    return [
        views.license_view(license, now, in_use.get(license.id, 0) + leased.get(license.id, 0))
        for license in licenses
    ]


def list_installations(
    repo: LicensingRepository, license_id: str, customer_id: str | None
) -> list[dict[str, Any]]:
    license = find_license(repo, license_id, customer_id)
    return [views.installation_view(item) for item in repo.installations(license.id)]


def history(
    repo: LicensingRepository,
    license_id: str,
    customer_id: str | None,
    limit: int,
    before: int | None,
) -> dict[str, Any]:
    """One page, newest first; `next_before` continues with older events (None: no more)."""
    license = find_license(repo, license_id, customer_id)
    return views.history_page(repo.history(license.id, limit + 1, before), limit)


def rotate_activation_password(
    repo: LicensingRepository,
    box: PasswordBox,
    license_id: str,
    customer_id: str | None,
    actor: Actor,
    now: datetime,
) -> Outcome:
    """A new activation password; the old one stops working with this commit.

    The result is `views.sealed_password` (the new password encrypted, as the license keeps
    it): the request ledger stores it, and a redelivered rotation answers the same password
    instead of replacing the one the user was just shown. The entrypoint opens it.
    """
    license = find_license(repo, license_id, customer_id, lock=True)
    license.activation_password = box.encrypt(domain.new_activation_password())
    license.password_rotated_at = now
    return Outcome(
        views.sealed_password(license),
        audit=[_fact(license, actor, "activation_password_rotated", now)],
    )


def label_license(
    repo: LicensingRepository,
    license_id: str,
    customer_id: str | None,
    labels: dict[str, str | None],
    actor: Actor,
    now: datetime,
) -> Outcome:
    """The company's nickname and note of its license (`labels`: `{nickname?, note?}` as
    loaded, trimmed, None to clear) → the license; a key left out stays as it is. Audited
    `license_labelled` (`details`: the labels that changed, as they are now) only when
    something changed."""
    license = find_license(repo, license_id, customer_id, lock=True)
    changed = {key: value for key, value in labels.items() if getattr(license, key) != value}
    for key, value in changed.items():
        setattr(license, key, value)
    view = views.license_view(license, now, seats_in_use(repo, license, now))
    if not changed:
        return Outcome(view)
    return Outcome(view, audit=[_fact(license, actor, "license_labelled", now, **changed)])


def suspend(
    repo: LicensingRepository,
    license_id: str,
    reason: str | None,
    actor: Actor,
    now: datetime,
) -> Outcome:
    """Staff: activations are refused from now on; `license_suspended` tells the customer.

    Suspending a suspended license changes only its reason (when one is given), and tells
    nobody again; the trail records the new reason (`already_suspended: true`). A license
    suspended for a disputed payment becomes staff's to lift: winning the dispute no longer
    resumes it.
    """
    license = find_license(repo, license_id, None, lock=True)
    outcome = hold(license, domain.suspension_reason(reason), domain.BY_STAFF, actor, now)
    view = views.license_view(license, now, seats_in_use(repo, license, now))
    return Outcome(view, outcome.events, audit=outcome.audit)


def hold(
    license: License,
    reason: str | None,
    cause: str,
    actor: Actor,
    now: datetime,
    **details: Any,
) -> Outcome:
    """Suspend `license` (locked by the caller) for `cause` (`domain.SUSPENSION_CAUSES`) with
    `reason`, the customer's words: `license_suspended` and the trail's fact (`details`
    added to it). Already suspended: staff take it over, with their reason when they give
    one; nothing else changes it (a dispute leaves staff's suspension as it is)."""
    if license.suspended_at is None:
        license.suspended_at = now
        license.suspension_reason = reason
        license.suspension_cause = cause
        if cause != domain.BY_STAFF:
            details = {"cause": cause, **details}
        fact = _fact(license, actor, "license_suspended", now, reason=reason, **details)
        return Outcome(
            events=[("license_suspended", views.license_suspended(license, now))], audit=[fact]
        )
    if cause != domain.BY_STAFF:
        return Outcome()
    new_reason = reason is not None and reason != license.suspension_reason
    # a cause of None: suspended by an instance older than causes, so by staff
    if not new_reason and license.suspension_cause in (None, domain.BY_STAFF):
        return Outcome()
    if new_reason:
        license.suspension_reason = reason
    license.suspension_cause = domain.BY_STAFF
    fact = _fact(
        license,
        actor,
        "license_suspended",
        now,
        reason=license.suspension_reason,
        already_suspended=True,
        **details,
    )
    # no second suspension notice; but a validation answers the reason: the gateways'
    # read models must hear of the new one (docs/events.md)
    event = ("license_suspension_changed", views.license_suspended(license, now))
    return Outcome(events=[event] if new_reason else [], audit=[fact])


def resume(repo: LicensingRepository, license_id: str, actor: Actor, now: datetime) -> Outcome:
    """Staff: lift a suspension (`license_resumed`); a license not suspended is unchanged."""
    license = find_license(repo, license_id, None, lock=True)
    outcome = release(license, actor, now)
    view = views.license_view(license, now, seats_in_use(repo, license, now))
    return Outcome(view, outcome.events, audit=outcome.audit)


def release(license: License, actor: Actor, now: datetime, **details: Any) -> Outcome:
    """Lift the suspension of `license` (locked by the caller), whatever its cause:
    `license_resumed` and the trail's fact (`details` added to it); not suspended: nothing."""
    if license.suspended_at is None:
        return Outcome()
    license.suspended_at = None
    license.suspension_reason = None
    license.suspension_cause = None
    return Outcome(
        events=[("license_resumed", views.license_resumed(license, now))],
        audit=[_fact(license, actor, "license_resumed", now, **details)],
    )


def extend(
    repo: LicensingRepository,
    license_id: str,
    expires_at: datetime,
    force: bool,
    actor: Actor,
    now: datetime,
) -> Outcome:
    """Staff: move the expiry. Refused unless `force`: a perpetual license
    (`LicenseIsPerpetual`), an earlier date (`ExtensionShortens`), a date already past
    (`ExpiresInPast`)."""
    license = find_license(repo, license_id, None, lock=True)
    refuse_unless(
        domain.extension_refusal(license.expires_at, expires_at, now),
        force,
        {
            "license_id": license.license_id,
            "expires_at": iso(license.expires_at),
            "requested": iso(expires_at),
        },
    )
    return move_expiry(repo, license, expires_at, actor, now)


def move_expiry(
    repo: LicensingRepository,
    license: License,
    expires_at: datetime,
    actor: Actor,
    now: datetime,
) -> Outcome:
    """Set the locked license's expiry (`license_extended`); expiry notices start again."""
    previous = license.expires_at
    license.expires_at = expires_at
    return Outcome(
        views.license_view(license, now, seats_in_use(repo, license, now)),
        [("license_extended", views.license_extended(license, previous, now))],
        audit=[
            _fact(
                license,
                actor,
                "license_extended",
                now,
                previous_expires_at=iso(previous),
                expires_at=iso(expires_at),
            )
        ],
    )
