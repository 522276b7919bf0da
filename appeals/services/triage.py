"""Matching a claim against what detection recorded and what was paid:
the suggestion staff see, and the bound of a reviewer's decision."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from compensation import intervals as iv
from compensation.models import (
    Claim,
    CoveredSpan,
    Disconnect,
    LedgerEntry,
    Outcome,
    SourceKind,
)
from compensation.services.credit import compensation_preview
from compensation.templatetags.kamen import minutes_human
from members.models import MemberProfile

from ..models import (
    Appeal,
    AppealStatus,
    EventKind,
    EvidenceKind,
)
from .common import _event


@dataclass
class Triage:
    disconnects: list[Disconnect]
    fully_credited: bool
    suggested_minutes: int
    entry_ids: list[str]
    # The claimed time not yet covered, under the ratio but before caps,
    # plus what caps withheld: the most a reviewer may credit.
    bound_minutes: int
    # What the member sees before uploading anything: the claimed span, the
    # part of it already credited (by any source), and the credits
    # (ledger entries) that touch it, for their receipts.
    claimed_minutes: int = 0
    covered_minutes: int = 0
    entries: list[LedgerEntry] | None = None


def appeal_triage(
    *, member: MemberProfile, start: datetime, end: datetime, now: datetime
) -> Triage:
    """What the portal recorded and credited for a claimed span, and what an
    appeal could still add (pure reads: the guided form shows it before any
    upload, filing stores it as the suggestion)."""
    return _triage(member, start, end, now=now)


def _triage(member: MemberProfile, start: datetime, end: datetime, *, now: datetime) -> Triage:
    """Match the claim against what detection recorded for this member."""
    overlapping = list(
        Disconnect.objects.filter(member=member, started_at__lt=end)
        .filter(Q(ended_at__gt=start) | Q(ended_at__isnull=True))
        .select_related("node")
        .order_by("started_at")
    )
    preview = compensation_preview(
        member_id=member.pk, intervals=[(start, end)], source_kind=SourceKind.APPEAL, now=now
    )
    withheld = sum(d.withheld_minutes for d in overlapping)
    credited_spans = [
        (d.started_at, d.ended_at)
        for d in overlapping
        if d.ended_at and d.outcome == Outcome.CREDITED and not d.withheld_minutes
    ]
    # Fully credited: detected and paid without caps, or (whatever paid it:
    # an incident, maintenance, an earlier appeal) nothing of the span inside
    # the paid membership is left uncovered and no cap withheld anything.
    fully = (bool(credited_spans) and not iv.subtract([(start, end)], credited_spans)) or (
        preview.outcome == Outcome.COVERED and not withheld
    )
    entries = list(
        LedgerEntry.objects.filter(
            member=member, covered_end__gt=start, covered_start__lt=end
        ).order_by("seq")[:20]
    )
    entry_ids = []
    if fully:
        refs = [f"disconnect:{d.public_id}" for d in overlapping]
        entry_ids = [
            str(c.entry.public_id)
            for c in Claim.objects.filter(
                idempotency_key__in=refs, entry__isnull=False
            ).select_related("entry")
        ] or [str(e.public_id) for e in entries if e.minutes > 0]
    claimed = iv.normalize([(start, end)])
    uncovered = iv.total_seconds(iv.subtract(claimed, _covered(member, start, end)))
    claimed_seconds = iv.total_seconds(claimed)
    return Triage(
        disconnects=overlapping,
        fully_credited=fully,
        suggested_minutes=preview.calc.credited_minutes + withheld,
        entry_ids=entry_ids,
        bound_minutes=preview.calc.raw_minutes + withheld,
        claimed_minutes=int(claimed_seconds + 59) // 60,
        covered_minutes=int(claimed_seconds - uncovered) // 60,
        entries=entries,
    )


# A log line's time: "2025-03-13 23:41", "2025-03-13T23:41:05+08:00", "2025/03/13 23:41:05".
_LOG_TIME = re.compile(
    r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?"
)
# Only the beginning of each log is read for the suggestion.
_LOG_SCAN_BYTES = 1_000_000


@dataclass
class Suggestion:
    """The credit the portal suggests to the reviewer and what it rests on:
    ``basis`` is one sentence per fact, ``codes`` the same facts for the
    audit trail."""

    minutes: int
    basis: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)


def _member_tz(member: MemberProfile):
    try:
        return zoneinfo.ZoneInfo(member.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return timezone.get_current_timezone()


def log_times_in_span(appeal: Appeal) -> tuple[datetime, datetime, str] | None:
    """The first and last time stamp inside the claimed span found in the
    appeal's log files, with the file's name; None when no log line falls in
    it. Times without an offset are read in the member's time zone (that is
    the clock their client writes)."""
    tz = _member_tz(appeal.member)
    start, end = appeal.claimed_start, appeal.claimed_end
    found: list[tuple[datetime, str]] = []
    for item in appeal.evidence.filter(kind=EvidenceKind.LOG):
        try:
            with item.file.open("rb") as handle:
                text = handle.read(_LOG_SCAN_BYTES).decode("utf-8", errors="replace")
        except OSError:
            continue
        for m in _LOG_TIME.finditer(text):
            year, month, day, hour, minute, second, offset = m.groups()
            try:
                if offset and offset != "Z":
                    sign = 1 if offset[0] == "+" else -1
                    digits = offset[1:].replace(":", "")
                    zone = timezone.get_fixed_timezone(
                        sign * (int(digits[:2]) * 60 + int(digits[2:]))
                    )
                elif offset == "Z":
                    zone = zoneinfo.ZoneInfo("UTC")
                else:
                    zone = tz
                moment = datetime(
                    int(year),
                    int(month),
                    int(day),
                    int(hour),
                    int(minute),
                    int(second or 0),
                    tzinfo=zone,
                )
            except ValueError:
                continue
            if start <= moment <= end:
                found.append((moment, item.original_name))
    if not found:
        return None
    found.sort()
    return found[0][0], found[-1][0], found[0][1]


def appeal_suggestion(*, appeal: Appeal, now: datetime, triage: Triage | None = None) -> Suggestion:
    """What the reviewer is offered, and why. Detection's records first: the
    claim's time not yet paid, under the policy, plus what caps withheld on
    the disconnects inside it. When detection recorded nothing for the span,
    only the member's log can show it (the portal cannot read screenshots):
    the suggestion is the time between the log's first and last lines inside
    the claim, or 0 with that said."""
    tz = _member_tz(appeal.member)

    def at(moment: datetime) -> str:
        return timezone.localtime(moment, tz).strftime("%m-%d %H:%M")

    start, end = appeal.claimed_start, appeal.claimed_end
    triage = triage or _triage(appeal.member, start, end, now=now)
    basis: list[str] = []
    codes: list[str] = []
    for d in triage.disconnects:
        codes.append(f"disconnect:{d.public_id}")
        basis.append(
            _(
                "Detection recorded a disconnect on %(node)s from %(start)s to %(end)s: "
                "%(credited)s credited, %(withheld)s withheld by caps."
            )
            % {
                "node": d.node.name,
                "start": at(d.started_at),
                "end": at(d.ended_at) if d.ended_at else "…",
                "credited": minutes_human(d.credited_minutes),
                "withheld": minutes_human(d.withheld_minutes),
            }
        )
    if triage.covered_minutes:
        codes.append("covered")
        basis.append(
            _("%(covered)s of the %(claimed)s claimed were already paid (see the ledger entries).")
            % {
                "covered": minutes_human(triage.covered_minutes),
                "claimed": minutes_human(triage.claimed_minutes),
            }
        )
    if triage.disconnects or triage.covered_minutes:
        codes.append("policy")
        basis.append(
            _(
                "Suggested: the claimed time not yet paid, under the policy, plus what caps "
                "withheld: %(m)s."
            )
            % {"m": minutes_human(triage.suggested_minutes)}
        )
        return Suggestion(triage.suggested_minutes, basis, codes)
    logged = log_times_in_span(appeal)
    if logged is not None and logged[1] > logged[0]:
        first, last, name = logged
        preview = compensation_preview(
            member_id=appeal.member_id,
            intervals=[(first, last)],
            source_kind=SourceKind.APPEAL,
            now=now,
        )
        minutes = preview.calc.credited_minutes
        codes.append("log")
        basis.append(
            _(
                "Detection recorded nothing between %(start)s and %(end)s. The member's log "
                "%(name)s has lines from %(first)s to %(last)s inside the claim: suggested "
                "%(m)s for that time, under the policy."
            )
            % {
                "start": at(start),
                "end": at(end),
                "name": name,
                "first": at(first),
                "last": at(last),
                "m": minutes_human(minutes),
            }
        )
        return Suggestion(minutes, basis, codes)
    codes.append("nothing_recorded")
    basis.append(
        _(
            "Detection recorded nothing between %(start)s and %(end)s (no disconnect, no "
            "incident, nothing paid), and no uploaded log shows that time: the suggestion is 0. "
            "The portal cannot read screenshots: if they show the span, approve with an edited "
            "credit and say so in the reason."
        )
        % {"start": at(start), "end": at(end)}
    )
    return Suggestion(0, basis, codes)


def _covered(member: MemberProfile, start: datetime, end: datetime) -> list[iv.Interval]:
    """The parts of [start, end) the ledger already covers for ``member``."""
    return list(
        CoveredSpan.objects.filter(member=member, start__lt=end, end__gt=start).values_list(
            "start", "end"
        )
    )


def _auto_triage(appeal: Appeal, *, now: datetime) -> None:
    triage = _triage(appeal.member, appeal.claimed_start, appeal.claimed_end, now=now)
    suggestion = appeal_suggestion(appeal=appeal, now=now, triage=triage)
    system = {
        "disconnects": [
            {
                "id": str(d.public_id),
                "node": d.node.name,
                "start": d.started_at.isoformat(),
                "end": d.ended_at.isoformat() if d.ended_at else None,
                "outcome": d.outcome,
                "credited_minutes": d.credited_minutes,
                "withheld_minutes": d.withheld_minutes,
            }
            for d in triage.disconnects
        ],
        "entries": triage.entry_ids,
        "suggested_minutes": suggestion.minutes,
        "suggestion_basis": suggestion.codes,
    }
    appeal.suggested_minutes = suggestion.minutes
    if triage.fully_credited:
        old = appeal.status
        appeal.status = AppealStatus.ALREADY_COMPENSATED
        appeal.decided_at = now
        appeal.first_response_at = now
        appeal.save(
            update_fields=[
                "status",
                "suggested_minutes",
                "decided_at",
                "first_response_at",
                "updated_at",
            ]
        )
        _event(appeal, EventKind.ALREADY_COMPENSATED, actor=None, now=now, old=old, data=system)
    else:
        appeal.save(update_fields=["suggested_minutes", "updated_at"])
        _event(appeal, EventKind.TRIAGED, actor=None, now=now, data=system)


def appeal_credit_bound(*, appeal: Appeal, now: datetime) -> int:
    """The most a reviewer may credit on ``appeal``: the claimed span's time
    not yet covered (under the policy's ratio, before caps), plus the minutes
    caps withheld from disconnects inside it, and never less than the
    suggestion shown when it was filed."""
    triage = _triage(appeal.member, appeal.claimed_start, appeal.claimed_end, now=now)
    return max(triage.bound_minutes, appeal.suggested_minutes)
