"""Demo history for `portalctl demo`: past portal payments and a recurring payment.

Past payments cannot be bought through the provider (their dates are gone), so they are
written as they would have been recorded, paid with the sandbox's Visa test card. One
`payment_succeeded` event covers the subscription so far, so licensing issues its license.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from common.unit_of_work import Outcome
from services.billing import domain, views
from services.billing.exceptions import PlanNotFound
from services.billing.models import PaymentMethod, RecurringPayment
from services.billing.repository import BillingRepository
from services.billing.use_cases.receipts import new_payment


def seed_history(
    repo: BillingRepository, now: datetime, customer_id: str, plan_code: str, seats: int
) -> Outcome:
    """Two paid periods of `plan_code` ending a few days from now, and the next charge then.

    Idempotent: a customer that already has payments gets `{"created": false}`.
    """
    if repo.has_payments(customer_id):
        return Outcome({"created": False})
    plan = repo.plan_by_code(plan_code)
    if plan is None:
        raise PlanNotFound(details={"code": plan_code})
    method = PaymentMethod(
        customer_id=customer_id,
        provider="sandbox",
        token=f"pm_sandbox_ok_{secrets.token_hex(8)}",
        brand="visa",
        last4="4242",
        exp_month=12,
        exp_year=now.year + 3,
        created_at=now,
    )
    repo.add(method)
    next_charge = (now + timedelta(days=5)).replace(hour=9, minute=0, second=0, microsecond=0)
    starts = [domain.add_interval(next_charge, plan.interval, -2)]
    starts.append(domain.add_interval(next_charge, plan.interval, -1))
    amount = domain.line_total(plan.amount, seats)
    recurring = RecurringPayment(
        reference=domain.new_reference(),
        customer_id=customer_id,
        plan_code=plan.code,
        product_code=plan.product_code,
        product_name=plan.product_name,
        seats=seats,
        amount=amount,
        currency=plan.currency,
        interval=plan.interval,
        payment_method_id=method.id,
        next_charge_at=next_charge,
        status="active",
        failures=0,
        created_at=starts[0],
    )
    repo.add(recurring)
    payments = []
    for index, start in enumerate(starts):
        kind = "new" if index == 0 else "renewal"
        end = starts[index + 1] if index + 1 < len(starts) else next_charge
        payments.append(
            new_payment(
                repo,
                start,
                customer_id=customer_id,
                amount=amount,
                currency=plan.currency,
                description=domain.describe_purchase(
                    plan.product_name or plan.product_code, plan.code, seats, plan.interval, kind
                ),
                channel="portal",
                kind=kind,
                features=domain.feature_codes(plan.features),
                **views.license_terms(plan).to_dict(),
                plan_code=plan.code,
                product_code=plan.product_code,
                product_name=plan.product_name,
                seats=seats,
                unit_amount=plan.amount,
                period_start=start,
                period_end=end,
                recurring_payment_id=recurring.id,
                card_brand="visa",
                card_last4="4242",
                provider_charge_id=f"ch_sandbox_demo_{secrets.token_hex(6)}",
            )
        )
    recurring.origin_receipt = payments[0].receipt_number
    # one event for the subscription so far: licensing issues a license until the next charge
    return Outcome(
        {
            "created": True,
            "payments": [views.payment_view(payment) for payment in payments],
            "recurring_payment": views.recurring_view(recurring, method),
        },
        [views.payment_succeeded(payments[0], plan.interval, period_end=next_charge)],
    )
