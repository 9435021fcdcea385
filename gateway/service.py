"""The HTTP gateway: every route of the JSON API under /api/v1 and of the portal's pages.

Each route is declared by `@route` (`gateway/http.py`), which validates the body,
authenticates `auth="session"` callers (handing the method `company`, with the session's
`user`) and checks their role against the route's `roles` (`gateway.roles`), hands a lease
route (`auth="lease"`) the lease token of its `Authorization` header, dumps the result
through the `response` schema and turns errors into the JSON envelope. The methods here only
ask one service and answer; what is not an entrypoint lives beside: `sessions` (tokens,
cookies, CSRF), `pages` (HTML), `views` (answers made of two services), `purchases` (the
wait for a purchase's license), `audit_trail` (the three services' trails as one, and its
CSV) and `health`.

Every route acts for the company of the session: the services are always asked with that
company's customer ID, so another company's license, receipt, recurring payment or user is
a 404, never a 403 and never data. A 403 `forbidden` says the session's role may not use the
route at all.
"""

from __future__ import annotations

from typing import Any

from nameko.timer import timer
from werkzeug.wrappers import Request, Response

from common.clock import Clock
from common.errors import PortalError
from common.metrics import Metrics
from common.rpc import RpcClient
from common.schemas import load
from gateway import (
    audit_trail,
    clients,
    health,
    openapi,
    pages,
    payments,
    purchases,
    request_keys,
    roles,
    schemas,
    sessions,
    views,
)
from gateway.http import Reply, WorkerData, route
from gateway.read_model import KEYS_CHECK_SECONDS, SEEN_FLUSH_SECONDS, ValidationReadModel

JWKS_MAX_AGE_SECONDS = 300
STRIPE_WEBHOOK_MAX_BYTES = 256 * 1024  # Stripe's events are far smaller


class GatewayService:
    name = "gateway"

    auth = RpcClient("auth")
    licensing = RpcClient("licensing")
    billing = RpcClient("billing")
    notify = RpcClient("notify")
    metrics = Metrics()
    context_data = WorkerData()
    read_model = ValidationReadModel()
    # validations are answered on licensing's clock (tests and demos move it)
    clock = Clock("LICENSING_CLOCK_OFFSET_SECONDS")

    # --- sessions, the account and its password (docs/http-api.md) -----------------

    @route(
        "POST",
        "/api/v1/sessions",
        summary="Log in with the customer ID or contact email and the company password",
        body=schemas.LoginBody,
        response=schemas.SessionOut,
        status=201,
        tags=["account"],
        errors=["invalid_credentials", "too_many_attempts"],
    )
    def create_session(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`{"login": "C4829113", "password": "..."}` → 201 `{token, expires_at, company, user:
        {user_id, email, name, role}}`. The customer ID or the contact email logs in the
        company's contact; another user logs in with their own email and password."""
        return self.auth.login(clients.with_client_address(body, request))

    @route(
        "DELETE",
        "/api/v1/sessions/current",
        summary="Log out (revoke this session)",
        status=204,
        auth="session",
        roles=roles.EVERYONE,
        tags=["account"],
    )
    def delete_session(self, request: Request, token: str) -> None:
        """→ 204, also for a session that is already gone."""
        self.auth.logout(token)

    @route(
        "GET",
        "/api/v1/account",
        summary="The logged-in company's account",
        response=schemas.Account,
        auth="session",
        roles=roles.EVERYONE,
        tags=["account"],
    )
    def get_account(self, request: Request, company: dict[str, Any]) -> dict[str, Any]:
        """→ `{customer_id, name, contact_name, contact_email, user: {user_id, email, name,
        role}}`: `user` is the session's own user."""
        return company

    @route(
        "GET",
        "/api/v1/account/notifications",
        summary="Which notices the session's user gets by email, and which their role offers",
        response=schemas.NotificationPreferencesOut,
        auth="session",
        roles=roles.EVERYONE,
        tags=["account"],
    )
    def get_notifications(self, request: Request, company: dict[str, Any]) -> dict[str, Any]:
        """→ `{"preferences": {"installation_activated": true, "license_expiring": true,
        "receipts": false, "payment_failed": false}, "available": ["installation_activated",
        "license_expiring"]}` (a license admin's defaults)."""
        return self.auth.get_notification_preferences(
            company["customer_id"], _session_user_id(company)
        )

    @route(
        "PUT",
        "/api/v1/account/notifications",
        summary="Turn the session's user's email notices on or off (only those given change)",
        body=schemas.NotificationPreferencesBody,
        response=schemas.NotificationPreferencesOut,
        auth="session",
        roles=roles.EVERYONE,
        tags=["account"],
    )
    def update_notifications(
        self, request: Request, body: dict[str, Any], company: dict[str, Any]
    ) -> dict[str, Any]:
        """`{"preferences": {"license_expiring": false}}` → 200 `{preferences, available}`;
        422 `validation_error` naming a notice the role may not receive. Security notices
        (password, invitation, role changes) are always sent and are not preferences."""
        return self.auth.update_notification_preferences(
            company["customer_id"], _session_user_id(company), body
        )

    @route(
        "GET",
        "/api/v1/account/billing-details",
        summary="The name, address and VAT ID that receipts show for the company",
        response=schemas.BillingDetailsOut,
        auth="session",
        roles=roles.BILLING_USERS,
        tags=["account"],
    )
    def get_billing_details(self, request: Request, company: dict[str, Any]) -> dict[str, Any]:
        """→ `{company_name, address, vat_id}`; null fields until the company sets them."""
        return self.billing.get_billing_details(company["customer_id"])

    @route(
        "PUT",
        "/api/v1/account/billing-details",
        summary="Set the name, address and VAT ID for the receipts of future payments",
        body=schemas.BillingDetailsBody,
        response=schemas.BillingDetailsOut,
        auth="session",
        roles=roles.BILLING_USERS,
        tags=["account"],
    )
    def update_billing_details(
        self, request: Request, body: dict[str, Any], company: dict[str, Any]
    ) -> dict[str, Any]:
        """`{"company_name": "Acme Engineering GmbH", "address": "Hauptstraße 1\\n10115
        Berlin", "vat_id": "DE123456789"}` → 200 the details. A PUT replaces them all: a
        missing `vat_id` is none. Receipts already issued keep the details they were made
        with."""
        payload = {**body, "vat_id": body.get("vat_id")}
        return self.billing.update_billing_details(company["customer_id"], payload)

    @route(
        "PUT",
        "/api/v1/account/password",
        summary="Change your own password (the contact's is the company password); your "
        "other sessions are revoked",
        body=schemas.ChangePasswordBody,
        status=204,
        auth="session",
        roles=roles.EVERYONE,
        tags=["account"],
        errors=["invalid_credentials", "weak_password", "too_many_attempts"],
    )
    def change_password(self, request: Request, body: dict[str, Any], token: str) -> None:
        """`{"current_password": "...", "new_password": "..."}` → 204."""
        self.auth.change_password(token, clients.with_client_address(body, request))

    @route(
        "POST",
        "/api/v1/password-resets",
        summary="Email a password reset link (the answer is the same for unknown logins)",
        body=schemas.ResetRequestBody,
        status=202,
        tags=["account"],
    )
    def request_password_reset(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`{"login": "ada@acme.test"}` → 202, whatever the login."""
        self.auth.request_password_reset(clients.with_client_address(body, request))
        return {
            "status": "accepted",
            "message": "If the login belongs to an account, a reset link is on its way.",
        }

    @route(
        "POST",
        "/api/v1/password-resets/confirm",
        summary="Set a new password with the token from the reset email",
        body=schemas.ResetConfirmBody,
        status=204,
        tags=["account"],
        errors=["invalid_token", "weak_password"],
    )
    def confirm_password_reset(self, request: Request, body: dict[str, Any]) -> None:
        """`{"token": "...", "new_password": "..."}` → 204; 400 `invalid_token`."""
        self.auth.confirm_password_reset(body)

    @route(
        "POST",
        "/api/v1/password-resets/check",
        summary="Whether a reset or invitation link still works, before its form is filled "
        "(the token is not used up)",
        body=schemas.TokenCheckBody,
        response=schemas.TokenCheckOut,
        tags=["account"],
        errors=["invalid_token"],
    )
    def check_password_token(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`{"token": "..."}` → 200 `{"valid": true, "purpose": "reset", "email":
        "ada@acme.test", "company_name": "Acme Engineering"}` (`purpose` reset, setup or
        invite); 400 `invalid_token` with `details.reason` `used`, `expired` or `unknown`."""
        return self.auth.check_password_token(body["token"])

    # --- product activation (docs/http-api.md): no session, the password is the credential

    @route(
        "POST",
        "/api/v1/activations",
        summary="Activate a license on a machine: 201 new, 200 already active (no new seat)",
        body=schemas.ActivationBody,
        response=schemas.ActivationOut,
        status=201,
        auth="credential",
        tags=["activation"],
        errors=[
            "invalid_credentials",
            "too_many_attempts",
            "license_expired",
            "license_suspended",
            "no_seats_available",
            "floating_license",
            "wrong_product",
        ],
    )
    def activate(self, request: Request, body: dict[str, Any]) -> Reply:
        """`{"license_id": "L-7KQX-M2PD", "password": "K7QX-M2PD-9TRW-H4NC", "installation_id":
        "…", "machine_name": "CAD-WS-07", "product": "cadpro"}` → `{activation,
        certificate}`; 409 `no_seats_available` lists the machines in use in
        `details.machines`; 409 `floating_license` for a floating license (check out a lease
        instead); 409 `wrong_product` when `product` (optional) is not the license's, no seat
        taken (`details.license_id`, `details.product`, `details.requested`)."""
        result = self.licensing.activate(clients.with_client_address(body, request))
        return Reply(result, status=201 if result.get("created") else 200)

    @route(
        "POST",
        "/api/v1/deactivations",
        summary="The product releases its own seat",
        body=schemas.DeactivationBody,
        response=schemas.InstallationOut,
        auth="credential",
        tags=["activation"],
        errors=["invalid_credentials", "too_many_attempts", "installation_not_found"],
    )
    def deactivate(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`{"license_id", "password", "installation_id"}` → 200 the installation
        (`deactivated_by: "product"`); again: the same answer."""
        return self.licensing.deactivate(clients.with_client_address(body, request))

    # --- leases of floating licenses (design §13): the check-out is the credential route;
    # heartbeat and check-in carry the lease token the check-out answered (auth="lease")

    @route(
        "POST",
        "/api/v1/leases",
        summary="Check out a seat of a floating license: 201 a new lease, 200 the lease this "
        "installation already holds (a new token, extended)",
        body=schemas.LeaseBody,
        response=schemas.LeaseOut,
        status=201,
        auth="credential",
        tags=["leases"],
        errors=[
            "invalid_credentials",
            "too_many_attempts",
            "license_expired",
            "license_suspended",
            "no_seats_available",
            "node_locked_license",
            "borrow_not_allowed",
            "wrong_product",
        ],
    )
    def checkout(self, request: Request, body: dict[str, Any]) -> Reply:
        """`{"license_id": "L-7KQX-M2PD", "password": "K7QX-M2PD-9TRW-H4NC", "installation_id":
        "…", "machine_name": "CAD-WS-07", "borrow_until": null, "product": "cadpro"}` →
        `{lease: {lease_id, license_id, installation_id, machine_name, expires_at, borrowed,
        …}, lease_token, certificate}`; 409 `no_seats_available` names who holds the seats in
        `details.machines` (`machine_name`, `expires_at`, `borrowed`); 409
        `node_locked_license` (activate it instead); 422 `borrow_not_allowed` with
        `details.max_borrow_days` and `details.latest`; 409 `wrong_product` as activation's.
        `borrow_until` is a date-time with its offset or a day, `"2026-12-09"`: the end of
        that day, UTC."""
        result = self.licensing.checkout(clients.with_client_address(body, request))
        return Reply(result, status=201 if result.get("created") else 200)

    @route(
        "POST",
        "/api/v1/leases/<lease_id>/heartbeat",
        summary="Keep a lease: extends it by one lease period (Authorization: Bearer "
        "<lease_token>)",
        response=schemas.HeartbeatOut,
        auth="lease",
        tags=["leases"],
        errors=["lease_expired", "license_expired", "license_suspended"],
    )
    def heartbeat(self, request: Request, lease_id: str, lease_token: str) -> dict[str, Any]:
        """→ `{lease, certificate}` with the new `expires_at`; 401 `invalid_lease_token`
        (no token, another lease's, or an unknown lease); 410 `lease_expired` once the
        lease lapsed, was revoked or checked in (`details.reason`): check out again."""
        return self.licensing.heartbeat(lease_id, lease_token)

    @route(
        "DELETE",
        "/api/v1/leases/<lease_id>",
        summary="Check in: the seat is free at once (Authorization: Bearer <lease_token>)",
        status=204,
        auth="lease",
        tags=["leases"],
    )
    def checkin(self, request: Request, lease_id: str, lease_token: str) -> None:
        """→ 204, also for a lease that has already ended; 401 `invalid_lease_token`."""
        self.licensing.checkin(lease_id, lease_token)

    @route(
        "POST",
        "/api/v1/validations",
        summary="Check a certificate online: VALID, EXPIRED, SUSPENDED, DEACTIVATED, "
        "LEASE_EXPIRED or BAD_SIGNATURE (always 200)",
        body=schemas.ValidationBody,
        response=schemas.ValidationOut,
        tags=["activation"],
    )
    def validate(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`{"certificate": "eyJ…", "nonce": "q3Vd…" (optional)}` → `{valid, code, license_id,
        installation_id, expires_at, features: ["steel"], lease_id, lease_expires_at,
        signed_answer}`; `features` are the license's as of now (empty unless VALID);
        `lease_id` and `lease_expires_at` (`"LS-7KQX-M2PD"`, the lease's end) only for a lease
        certificate, else null; `signed_answer` is the same answer as a JWS signed with the
        certificate keys, with `iat` and the nonce. Answered by the gateway's read model
        (gateway/read_model.py), or by licensing when it may not answer."""
        now = self.clock.now()
        return self.read_model.validate(self.licensing, body["certificate"], body.get("nonce"), now)

    @timer(interval=SEEN_FLUSH_SECONDS)
    def flush_seen_marks(self) -> None:
        """Record the installations validated from the read model as seen (`mark_seen`)."""
        self.read_model.flush_seen(self.licensing)

    @timer(interval=KEYS_CHECK_SECONDS)
    def refresh_validation_keys(self) -> None:
        """Fetch licensing's keys again when due (old, or a certificate named an unknown
        `kid`: a rotated signing key), off the request path; never with the cache off."""
        if self.read_model.enabled:
            self.read_model.refresh_keys(self.licensing)

    @route(
        "GET",
        "/api/v1/signing-keys",
        summary="JWKS of the Ed25519 keys that sign activation certificates (RFC 7517/8037)",
        response=schemas.Jwks,
        tags=["activation"],
    )
    def signing_keys(self, request: Request) -> Reply:
        """→ `{keys: [{kty: "OKP", crv: "Ed25519", x, kid, use: "sig", alg: "EdDSA"}]}`."""
        cache = {"Cache-Control": f"public, max-age={JWKS_MAX_AGE_SECONDS}"}
        return Reply(self.licensing.signing_keys(), headers=cache)

    @route(
        "GET",
        "/api/v1/_ping/licensing",
        summary="One licensing ping over RPC: the transport baseline for benchmarks",
        tags=["ops"],
    )
    def ping_licensing(self, request: Request) -> dict[str, Any]:
        """→ `{"service": "licensing", "status": "ok"}`, and nothing else: what the benchmark
        compares activations and validations with."""
        return self.licensing.ping()

    # --- payments, receipts, recurring payments, catalog, purchases (docs/http-api.md)

    @route(
        "GET",
        "/api/v1/payments",
        summary="Receipts of the company's portal purchases and renewals, newest first; page "
        "with ?limit=1..200 (default 50) and ?before=<next_before of the previous page>",
        response=schemas.PaymentList,
        auth="session",
        roles=roles.BILLING_USERS,
        tags=["billing"],
        errors=["validation_error"],
    )
    def list_payments(self, request: Request, company: dict[str, Any]) -> dict[str, Any]:
        """→ `{payments: [{receipt_number, paid_at, amount, currency, amount_formatted,
        description, status, refunded_at, refund_reason, license_id, …}], next_before}`;
        amounts in minor units, `status` "paid" or "refunded", `next_before` null on the
        last page. Offline purchases are not listed."""
        query = load(schemas.PaymentsQuery(), request.args.to_dict())
        return views.payments_page(
            self.billing, company["customer_id"], query["limit"], query["before"]
        )

    @route(
        "GET",
        "/api/v1/payments/<receipt_number>/receipt",
        summary="A receipt as a printable HTML page",
        auth="session",
        roles=roles.BILLING_USERS,
        tags=["billing"],
        errors=["payment_not_found"],
        content_type="text/html",
    )
    def receipt(self, request: Request, receipt_number: str, company: dict[str, Any]) -> Response:
        """→ `text/html`: the vendor (name, address, VAT ID) and the buyer as billed at payment
        time (company name, address, VAT ID), line items by product name, seats, period,
        amounts, card; a refunded payment says so. Any case: `r-2026-000123` is found."""
        receipt = self.billing.get_receipt(receipt_number, company["customer_id"])
        return pages.receipt(receipt, company)

    @route(
        "GET",
        "/api/v1/recurring-payments",
        summary="What will be charged automatically, and when",
        response=schemas.RecurringPaymentList,
        auth="session",
        roles=roles.BILLING_USERS,
        tags=["billing"],
    )
    def list_recurring_payments(self, request: Request, company: dict[str, Any]) -> dict[str, Any]:
        """→ `{recurring_payments: [{id, license_id, product: {code, name}, plan, seats,
        amount, currency, amount_formatted, interval, next_charge_at, status, cancelled_by,
        card_brand, card_last4}]}`; a `cancelled` one with `cancelled_by: "customer"` and
        `next_charge_at` ahead can be resumed."""
        found = self.billing.list_recurring_payments(company["customer_id"])
        names = views.product_names(self.licensing, archived=True) if found else {}
        return {"recurring_payments": [views.named_product(view, names) for view in found]}

    @route(
        "POST",
        "/api/v1/recurring-payments/<recurring_payment_id>/cancel",
        summary="Stop automatic charges; the license runs to its end",
        response=schemas.RecurringPaymentOut,
        auth="session",
        roles=roles.BILLING_USERS,
        tags=["billing"],
        errors=["recurring_payment_not_found"],
    )
    def cancel_recurring_payment(
        self, request: Request, recurring_payment_id: str, company: dict[str, Any]
    ) -> dict[str, Any]:
        """→ 200 the recurring payment with `"status": "cancelled"` (again: the same)."""
        view = self.billing.cancel_recurring_payment(recurring_payment_id, company["customer_id"])
        return views.named_product(view, views.product_names(self.licensing, archived=True))

    @route(
        "POST",
        "/api/v1/recurring-payments/<recurring_payment_id>/resume",
        summary="Start automatic charges again after a cancellation, while the paid period "
        "has not ended",
        response=schemas.RecurringPaymentOut,
        auth="session",
        roles=roles.BILLING_USERS,
        tags=["billing"],
        errors=["recurring_payment_not_found", "recurring_payment_ended"],
    )
    def resume_recurring_payment(
        self, request: Request, recurring_payment_id: str, company: dict[str, Any]
    ) -> dict[str, Any]:
        """→ 200 the recurring payment with `"status": "active"` (an active one: unchanged);
        409 `recurring_payment_ended` once its period is over (buy or renew instead)."""
        view = self.billing.resume_recurring_payment(recurring_payment_id, company["customer_id"])
        return views.named_product(view, views.product_names(self.licensing, archived=True))

    @route(
        "PUT",
        "/api/v1/recurring-payments/<recurring_payment_id>/card",
        summary="Charge another card from now on (checked with a zero-amount authorization): "
        "`card`, or with Stripe the `payment_method` Stripe.js made of it",
        body=schemas.CardChangeBody,
        response=schemas.RecurringPaymentOut,
        auth="session",
        roles=roles.BILLING_USERS,
        tags=["billing"],
        errors=[
            "recurring_payment_not_found",
            "recurring_payment_ended",
            "card_declined",
            "insufficient_funds",
            "card_not_accepted",
        ],
    )
    def replace_card(
        self,
        request: Request,
        recurring_payment_id: str,
        body: dict[str, Any],
        company: dict[str, Any],
    ) -> dict[str, Any]:
        """`{"card": {"number": "5555555555554444", "exp_month": 8, "exp_year": 2030, "cvc":
        "123"}}` (the sandbox) or `{"payment_method": "pm_1Q2w3E4r"}` (Stripe) → 200 the
        recurring payment with the new `card_brand` / `card_last4`; 402 `card_declined` /
        `insufficient_funds` and nothing changed (also a card whose bank asks for 3-D Secure
        here: use it for a purchase instead); 422 `card_not_accepted` for a card number
        where Stripe takes the cards. A past-due payment is retried with the new card at the
        next renewal pass."""
        payments.refuse_card_numbers(body)
        customer_id = company["customer_id"]
        if body.get("payment_method") is not None:
            view = self.billing.replace_card(
                recurring_payment_id, customer_id, None, payment_method=body["payment_method"]
            )
        else:
            view = self.billing.replace_card(recurring_payment_id, customer_id, body["card"])
        return views.named_product(view, views.product_names(self.licensing, archived=True))

    @route(
        "GET",
        "/api/v1/catalog",
        summary="Products on sale and their plans, with prices, and how the portal takes cards",
        response=schemas.Catalog,
        auth="session",
        roles=roles.BILLING_USERS,
        tags=["billing"],
    )
    def catalog(self, request: Request) -> dict[str, Any]:
        """→ `{products: [{code, name, plans: [{code, amount, currency, price, interval,
        features: [{"code": "steel", "name": "Steel design"}]}]}]}`, the same for every
        logged-in company: plans on sale of products on sale (an archived plan, or any plan
        of an archived product, is absent); a plan's `features` are what a license bought
        with it holds. `payment` says how cards are taken: `{"provider": "sandbox"}` (send
        `card`), or `{"provider": "stripe", "publishable_key": "pk_test_…", "js_url":
        "https://js.stripe.com/v3/"}` (send the `payment_method` Stripe.js makes).

        Billing lists only the plans on sale; licensing's active products name them (and
        their features) and drop those of a product archived since. While licensing is
        unavailable, billing's list stands and codes stand in for the names.
        """
        plans = self.billing.list_plans()
        products = views.product_views(self.licensing) if plans else None
        catalog = views.catalog(plans, views.names_of(products), views.feature_names_of(products))
        return {**catalog, "payment": payments.catalog_payment()}

    @route(
        "POST",
        "/api/v1/purchases",
        summary="Buy a plan (or renew a license) by card: 201 paid, 202 the card's bank asks "
        "the customer to confirm (3-D Secure, Stripe)",
        body=schemas.PurchaseBody,
        response=schemas.PurchaseOut,
        responses={202: schemas.PurchaseActionOut},
        status=201,
        auth="session",
        roles=roles.BILLING_USERS,
        tags=["billing"],
        errors=[
            "card_declined",
            "insufficient_funds",
            "payment_unconfirmed",
            "license_not_found",
            "license_suspended",
            "product_archived",
            "card_not_accepted",
        ],
    )
    def purchase(
        self, request: Request, body: dict[str, Any], company: dict[str, Any]
    ) -> dict[str, Any] | Reply:
        """`{"plan": "cadpro-yearly", "seats": 5, "card": {"number": "4242424242424242",
        "exp_month": 12, "exp_year": 2030, "cvc": "123"}}` (the sandbox) or `{"plan":
        "cadpro-yearly", "seats": 5, "payment_method": "pm_1Q2w3E4r"}` (Stripe) → 201
        `{payment, license, license_status, recurring_payment}`; 402 `card_declined` /
        `insufficient_funds`; 422 `card_not_accepted` for a card number where Stripe takes
        the cards. With Stripe the card's bank may ask the customer to confirm: 202
        `{"status": "requires_action", "purchase_id": "pur_…", "client_secret": "…"}`,
        nothing charged yet; confirm with Stripe.js `confirmCardPayment(client_secret)`,
        then POST `/api/v1/purchases/{purchase_id}/confirm`.

        Licensing issues (or extends) the license when it hears of the payment; this waits
        for it up to PURCHASE_LICENSE_WAIT_SECONDS, then answers with `license: null` and
        `license_status: "pending"` (the license follows; the payment is final either way).

        Send an `Idempotency-Key` header (any unique string, ≤ 64 characters) to retry safely
        after a lost answer: the same key gets the same receipt or decline, never a second
        charge; the same key with another body is 422 `idempotency_key_reused`. Use a new
        key for a new attempt (e.g. with another card). A renewal of a license that already
        renews automatically is charged and moves its `next_charge_at`; a suspended
        license cannot be renewed (403 `license_suspended`).
        """
        payments.refuse_card_numbers(body)
        payload = purchases.billing_payload(body, request_keys.key_for(request))
        result = self.billing.purchase(company["customer_id"], payload)
        return purchases.outcome(
            self.licensing, company, result, renewal=bool(body.get("license_id"))
        )

    @route(
        "POST",
        "/api/v1/purchases/<purchase_id>/confirm",
        summary="Finish a purchase the customer confirmed with their bank (3-D Secure): 201 "
        "paid, exactly as a purchase answers; 202 while the bank still waits",
        response=schemas.PurchaseOut,
        responses={202: schemas.PurchaseActionOut},
        status=201,
        auth="session",
        roles=roles.BILLING_USERS,
        tags=["billing"],
        errors=[
            "purchase_not_found",
            "authentication_failed",
            "card_declined",
            "insufficient_funds",
            "payment_unconfirmed",
        ],
    )
    def confirm_purchase(
        self, request: Request, purchase_id: str, company: dict[str, Any]
    ) -> dict[str, Any] | Reply:
        """→ 201 `{payment, license, license_status, recurring_payment}` once the bank
        confirmed (again: the same answer); 202 `{status: "requires_action", purchase_id,
        client_secret}` while it still waits for the customer; 402 `authentication_failed`
        (the customer did not confirm; nothing was charged); 404 `purchase_not_found`
        (unknown, or another company's). No body."""
        result = self.billing.confirm_purchase(company["customer_id"], purchase_id)
        return purchases.outcome(self.licensing, company, result)

    # --- Stripe's webhook: no session; Stripe's signature is the credential --------------

    @route(
        "POST",
        "/webhooks/stripe",
        summary="Stripe's events (payments settled, refunds, disputes), signed with the "
        "webhook secret (`Stripe-Signature`); at most 256 KiB",
        response=schemas.StripeWebhookOut,
        tags=["webhooks"],
        errors=["invalid_signature", "not_found", "bad_request"],
        max_body=STRIPE_WEBHOOK_MAX_BYTES,
        raw_body=True,
    )
    def stripe_webhook(self, request: Request, body: str) -> dict[str, Any]:
        """The event exactly as Stripe sent it (`{"id": "evt_…", "type":
        "payment_intent.succeeded", "data": {"object": {…}}}`) → 200 `{"received": true,
        "duplicate": false, "type": "payment_intent.succeeded"}`; an event received before
        is 200 with `duplicate: true` and changes nothing. 400 `invalid_signature` (no,
        a wrong or a stale signature: nothing is recorded), 404 `not_found` when Stripe is
        not the payment provider, 503 while billing cannot answer (Stripe sends it again
        later). Billing checks the signature: the gateway never holds the secret."""
        return self.billing.handle_stripe_webhook(body, request.headers.get("Stripe-Signature"))

    # --- licenses & activations in the portal (docs/http-api.md) ---------------------
    # Installation IDs are any Unicode: in a path, percent-encode them (UTF-8); slashes are
    # allowed (`<path:...>`).

    @route(
        "GET",
        "/api/v1/licenses",
        summary="Every license of the company: product, seats in use / total, expiry, status",
        response=schemas.LicenseList,
        auth="session",
        roles=roles.EVERYONE,
        tags=["licenses"],
    )
    def list_licenses(self, request: Request, company: dict[str, Any]) -> dict[str, Any]:
        """→ `{licenses: [{license_id, product: {code, name}, model, lease_seconds,
        max_borrow_days, seats, seats_in_use, expires_at, status, suspension_reason,
        suspension_cause, created_at, features: [{"code": "steel", "name": "Steel design"}]}]}`;
        `model` `node_locked` or `floating` (then `seats_in_use` counts live leases and
        `lease_seconds` / `max_borrow_days` are set), `expires_at` null means perpetual,
        `suspension_reason` and `suspension_cause` (`staff` or `payment_disputed`) are null
        unless the license is suspended, `features` (by code)
        are the modules the license unlocks; `nickname` and `note` the company's labels
        (null: none); `renewal: {status, next_charge_at, amount, currency, interval, plan,
        recurring_payment_id}` how it renews (`automatic`, `past_due`, `cancelled` or
        `none`; `interval` `month` or `year` and `plan` the plan's code, null for `none`;
        `amount` and `currency` null for roles without billing), null while billing cannot
        say."""
        licenses = self.licensing.list_licenses(company["customer_id"])
        return {"licenses": self._with_renewals(licenses, company)}

    @route(
        "GET",
        "/api/v1/licenses/<license_id>",
        summary="One license with its installations and, for owners and license admins, its "
        "activation password",
        response=schemas.LicenseDetail,
        auth="session",
        roles=roles.EVERYONE,
        tags=["licenses"],
        errors=["license_not_found"],
    )
    def get_license(
        self, request: Request, license_id: str, company: dict[str, Any]
    ) -> dict[str, Any]:
        """→ the license plus `activation_password` (activates this license only; null
        unless the session's role is owner or license_admin, and a password shown to a user
        is in the audit trail), `installations` (newest first) and, for a floating license,
        `leases` (live, oldest first) and `usage`: `{"peak_30d": 7, "days": [{"date":
        "2026-12-02", "peak": 7}]}` (`leases: []`, `usage: null` when node-locked), and its
        `renewal` as the list has it."""
        found = self.licensing.get_license(
            license_id,
            company["customer_id"],
            reveal_password=roles.may(company, roles.PASSWORD_READERS),
        )
        return self._with_renewals([found], company)[0]

    @route(
        "PATCH",
        "/api/v1/licenses/<license_id>",
        summary="Name a license and note what it is for (the company's own labels)",
        body=schemas.LicenseLabelBody,
        response=schemas.LicenseOut,
        auth="session",
        roles=roles.LICENSE_ADMINS,
        tags=["licenses"],
        errors=["license_not_found", "validation_error"],
    )
    def label_license(
        self, request: Request, license_id: str, body: dict[str, Any], company: dict[str, Any]
    ) -> dict[str, Any]:
        """`{"nickname": "Design team", "note": "Workstations on floor 2"}` (either or both)
        → 200 the license; only the labels sent change, null or "" clears one. A nickname
        is at most 60 characters, a note 500 (trimmed); 422 `validation_error` naming the
        field otherwise."""
        found = self.licensing.label_license(license_id, company["customer_id"], body)
        return self._with_renewals([found], company)[0]

    def _with_renewals(
        self, licenses: list[dict[str, Any]], company: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The licenses with their `renewal`, billing asked once (not at all for none)."""
        if not licenses:
            return licenses
        recurring = views.recurring_payments(self.billing, company["customer_id"])
        return views.with_renewals(licenses, recurring, roles.may(company, roles.BILLING_USERS))

    @route(
        "GET",
        "/api/v1/licenses/<license_id>/installations",
        summary="Where the license is or was activated",
        response=schemas.InstallationList,
        auth="session",
        roles=roles.EVERYONE,
        tags=["licenses"],
        errors=["license_not_found"],
    )
    def list_installations(
        self, request: Request, license_id: str, company: dict[str, Any]
    ) -> dict[str, Any]:
        """→ `{installations: [{installation_id, machine_name, status, activated_at,
        last_seen_at, deactivated_at, deactivated_by}]}`, newest first."""
        found = self.licensing.list_installations(license_id, company["customer_id"])
        return {"installations": found}

    @route(
        "GET",
        "/api/v1/licenses/<license_id>/history",
        summary="Activation history, newest first; page with ?limit=1..200 (default 50) and "
        "?before=<next_before of the previous page>",
        response=schemas.HistoryPage,
        auth="session",
        roles=roles.EVERYONE,
        tags=["licenses"],
        errors=["license_not_found", "validation_error"],
    )
    def history(self, request: Request, license_id: str, company: dict[str, Any]) -> dict[str, Any]:
        """→ `{events: [{id, type, at, installation_id, machine_name, source, reason}],
        next_before}`; `next_before` null on the last page."""
        query = load(schemas.HistoryQuery(), request.args.to_dict())
        return self.licensing.history(
            license_id, company["customer_id"], limit=query["limit"], before=query["before"]
        )

    @route(
        "POST",
        "/api/v1/licenses/<license_id>/installations/<path:installation_id>/deactivate",
        summary="Deactivate an installation (machine dead, lost or stolen): frees its seat "
        "at once; percent-encode the installation ID",
        response=schemas.InstallationOut,
        auth="session",
        roles=roles.LICENSE_ADMINS,
        tags=["licenses"],
        errors=["license_not_found", "installation_not_found"],
    )
    def deactivate_installation(
        self, request: Request, license_id: str, installation_id: str, company: dict[str, Any]
    ) -> dict[str, Any]:
        """→ 200 the installation with `status: "deactivated"`, `deactivated_by: "portal"`."""
        return self.licensing.deactivate_installation(
            company["customer_id"], license_id, installation_id, "portal"
        )

    @route(
        "GET",
        "/api/v1/licenses/<license_id>/leases",
        summary="The live leases of a floating license, oldest first",
        response=schemas.LeaseList,
        auth="session",
        roles=roles.EVERYONE,
        tags=["licenses"],
        errors=["license_not_found"],
    )
    def list_leases(
        self, request: Request, license_id: str, company: dict[str, Any]
    ) -> dict[str, Any]:
        """→ `{leases: [{lease_id, license_id, installation_id, machine_name, started_at,
        expires_at, last_heartbeat_at, borrowed, borrowed_until, status, ended_at}]}`
        (a node-locked license has none)."""
        return {"leases": self.licensing.list_leases(license_id, company["customer_id"])}

    @route(
        "POST",
        "/api/v1/licenses/<license_id>/leases/<lease_id>/revoke",
        summary="Revoke a lease: its seat is free at once, its next heartbeat is 410",
        response=schemas.LeaseView,
        auth="session",
        roles=roles.LICENSE_ADMINS,
        tags=["licenses"],
        errors=["license_not_found", "lease_not_found"],
    )
    def revoke_lease(
        self, request: Request, license_id: str, lease_id: str, company: dict[str, Any]
    ) -> dict[str, Any]:
        """→ 200 the lease with `status: "revoked"` (a lease already ended: unchanged); the
        product's next heartbeat is 410 `lease_expired` (`details.reason: "revoked"`)."""
        return self.licensing.revoke_lease(company["customer_id"], license_id, lease_id)

    @route(
        "POST",
        "/api/v1/licenses/<license_id>/activation-password",
        summary="Rotate the license's activation password; the old one stops working at once",
        response=schemas.ActivationPasswordOut,
        auth="session",
        roles=roles.LICENSE_ADMINS,
        tags=["licenses"],
        errors=["license_not_found"],
    )
    def rotate_activation_password(
        self, request: Request, license_id: str, company: dict[str, Any]
    ) -> dict[str, Any]:
        """→ 200 `{license_id, activation_password}` (the new one)."""
        return self.licensing.rotate_activation_password(license_id, company["customer_id"])

    # --- offline activation of air-gapped machines (design §11; docs/http-api.md) ---------

    @route(
        "POST",
        "/api/v1/licenses/<license_id>/offline-activations",
        summary="Activate an offline machine from its activation request file: 201 new, 200 "
        "the same installation again (no new seat); answers the response file to carry back",
        body=schemas.OfflineActivationBody,
        response=schemas.OfflineActivationOut,
        status=201,
        auth="session",
        roles=roles.LICENSE_ADMINS,
        tags=["licenses"],
        errors=[
            "invalid_request",
            "license_not_found",
            "license_expired",
            "license_suspended",
            "no_seats_available",
            "floating_license",
        ],
    )
    def activate_offline(
        self, request: Request, license_id: str, body: dict[str, Any], company: dict[str, Any]
    ) -> Reply:
        """`{"request": "<the request file's text>"}` (the file: `{"type":
        "activation_request", "version": 1, "license_id": "L-7KQX-M2PD", "installation_id":
        "…", "machine_name": "CAD-WS-07", "product": "cadpro", "requested_at": "…", "nonce":
        "…"}`) → 201 `{activation, certificate, response}`: `response` is the text of the
        response file (save it as `activation-response-L-7KQX-M2PD.json`); the same
        installation again is 200 with a fresh response and takes no seat. 422
        `invalid_request` with `details.problem` for a malformed or foreign file; 409
        `no_seats_available` lists the machines in use in `details.machines`."""
        text = views.offline_file(body["request"], "invalid_request", "request")
        result = self.licensing.activate_offline(company["customer_id"], license_id, text)
        return Reply(result, status=201 if result.get("created") else 200)

    @route(
        "POST",
        "/api/v1/licenses/<license_id>/offline-deactivations",
        summary="Free the seat of an offline machine with the deactivation proof file it "
        "wrote when it deleted its certificate",
        body=schemas.OfflineDeactivationBody,
        response=schemas.InstallationOut,
        auth="session",
        roles=roles.LICENSE_ADMINS,
        tags=["licenses"],
        errors=["invalid_proof", "license_not_found"],
    )
    def deactivate_offline(
        self, request: Request, license_id: str, body: dict[str, Any], company: dict[str, Any]
    ) -> dict[str, Any]:
        """`{"proof": "<the proof file's text>"}` (the file: `{"type": "deactivation_proof",
        "version": 1, "license_id": "L-7KQX-M2PD", "installation_id": "…", "deactivated_at":
        "…", "secret": "…"}`) → 200 the installation with
        `status: "deactivated"`, `deactivated_by: "offline"`; its seat is free at once. 422
        `invalid_proof` with `details.problem` for a malformed, forged, reused or foreign
        proof."""
        text = views.offline_file(body["proof"], "invalid_proof", "proof")
        return self.licensing.deactivate_offline(company["customer_id"], license_id, text)

    # --- the company's users and its audit trail (owners; docs/http-api.md) -------------

    @route(
        "GET",
        "/api/v1/users",
        summary="The company's users: the contact first, then by email",
        response=schemas.UserList,
        auth="session",
        roles=roles.OWNERS,
        tags=["users"],
    )
    def list_users(self, request: Request, company: dict[str, Any]) -> dict[str, Any]:
        """→ `{users: [{user_id, email, name, role, status, contact, created_at,
        last_login_at, invitation_expires_at}]}`; `status` is invited, active or disabled."""
        return self.auth.list_users(company["customer_id"])

    @route(
        "POST",
        "/api/v1/users",
        summary="Invite a user: an email with a link valid 7 days to set their password",
        body=schemas.InviteBody,
        response=schemas.UserOut,
        status=201,
        auth="session",
        roles=roles.OWNERS,
        tags=["users"],
        errors=["email_taken"],
    )
    def invite_user(
        self, request: Request, body: dict[str, Any], company: dict[str, Any]
    ) -> dict[str, Any]:
        """`{"email": "grace@acme.test", "name": "Grace Hopper", "role": "license_admin"}` →
        201 the user (`status: "invited"`); 409 `email_taken` when any account has the email."""
        return self.auth.invite_user(company["customer_id"], body)

    @route(
        "PATCH",
        "/api/v1/users/<user_id>",
        summary="Rename a user or change their role",
        body=schemas.UpdateUserBody,
        response=schemas.UserOut,
        auth="session",
        roles=roles.OWNERS,
        tags=["users"],
        errors=["user_not_found", "last_owner", "contact_is_owner"],
    )
    def update_user(
        self, request: Request, user_id: str, body: dict[str, Any], company: dict[str, Any]
    ) -> dict[str, Any]:
        """`{"role": "viewer"}` (and/or `"name"`) → 200 the user; 409 `last_owner` when no
        active owner would be left, 409 `contact_is_owner` for the contact's role."""
        return self.auth.update_user(company["customer_id"], user_id, body)

    @route(
        "DELETE",
        "/api/v1/users/<user_id>",
        summary="Remove a user (or revoke an invitation); their sessions end at once",
        status=204,
        auth="session",
        roles=roles.OWNERS,
        tags=["users"],
        errors=["user_not_found", "last_owner", "contact_is_owner"],
    )
    def remove_user(self, request: Request, user_id: str, company: dict[str, Any]) -> None:
        """→ 204; the audit trail keeps the user's email. 409 `last_owner`,
        `contact_is_owner`."""
        self.auth.remove_user(company["customer_id"], user_id)

    @route(
        "POST",
        "/api/v1/users/<user_id>/disable",
        summary="Disable a user: no more logins, their sessions end at once",
        response=schemas.UserOut,
        auth="session",
        roles=roles.OWNERS,
        tags=["users"],
        errors=["user_not_found", "last_owner", "contact_is_owner"],
    )
    def disable_user(
        self, request: Request, user_id: str, company: dict[str, Any]
    ) -> dict[str, Any]:
        """→ 200 the user with `status: "disabled"` (again: the same)."""
        return self.auth.disable_user(company["customer_id"], user_id)

    @route(
        "POST",
        "/api/v1/users/<user_id>/enable",
        summary="Enable a disabled user again",
        response=schemas.UserOut,
        auth="session",
        roles=roles.OWNERS,
        tags=["users"],
        errors=["user_not_found"],
    )
    def enable_user(
        self, request: Request, user_id: str, company: dict[str, Any]
    ) -> dict[str, Any]:
        """→ 200 the user with `status: "active"` (`invited` if they never set a password)."""
        return self.auth.enable_user(company["customer_id"], user_id)

    @route(
        "POST",
        "/api/v1/users/<user_id>/invitation",
        summary="Send an invited user a new invitation link (the old links stop working)",
        response=schemas.UserOut,
        auth="session",
        roles=roles.OWNERS,
        tags=["users"],
        errors=["user_not_found", "invitation_not_pending"],
    )
    def resend_invitation(
        self, request: Request, user_id: str, company: dict[str, Any]
    ) -> dict[str, Any]:
        """→ 200 the user with its new `invitation_expires_at`; 409 `invitation_not_pending`
        once the user has accepted."""
        return self.auth.resend_invitation(company["customer_id"], user_id)

    @route(
        "POST",
        "/api/v1/invitations/accept",
        summary="Accept an invitation: set your password with the token from the email",
        body=schemas.AcceptInvitationBody,
        status=204,
        tags=["users"],
        errors=["invalid_token", "weak_password"],
    )
    def accept_invitation(self, request: Request, body: dict[str, Any]) -> None:
        """`{"token": "…", "password": "…"}` → 204 (no session: log in next); 400
        `invalid_token` for an unknown, used or expired token."""
        self.auth.accept_invitation(body)

    @route(
        "GET",
        "/api/v1/audit-events",
        summary="The company's audit trail, newest first: who did what, when; filter with "
        "?user_id=&action=&since=&until=, page with ?limit=1..200 (default 50) and "
        "?before=<next_before>; `Accept: text/csv` or ?format=csv downloads it as CSV",
        response=schemas.AuditPage,
        auth="session",
        roles=roles.OWNERS,
        tags=["users"],
        errors=["validation_error"],
    )
    def audit_events(self, request: Request, company: dict[str, Any]) -> Any:
        """→ `{events: [{event_id, at, actor: {type, user_id, email}, action, target: {type,
        id}, details}], next_before}`; as CSV (`audit-events.csv`, columns `at, actor_type,
        actor_email, action, target_type, target_id, details`) every matching event from
        `before` on, at most 10,000 rows."""
        query, as_csv = audit_trail.query_of(request, company["customer_id"])
        if as_csv:
            events = audit_trail.every_event(self.auth, self.licensing, self.billing, query)
            return audit_trail.csv_response(events)
        return audit_trail.page(self.auth, self.licensing, self.billing, query)

    # --- health, readiness and the API description --------------------------------------

    @route("GET", "/healthz", summary="The gateway process is up", tags=["ops"])
    def healthz(self, request: Request) -> dict[str, Any]:
        """→ `{"status": "ok"}`, asking no one."""
        return {"status": "ok"}

    @route(
        "GET",
        "/readyz",
        summary="Every service answers a ping over RPC (503 naming those that do not)",
        response=schemas.Health,
        tags=["ops"],
    )
    def readyz(self, request: Request) -> Reply:
        """→ `{"status": "ready", "services": {"auth": "ok", …}}`, or 503 `"unavailable"`."""
        clients = {
            "auth": self.auth,
            "licensing": self.licensing,
            "billing": self.billing,
            "notify": self.notify,
        }
        answer = health.readiness(clients)
        return Reply(answer, status=200 if answer["status"] == "ready" else 503)

    @route("GET", "/api/v1/openapi.json", summary="This API as OpenAPI 3", tags=["ops"])
    def openapi_document(self, request: Request) -> dict[str, Any]:
        """→ the OpenAPI 3 document of every route, from the same schemas."""
        return openapi.build()

    # --- the portal's pages: a cookie session, or a redirect to the login page -----------

    @route(
        "GET",
        "/",
        summary="The portal: licenses when logged in, else the login page",
        tags=["web"],
        content_type="text/html",
    )
    def index(self, request: Request) -> Response:
        return pages.see_other("/licenses" if sessions.cookie_token(request) else "/login")

    @route("GET", "/login", summary="Log in page", tags=["web"], content_type="text/html")
    def login_page(self, request: Request) -> Response:
        if not request.args.get("signed_out") and sessions.logged_in(self.auth, request):
            return pages.after_login(request)
        return pages.public_page("login.html", title="Log in")

    @route(
        "GET",
        "/forgot-password",
        summary="Ask for a password reset link",
        tags=["web"],
        content_type="text/html",
    )
    def forgot_password_page(self, request: Request) -> Response:
        return pages.public_page("forgot-password.html", title="Reset your password")

    @route(
        "GET",
        "/reset-password",
        summary="The page a reset email links to (the token travels in the URL fragment)",
        tags=["web"],
        content_type="text/html",
    )
    def reset_password_page(self, request: Request) -> Response:
        return pages.public_page("reset-password.html", title="Set a new password")

    @route(
        "GET", "/licenses", summary="Licenses & Activations", tags=["web"], content_type="text/html"
    )
    def licenses_page(self, request: Request) -> Response:
        return pages.portal_page(
            self.auth, request, "licenses.html", title="Licenses & Activations", nav="licenses"
        )

    @route(
        "GET",
        "/licenses/<license_id>",
        summary="License details",
        tags=["web"],
        content_type="text/html",
    )
    def license_page(self, request: Request, license_id: str) -> Response:
        license_id = license_id[:64]
        return pages.portal_page(
            self.auth,
            request,
            "license.html",
            title=f"License {license_id}",
            nav="licenses",
            license_id=license_id,
        )

    @route("GET", "/payments", summary="Payment history", tags=["web"], content_type="text/html")
    def payments_page(self, request: Request) -> Response:
        return pages.portal_page(
            self.auth,
            request,
            "payments.html",
            roles=roles.BILLING_USERS,
            title="Payment history",
            nav="payments",
        )

    @route(
        "GET",
        "/payments/<receipt_number>",
        summary="A receipt as a portal page, with Print (the API's receipt route stays for "
        "API clients)",
        tags=["web"],
        content_type="text/html",
    )
    def receipt_page(self, request: Request, receipt_number: str) -> Response:
        receipt_number = receipt_number[:64]
        return pages.portal_page(
            self.auth,
            request,
            "receipt-page.html",
            roles=roles.BILLING_USERS,
            title=f"Receipt {receipt_number}",
            nav="payments",
            fill=pages.receipt_page(self.billing, receipt_number),
        )

    @route(
        "GET",
        "/recurring-payments",
        summary="Recurring payments",
        tags=["web"],
        content_type="text/html",
    )
    def recurring_payments_page(self, request: Request) -> Response:
        return pages.portal_page(
            self.auth,
            request,
            "recurring-payments.html",
            roles=roles.BILLING_USERS,
            title="Recurring payments",
            nav="recurring",
            csp=payments.checkout_csp(),
        )

    @route("GET", "/buy", summary="Buy or renew a plan", tags=["web"], content_type="text/html")
    def buy_page(self, request: Request) -> Response:
        return pages.portal_page(
            self.auth,
            request,
            "buy.html",
            roles=roles.BILLING_USERS,
            title="Buy or renew",
            nav="buy",
            csp=payments.checkout_csp(),
        )

    @route(
        "GET",
        "/account",
        summary="Company account and password",
        tags=["web"],
        content_type="text/html",
    )
    def account_page(self, request: Request) -> Response:
        return pages.portal_page(self.auth, request, "account.html", title="Account", nav="account")

    @route("GET", "/users", summary="The company's users", tags=["web"], content_type="text/html")
    def users_page(self, request: Request) -> Response:
        return pages.portal_page(
            self.auth, request, "users.html", roles=roles.OWNERS, title="Users", nav="users"
        )

    @route("GET", "/activity", summary="The audit trail", tags=["web"], content_type="text/html")
    def activity_page(self, request: Request) -> Response:
        return pages.portal_page(
            self.auth,
            request,
            "activity.html",
            roles=roles.OWNERS,
            title="Activity",
            nav="activity",
        )

    @route(
        "GET",
        "/accept-invitation",
        summary="The page an invitation email links to (the token travels in the URL fragment)",
        tags=["web"],
        content_type="text/html",
    )
    def accept_invitation_page(self, request: Request) -> Response:
        return pages.public_page("accept-invitation.html", title="Accept your invitation")

    # --- the portal's browser session ----------------------------------------------------

    @route(
        "POST",
        "/web/session",
        summary="Log in the portal: the session goes into an HttpOnly cookie, not the body",
        body=schemas.LoginBody,
        response=schemas.WebSessionOut,
        status=201,
        tags=["web"],
        errors=["invalid_credentials", "too_many_attempts", "csrf_failed"],
    )
    def create_web_session(self, request: Request, body: dict[str, Any]) -> Reply:
        """`{"login": "C4829113", "password": "..."}` → 201 `{expires_at, company}`, cookies
        `portal_session` (HttpOnly, SameSite=Lax) and `portal_csrf` (readable, Strict), both
        `__Host-` prefixed over HTTPS."""
        sessions.check_login_origin(request)
        session = self.auth.login(clients.with_client_address(body, request))

        def set_cookies(response: Response) -> None:
            sessions.set_cookies(response, session["token"], session["expires_at"])

        return Reply(session, finish=set_cookies)

    @route(
        "POST",
        "/web/logout",
        summary="Log out of the portal: revoke the cookie session and clear the cookies",
        tags=["web"],
        errors=["csrf_failed"],
        content_type="text/html",
    )
    def web_logout(self, request: Request) -> Response:
        """A form post (`csrf` field) or a fetch (`X-CSRF-Token`) → 303 to the login page."""
        if not sessions.end_cookie_session(self.auth, request):
            return pages.out_of_date()
        return pages.signed_out()

    @route(
        "GET",
        "/static/<path:name>",
        summary="Static files of the portal",
        tags=["web"],
        content_type="application/octet-stream",
    )
    def static(self, request: Request, name: str) -> Response:
        return pages.static_file(name)


def _session_user_id(company: dict[str, Any]) -> str:
    """The session's own user (auth's `authenticate` names it); an older auth that names
    none answers `unauthenticated`, as for a session it no longer knows."""
    user = company.get("user") or {}
    if not user.get("user_id"):
        raise PortalError("Please log in again.", code="unauthenticated")
    return user["user_id"]
