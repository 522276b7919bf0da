from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet

from compensation.models import Disconnect, LedgerEntry
from members.models import MemberProfile, User

from .models import Appeal


def member_appeals(*, member: MemberProfile) -> QuerySet[Appeal]:
    return (
        Appeal.objects.filter(member=member)
        .select_related("node", "disconnect")
        .order_by("-created_at")
    )


def appeal_for_viewer(*, user: User, public_id) -> Appeal | None:
    """The appeal if ``user`` may see it: its member, or staff who may view
    appeals. Anyone else gets None (a 404, so ids reveal nothing)."""
    appeal = (
        Appeal.objects.select_related(
            "member__user", "node", "disconnect", "assigned_to", "claim__entry"
        )
        .filter(public_id=public_id)
        .first()
    )
    if appeal is None:
        return None
    if appeal.member.user_id == user.pk:
        return appeal
    if user.is_staff and user.has_perm("appeals.view_appeal"):
        return appeal
    return None


def appeal_context_records(*, appeal: Appeal, margin: timedelta = timedelta(hours=6)):
    """The member's disconnects and ledger entries around the claimed time."""
    lo, hi = appeal.claimed_start - margin, appeal.claimed_end + margin
    disconnects = list(
        Disconnect.objects.filter(
            member_id=appeal.member_id, started_at__lt=hi, started_at__gt=lo - timedelta(days=1)
        )
        .select_related("node", "incident")
        .order_by("started_at")
    )
    entries = list(
        LedgerEntry.objects.filter(
            member_id=appeal.member_id, covered_end__gt=lo, covered_start__lt=hi
        )
        .select_related("member", "reverses")
        .order_by("seq")
    )
    return disconnects, entries
