"""Reads of the assistant's records that pages share."""

from __future__ import annotations

from django.db.models import QuerySet

from members.models import MemberProfile

from ..models import SupportRequest


def member_support_requests(*, member: MemberProfile) -> QuerySet[SupportRequest]:
    """The member's own requests to staff, newest first."""
    return (
        SupportRequest.objects.filter(member=member)
        .prefetch_related("replies")
        .order_by("-created_at")
    )
