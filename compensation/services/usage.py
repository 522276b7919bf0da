"""Members' usage profiles: written by the sampling of the health pass
(compensation.services.health.usage_sample_node), read by the credit and the
policy calculator. Counts only (see compensation/usage_weighting.py)."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from members.models import MemberProfile

from .. import usage_weighting as uw
from ..models import Policy, UsageProfile
from .policy import policy_current


def _zone(name: str | None) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def usage_add(*, member_ids: list[int], at: datetime, minutes: int, now: datetime) -> int:
    """Record ``minutes`` of activity at ``at`` for each member (counts only)."""
    window = policy_current().usage_window_days
    zones = dict(MemberProfile.objects.filter(pk__in=member_ids).values_list("pk", "timezone"))
    with transaction.atomic():
        existing = {
            p.member_id: p
            for p in UsageProfile.objects.select_for_update()
            .filter(member_id__in=member_ids)
            .order_by("member_id")
        }
        changed, created = [], []
        for member_id in member_ids:
            if member_id not in zones:
                continue
            local = at.astimezone(_zone(zones[member_id]))
            profile = existing.get(member_id)
            weeks = uw.add_minutes(
                profile.weeks if profile else {},
                at_local=local,
                minutes=minutes,
                window_days=window,
            )
            if profile is None:
                created.append(UsageProfile(member_id=member_id, weeks=weeks, updated_at=now))
            else:
                profile.weeks, profile.updated_at = weeks, now
                changed.append(profile)
        UsageProfile.objects.bulk_update(changed, ["weeks", "updated_at"], batch_size=1000)
        # A concurrent sample of another node may have created the row first:
        # losing one sample of one member is harmless; failing the batch is not.
        UsageProfile.objects.bulk_create(created, ignore_conflicts=True, batch_size=1000)
    return len(changed) + len(created)


def usage_profiles(*, policy: Policy, member_ids, now: datetime) -> dict[int, dict]:
    """What ``usage_weighting.weigh`` needs per member, for the credit: empty
    when the policy's option is off (credits are then exactly as before)."""
    if not policy.usage_weighting:
        return {}
    result = {}
    for member_id, weeks, tz in UsageProfile.objects.filter(member_id__in=member_ids).values_list(
        "member_id", "weeks", "member__timezone"
    ):
        today = now.astimezone(_zone(tz)).date()
        result[member_id] = {
            "profile": uw.fold(weeks, today=today, window_days=policy.usage_window_days),
            "ceiling": policy.usage_weight_ceiling,
            "timezone": tz or settings.TIME_ZONE,
        }
    return result


def usage_profile_for(*, member: MemberProfile, now: datetime) -> list[int]:
    """The member's folded profile under the current policy window."""
    policy = policy_current()
    row = UsageProfile.objects.filter(member=member).first()
    if row is None:
        return [0] * uw.HOURS_PER_WEEK
    today = now.astimezone(_zone(member.timezone)).date()
    return uw.fold(row.weeks, today=today, window_days=policy.usage_window_days)


def usage_quote(
    *, policy: Policy, member: MemberProfile | None, start: datetime | None, minutes: int, now
) -> uw.Weighting | None:
    """The public calculator's weighting for a signed-in member: their own
    profile, the same ``weigh`` as the credit. None when the option is off,
    for visitors, or when the loss falls in no habitual hour."""
    if not policy.usage_weighting or member is None or start is None or minutes <= 0:
        return None
    profile = usage_profiles(policy=policy, member_ids=[member.pk], now=now).get(member.pk)
    if not profile:
        return None
    local = start.replace(tzinfo=None).replace(tzinfo=_zone(member.timezone))
    return uw.weigh([(local, local + timedelta(minutes=minutes))], **profile)
