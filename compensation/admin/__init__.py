"""Django admin of the compensation app; every action declares its permission
and every write goes through a service."""

from . import adjustments, operations, records, status

__all__ = ["adjustments", "operations", "records", "status"]
