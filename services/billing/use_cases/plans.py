"""Plans: the price of a product per seat and interval."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common.unit_of_work import Outcome
from services.billing.exceptions import PlanExists
from services.billing.models import Plan
from services.billing.repository import BillingRepository
from services.billing.views import plan_view


def create_plan(repo: BillingRepository, data: dict[str, Any], now: datetime) -> Outcome:
    """A new plan; `plan_exists` if the code is taken (also by a concurrent create)."""
    plan = Plan(**data, created_at=now)
    if repo.plan_by_code(data["code"]) is not None or not repo.add_unique(plan):
        raise PlanExists(details={"code": data["code"]})
    return Outcome(plan_view(plan))


def list_plans(repo: BillingRepository, include_inactive: bool) -> list[dict[str, Any]]:
    return [plan_view(plan) for plan in repo.plans(active_only=not include_inactive)]
