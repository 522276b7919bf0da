"""The one path by which membership time is credited.

Invariants (DESIGN section 4):
- each lost minute is paid once: a claim pays only the part of its intervals
  not already covered for that member, whatever source covered it;
- only time inside the paid membership is paid;
- membership time changes only together with a ledger entry, in one
  transaction;
- an idempotency key per source makes retries and concurrent calls return
  the first decision instead of paying again.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from kamen_portal.bulk import copy_insert
from members.models import MemberProfile, MemberStatus
from members.services.notify import notify_many

from .. import intervals as iv
from .. import notices
from .. import usage_weighting as uw
from ..models import (
    Claim,
    Coupon,
    CoveredSpan,
    LedgerEntry,
    LedgerKind,
    Outcome,
    Policy,
    SourceKind,
)
from ..selectors import credited_in_cap_window
from .chain import ledger_append
from .policy import policy_current, policy_quote, policy_ratio
from .usage import usage_profiles


@dataclass
class ClaimRequest:
    member_id: int
    intervals: list[iv.Interval]
    source_kind: str
    source_ref: str
    idempotency_key: str
    ratio: Decimal | None = None  # None: the policy's ratio for the source
    note: str = ""
    # A staff decision (approved appeal): credit exactly this many minutes,
    # caps not applied. The union rule still decides what counts as covered.
    minutes_override: int | None = None
    after_commit: list = field(default_factory=list)


def _ratio_for(policy: Policy, request: ClaimRequest) -> Decimal:
    if request.ratio is not None:
        return Decimal(request.ratio)
    return policy_ratio(policy, request.source_kind)


def _serialize(intervals: list[iv.Interval]) -> list[list[str]]:
    return [[s.isoformat(), e.isoformat()] for s, e in intervals]


def compensation_credit(
    *,
    member_id: int,
    intervals: list[iv.Interval],
    source_kind: str,
    source_ref: str,
    idempotency_key: str,
    now: datetime,
    ratio: Decimal | None = None,
    note: str = "",
    minutes_override: int | None = None,
) -> Claim:
    """Credit one member for one source; see compensation_credit_many."""
    request = ClaimRequest(
        member_id=member_id,
        intervals=intervals,
        source_kind=source_kind,
        source_ref=source_ref,
        idempotency_key=idempotency_key,
        ratio=ratio,
        note=note,
        minutes_override=minutes_override,
    )
    return compensation_credit_many(requests=[request], now=now)[0]


def compensation_credit_many(*, requests: list[ClaimRequest], now: datetime) -> list[Claim]:
    """Decide and pay a batch of claims in one transaction (incident fan-out
    uses batches of hundreds). Returns one Claim per request, in order; a
    request whose key was already decided gets the earlier decision."""
    if not requests:
        return []
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return _credit_many_locked(requests, now)
        except IntegrityError:
            # A concurrent caller committed one of our keys between our
            # check and our insert; the retry will find its decision.
            continue
    raise RuntimeError("Could not record compensation decisions after retries.")


@dataclass
class Assessment:
    ratio: Decimal
    requested: list[iv.Interval]
    new: list[iv.Interval]
    calc: iv.CreditCalculation
    outcome: str
    reason: str
    weighting: uw.Weighting | None = None  # usage weighting (policy option)


def _assess(
    member: MemberProfile,
    request: ClaimRequest,
    *,
    covered: list[iv.Interval],
    already: int,
    policy: Policy,
    profile: dict | None = None,
) -> Assessment:
    """What one claim is worth for ``member`` now: the uncovered part of its
    intervals inside the paid membership, under the policy (pure reads)."""
    ratio = _ratio_for(policy, request)
    requested = iv.normalize(request.intervals)
    eligible = (
        iv.clip(requested, start=None, end=member.expires_at)
        if member.expires_at is not None and member.status == MemberStatus.ACTIVE
        else []
    )
    new = iv.subtract(eligible, covered)
    # Personalisation only adds: the factor is >= 1 and caps apply after it.
    weighting = uw.weigh(new, **profile) if profile and request.minutes_override is None else None
    calc = policy_quote(
        policy,
        lost_seconds=iv.total_seconds(new),
        ratio=ratio * (weighting.factor if weighting else 1),
        already_credited_in_window=already,
    )
    if request.minutes_override is not None:
        calc = iv.CreditCalculation(
            lost_seconds=calc.lost_seconds,
            raw_minutes=calc.raw_minutes,
            event_capped_minutes=0,
            window_capped_minutes=0,
            credited_minutes=max(int(request.minutes_override), 0),
        )
        outcome = Outcome.CREDITED if calc.credited_minutes else Outcome.NOT_ELIGIBLE
        return Assessment(ratio, requested, new, calc, outcome, "staff_decision")
    if not eligible:
        outcome, reason = Outcome.NOT_ELIGIBLE, "membership_inactive"
    elif not new:
        outcome, reason = Outcome.COVERED, "already_covered"
    elif calc.credited_minutes == 0 and calc.raw_minutes > 0:
        outcome, reason = Outcome.CAPPED, "cap_reached"
    elif calc.credited_minutes == 0:
        outcome, reason = Outcome.NOT_ELIGIBLE, "nothing_to_credit"
    elif calc.withheld_minutes:
        outcome, reason = Outcome.PARTLY_CAPPED, "cap_reached"
    else:
        outcome, reason = Outcome.CREDITED, ""
    return Assessment(ratio, requested, new, calc, outcome, reason, weighting)


def compensation_preview(
    *, member_id: int, intervals: list[iv.Interval], source_kind: str, now: datetime
) -> Assessment:
    """What crediting ``intervals`` would pay right now, without writing
    anything (staff see it as the suggested credit of an appeal)."""
    policy = policy_current()
    member = MemberProfile.objects.get(pk=member_id)
    envelope = iv.envelope(intervals)
    covered = (
        list(
            CoveredSpan.objects.filter(
                member_id=member_id, start__lt=envelope[1], end__gt=envelope[0]
            ).values_list("start", "end")
        )
        if envelope
        else []
    )
    already = credited_in_cap_window(member_id=member_id, now=now, policy=policy)
    request = ClaimRequest(
        member_id=member_id,
        intervals=intervals,
        source_kind=source_kind,
        source_ref="",
        idempotency_key="",
    )
    profile = usage_profiles(policy=policy, member_ids=[member_id], now=now).get(member_id)
    return _assess(
        member, request, covered=covered, already=already, policy=policy, profile=profile
    )


def _credit_many_locked(requests: list[ClaimRequest], now: datetime) -> list[Claim]:
    keys = [r.idempotency_key for r in requests]
    member_ids = sorted({r.member_id for r in requests})
    # Lock members first, in primary-key order (then the ledger head, inside
    # ledger_append): concurrent credits for a member serialise here, so the
    # union and cap arithmetic below sees every earlier decision.
    members = {
        m.pk: m
        for m in MemberProfile.objects.select_for_update().filter(pk__in=member_ids).order_by("pk")
    }
    decided = {c.idempotency_key: c for c in Claim.objects.filter(idempotency_key__in=keys)}
    todo = [r for r in requests if r.idempotency_key not in decided]
    # The same key twice in one batch is decided once.
    seen: set[str] = set()
    todo = [r for r in todo if not (r.idempotency_key in seen or seen.add(r.idempotency_key))]
    if not todo:
        return [decided[k] for k in keys]

    policy = policy_current()
    envelope = iv.envelope(i for r in todo for i in r.intervals)
    covered: dict[int, list[iv.Interval]] = defaultdict(list)
    if envelope is not None:
        for span in CoveredSpan.objects.filter(
            member_id__in=member_ids, start__lt=envelope[1], end__gt=envelope[0]
        ).values_list("member_id", "start", "end"):
            covered[span[0]].append((span[1], span[2]))
    window_start = now - timedelta(days=policy.cap_window_days)
    in_window = dict(
        Claim.objects.filter(member_id__in=member_ids, created_at__gt=window_start)
        .values("member_id")
        .annotate(total=Sum("credited_minutes"))
        .values_list("member_id", "total")
    )
    profiles = usage_profiles(policy=policy, member_ids=member_ids, now=now)

    claims: list[Claim] = []
    entries: list[LedgerEntry] = []
    spans: list[tuple[Claim, list[iv.Interval]]] = []
    changed_members: dict[int, MemberProfile] = {}
    for request in todo:
        member = members.get(request.member_id)
        if member is None:
            continue
        assessment = _assess(
            member,
            request,
            covered=covered[member.pk],
            already=in_window.get(member.pk) or 0,
            policy=policy,
            profile=profiles.get(member.pk),
        )
        ratio, requested, new, calc = (
            assessment.ratio,
            assessment.requested,
            assessment.new,
            assessment.calc,
        )
        outcome, reason = assessment.outcome, assessment.reason

        claim = Claim(
            idempotency_key=request.idempotency_key,
            member_id=member.pk,
            source_kind=request.source_kind,
            source_ref=request.source_ref,
            requested=_serialize(requested),
            paid=_serialize(new),
            lost_seconds=calc.lost_seconds,
            raw_minutes=calc.raw_minutes,
            event_capped_minutes=calc.event_capped_minutes,
            window_capped_minutes=calc.window_capped_minutes,
            credited_minutes=calc.credited_minutes,
            ratio=ratio,
            outcome=outcome,
            reason=reason,
            policy=policy,
            created_at=now,
        )
        if calc.credited_minutes > 0:
            # A staff-decided credit may pay withheld minutes of time already
            # covered: the entry then names the claimed span itself.
            span = iv.envelope(new) or iv.envelope(requested)
            new_expiry = iv.extend_expiry(
                expires_at=member.expires_at,
                minutes=calc.credited_minutes,
                credited_at=now,
                lapsed_extends_from_credit_time=policy.lapsed_extends_from_credit_time,
            )
            entry = LedgerEntry(
                member_id=member.pk,
                kind=LedgerKind.CREDIT,
                minutes=calc.credited_minutes,
                source_kind=request.source_kind,
                source_ref=request.source_ref,
                covered_start=span[0],
                covered_end=span[1],
                policy_version=policy.version,
                expires_before=member.expires_at,
                expires_after=new_expiry,
                note=request.note[:300],
                weighting=assessment.weighting.as_json() if assessment.weighting else None,
                created_at=now,
            )
            entries.append(entry)
            claim.entry = entry
            member.expires_at = new_expiry
            changed_members[member.pk] = member
            in_window[member.pk] = (in_window.get(member.pk) or 0) + calc.credited_minutes
        if new:
            covered[member.pk] = iv.normalize(covered[member.pk] + new)
            spans.append((claim, new))
        claims.append(claim)

    # Everything that does not need the chain first; the ledger head is locked
    # from ledger_append until commit, so it comes last to keep concurrent
    # payouts from queueing behind each other.
    _set_expiries(list(changed_members.values()))
    notify_many(
        messages=[
            notices.credited(c, tz=members[c.member_id].timezone)
            for c in claims
            if c.entry is not None
        ],
        now=now,
    )
    ledger_append(entries, member_nos={pk: m.member_no for pk, m in members.items()})
    for claim in claims:
        if claim.entry is not None:
            # Re-assigning the now-saved entry sets entry_id and keeps the
            # cached object (reading .entry later costs no query).
            claim.entry = claim.entry
    # By COPY on PostgreSQL: the JSON interval lists of 500 claims were the
    # slowest part of bulk_create's UNNEST (kamen_portal.bulk).
    copy_insert(claims)
    copy_insert(
        [
            CoveredSpan(
                member_id=claim.member_id,
                claim_id=claim.pk,
                entry_id=claim.entry_id,
                start=s,
                end=e,
            )
            for claim, new in spans
            for s, e in new
        ]
    )
    coupons = _issue_coupons(claims, members=members, policy=policy, now=now)
    notify_many(
        messages=[notices.coupon_issued(c, tz=members[c.member_id].timezone) for c in coupons],
        now=now,
    )

    by_key = {c.idempotency_key: c for c in claims}
    by_key.update(decided)
    return [by_key[k] for k in keys if k in by_key]


def _set_expiries(members: list[MemberProfile]) -> None:
    """Write the new expiries of a batch in one statement."""
    if not members:
        return
    if connection.vendor == "postgresql":
        # One UPDATE ... FROM unnest(...) instead of a 500-branch CASE.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE members_memberprofile AS m SET expires_at = v.expires_at "
                "FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, expires_at) WHERE m.id = v.id",
                [[m.pk for m in members], [m.expires_at for m in members]],
            )
    else:
        MemberProfile.objects.bulk_update(members, ["expires_at"])


def _issue_coupons(
    claims: list[Claim], *, members: dict[int, MemberProfile], policy: Policy, now: datetime
) -> list[Coupon]:
    """Frequent-disconnect rule: N or more compensated own disconnects within
    the coupon window earn one coupon, at most one per window. Runs under the
    member locks taken above, so two credits cannot both issue one."""
    candidates = {
        c.member_id
        for c in claims
        if c.source_kind == SourceKind.DISCONNECT and c.credited_minutes > 0
    }
    issued = []
    since = now - timedelta(days=policy.coupon_window_days)
    for member_id in sorted(candidates):
        count = Claim.objects.filter(
            member_id=member_id,
            source_kind=SourceKind.DISCONNECT,
            credited_minutes__gt=0,
            created_at__gt=since,
        ).count()
        if count < policy.coupon_min_disconnects:
            continue
        if Coupon.objects.filter(member_id=member_id, issued_at__gt=since).exists():
            continue
        issued.append(
            Coupon.objects.create(
                member_id=member_id,
                code="KMC-" + secrets.token_hex(5).upper(),
                value=policy.coupon_value,
                issued_at=now,
                expires_at=now + timedelta(days=policy.coupon_valid_days),
                policy_version=policy.version,
                reason=f"{count} compensated disconnects within {policy.coupon_window_days} days",
            )
        )
    return issued
