from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from members.models import User

from .. import intervals as iv
from ..models import Policy, SourceKind

POLICY_RULE_FIELDS = (
    "threshold_minutes",
    "ratio_own",
    "ratio_incident",
    "cap_per_event_minutes",
    "cap_window_days",
    "cap_window_minutes",
    "appeal_window_hours",
    "coupon_min_disconnects",
    "coupon_window_days",
    "coupon_value",
    "coupon_valid_days",
    "lapsed_extends_from_credit_time",
    "sla_first_response_hours",
    "usage_weighting",
    "usage_weight_ceiling",
    "usage_window_days",
)


def policy_current() -> Policy:
    """The policy in force: the highest published version. Version 1 holds
    the defaults of DESIGN section 5; it is created by a migration, and again
    here if a database was restored or flushed without it."""
    policy = Policy.objects.order_by("-version").first()
    if policy is None:
        Policy.objects.bulk_create(
            [Policy(version=1, published_at=timezone.now(), change_note="Initial policy")],
            ignore_conflicts=True,
        )
        policy = Policy.objects.order_by("-version").first()
    return policy


def policy_publish(*, changes: dict, actor: User | None, note: str, now: datetime) -> Policy:
    """Publish a new version: the current rules with ``changes`` applied.

    Published versions are never edited, so a compensation can always be
    re-explained with the exact rules it was computed under.
    """
    unknown = set(changes) - set(POLICY_RULE_FIELDS)
    if unknown:
        raise ValueError(f"Not policy rules: {sorted(unknown)}")
    for _attempt in range(5):
        current = policy_current()
        values = {field: getattr(current, field) for field in POLICY_RULE_FIELDS}
        values.update(changes)
        version = (Policy.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        policy = Policy(
            version=version, change_note=note, published_at=now, published_by=actor, **values
        )
        policy.full_clean()
        try:
            with transaction.atomic():
                policy.save()
            return policy
        except IntegrityError:
            continue  # another supervisor published at the same moment; rebase
    raise RuntimeError("Could not publish the policy; try again.")


def policy_ratio(policy: Policy, source_kind: str) -> Decimal:
    return policy.ratio_incident if source_kind == SourceKind.INCIDENT else policy.ratio_own


def policy_quote(
    policy: Policy,
    *,
    lost_seconds: float,
    ratio: Decimal,
    already_credited_in_window: int,
) -> iv.CreditCalculation:
    """What ``lost_seconds`` is worth under ``policy``. The compensation
    engine and the public calculator both call this: one copy of the rules."""
    return iv.calculate_credit(
        lost_seconds=lost_seconds,
        ratio=ratio,
        cap_per_event_minutes=policy.cap_per_event_minutes,
        cap_window_minutes=policy.cap_window_minutes,
        already_credited_in_window=already_credited_in_window,
    )
