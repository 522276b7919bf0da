"""Django admin of the compensation app; every action declares its permission
and every write goes through a service."""

from . import adjustments, memberships, operations, records, status

__all__ = ["adjustments", "memberships", "operations", "records", "status"]
