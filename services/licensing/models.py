"""The licensing database."""

from sqlalchemy.orm import DeclarativeBase


class LicensingBase(DeclarativeBase):
    """The licensing service's own metadata: no table is shared with another service."""
