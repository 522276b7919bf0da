"""Heartbeat ingest: validate a node's batch item by item, then hand the good
items to the heartbeat store in one call. No per-item SQL: members are
checked with one query per batch."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.utils.translation import gettext as _

from kamen_portal.timeinput import TimeInputError, parse_instant
from members.models import MemberProfile

from ..models import Node
from ..store import Beat, get_store
from .policy import policy_current

MAX_ITEMS = 1000
# Node clocks drift; beyond this an item is refused rather than allowed to
# push the node's watermark into the future and fake everyone's disconnect.
MAX_CLOCK_SKEW = timedelta(minutes=2)
# Nodes buffer while the portal is unreachable; older replays are refused.
MAX_REPLAY_AGE = timedelta(days=7)
# Matched with fullmatch: "$" would also accept a trailing newline, and \d
# any Unicode digit (full-width, Arabic-Indic), which are not member numbers.
_MEMBER_RE = re.compile(r"KM[0-9]{8}")
_SESSION_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


class BatchError(ValueError):
    """The batch as a whole is unusable (not a per-item problem)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class IngestResult:
    accepted: int = 0
    rejected: list[dict] = field(default_factory=list)


def _reject(result: IngestResult, index: int, code: str, message: str) -> None:
    result.rejected.append({"index": index, "code": code, "error": message})


def _known_members(numbers: set[str]) -> set[str]:
    """Which of ``numbers`` are members: one query. On PostgreSQL one array
    parameter instead of an IN list of 500: building and quoting that list
    took longer than the query itself (profiled)."""
    if not numbers:
        return set()
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(MemberProfile._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT member_no FROM {table} WHERE member_no = ANY(%s)",  # noqa: S608
                [sorted(numbers)],
            )
            return {row[0] for row in cursor.fetchall()}
    return set(
        MemberProfile.objects.filter(member_no__in=numbers).values_list("member_no", flat=True)
    )


def heartbeats_ingest(*, node: Node, payload, now: datetime) -> IngestResult:
    """Accept the valid heartbeats of ``payload`` for ``node``; name each bad
    one with its index and reason. One bad item never sinks the batch."""
    if not isinstance(payload, dict) or "heartbeats" not in payload:
        raise BatchError(
            "invalid_body", _('The body must be a JSON object with a "heartbeats" list.')
        )
    items = payload["heartbeats"]
    if not isinstance(items, list):
        raise BatchError("invalid_body", _('"heartbeats" must be a list.'))
    if len(items) > MAX_ITEMS:
        raise BatchError(
            "batch_too_large",
            _("A batch may hold at most %(max)d heartbeats; this one has %(count)d.")
            % {"max": MAX_ITEMS, "count": len(items)},
        )

    result = IngestResult()
    parsed: list[tuple[int, str, str, datetime, bool]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            _reject(result, index, "invalid_item", _("Each heartbeat must be a JSON object."))
            continue
        member_no, session, at_raw, state = (
            item.get("member"),
            item.get("session"),
            item.get("at"),
            item.get("state", "alive"),
        )
        if not isinstance(member_no, str) or not _MEMBER_RE.fullmatch(member_no):
            _reject(
                result,
                index,
                "invalid_member",
                _('"member" must be a member number like KM00001234.'),
            )
            continue
        if not isinstance(session, str) or not _SESSION_RE.fullmatch(session):
            _reject(
                result,
                index,
                "invalid_session",
                _('"session" must be 1 to 128 letters, digits or . _ : -'),
            )
            continue
        try:
            at = parse_instant(at_raw)
        except TimeInputError as exc:
            # The codes nodes already branch on: naive_time for a missing
            # offset, invalid_time for anything else the parser refuses
            # (garbage, a year or an offset out of bounds).
            code = "naive_time" if exc.reason == "naive" else "invalid_time"
            _reject(result, index, code, f'"at": {exc.message}')
            continue
        if at > now + MAX_CLOCK_SKEW:
            _reject(
                result, index, "time_in_future", _('"at" is in the future; check the node clock.')
            )
            continue
        if at < now - MAX_REPLAY_AGE:
            _reject(
                result,
                index,
                "time_too_old",
                _('"at" is more than 7 days old and can no longer be replayed.'),
            )
            continue
        if state not in ("alive", "ended"):
            _reject(result, index, "invalid_state", _('"state" must be "alive" or "ended".'))
            continue
        parsed.append((index, member_no, session, at, state == "ended"))

    known = _known_members({p[1] for p in parsed})
    beats: list[Beat] = []
    for index, member_no, session, at, ended in parsed:
        if member_no not in known:
            _reject(
                result,
                index,
                "unknown_member",
                _("No member has the number %(member)s.") % {"member": member_no},
            )
            continue
        beats.append(Beat(key=f"{member_no}|{session}", at=at, ended=ended))
    result.rejected.sort(key=lambda r: r["index"])
    if beats:
        # Event-time order: a batch sent in reverse gives the same result.
        beats.sort(key=lambda b: (b.at, b.ended))
        policy = policy_current()
        get_store().apply(node.pk, beats, threshold_s=policy.threshold_minutes * 60, arrival=now)
    result.accepted = len(beats)
    return result
