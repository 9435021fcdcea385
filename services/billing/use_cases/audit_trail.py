"""The company's audit trail of billing: what the owner's activity page reads.

The facts are written by the use cases of each change (common/audit.py); this only reads.
"""

from __future__ import annotations

from typing import Any

from common.audit import AuditQuery
from services.billing.repository import BillingRepository


def list_audit_events(repo: BillingRepository, query: AuditQuery) -> list[dict[str, Any]]:
    """Up to `query.limit` events of the company, newest first (`common.audit.view`)."""
    return repo.audit_page(query)
