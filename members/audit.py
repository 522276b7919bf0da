"""The staff audit trail: who changed what, when, before → after, from which
address (DESIGN §4 "Staff act within their role, on the record").

django-auditlog records every save of the models listed in
``settings.AUDITLOG_INCLUDE_TRACKING_MODELS`` with the request's user and
client address (this middleware). Writes that bypass ``save()`` (bulk
updates) are recorded explicitly with ``audit_record``. The rows are
append-only: nobody can change or delete them in admin, and on PostgreSQL a
trigger refuses UPDATE and DELETE (migration members/0008).
"""

from __future__ import annotations

from auditlog.middleware import AuditlogMiddleware
from auditlog.models import LogEntry
from django.db.models import Model

from .security import client_ip


class AuditMiddleware(AuditlogMiddleware):
    """auditlog's middleware with our client address: the left-most
    X-Forwarded-For entry it would trust is written by the client, so a
    forged header could hide who acted (members.security.client_ip honours
    PROXY_COUNT instead)."""

    @staticmethod
    def _get_remote_addr(request):
        return client_ip(request)

    @staticmethod
    def _get_remote_port(request):
        return None


def audit_record(instance: Model, *, changes: dict[str, list], actor=None) -> LogEntry | None:
    """Record a change made without ``save()`` (e.g. a bulk ``update``):
    ``changes`` maps each field to ``[old, new]``. The actor defaults to the
    current request's user (set by the middleware)."""
    return LogEntry.objects.log_create(
        instance,
        force_log=True,
        action=LogEntry.Action.UPDATE,
        changes={field: [str(old), str(new)] for field, (old, new) in changes.items()},
        actor=actor,
        actor_email=getattr(actor, "email", None),
    )
