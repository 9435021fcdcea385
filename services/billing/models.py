"""The billing database."""

from sqlalchemy.orm import DeclarativeBase


class BillingBase(DeclarativeBase):
    """The billing service's own metadata: no table is shared with another service."""
