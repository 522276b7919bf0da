"""The operators' dashboard: a few bounded aggregate queries and charts
rendered server-side as SVG (no outside network, strict CSP)."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from html import escape

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from appeals.models import OPEN_STATUSES, Appeal, AppealStatus, overdue_q
from compensation.models import Disconnect, Incident, IncidentStatus, LedgerEntry
from members.models import EmailStatus, Notification

TOP_NODES = 5
PALETTE = ["#c2410c", "#2563eb", "#15803d", "#9333ea", "#ca8a04", "#64748b"]


def disconnects_per_node_per_hour(*, now: datetime, hours: int = 24) -> dict:
    since = (now - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
    rows = list(
        Disconnect.objects.filter(started_at__gte=since)
        .annotate(hour=TruncHour("started_at"))
        .values("hour", "node__name")
        .annotate(n=Count("id"))
        .order_by()
    )
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["node__name"]] = totals.get(row["node__name"], 0) + row["n"]
    top = sorted(totals, key=lambda name: (-totals[name], name))[:TOP_NODES]
    slots = [since + timedelta(hours=i) for i in range(hours + 1)]
    # Node names have no spaces, so the translated "other nodes" cannot clash with one.
    other = gettext("other nodes")
    series: dict[str, list[int]] = {name: [0] * len(slots) for name in [*top, other]}
    index = {slot: i for i, slot in enumerate(slots)}
    for row in rows:
        hour = (
            row["hour"].replace(tzinfo=since.tzinfo) if row["hour"].tzinfo is None else row["hour"]
        )
        i = index.get(hour.astimezone(since.tzinfo).replace(minute=0, second=0, microsecond=0))
        if i is None:
            continue
        name = row["node__name"] if row["node__name"] in top else other
        series[name][i] += row["n"]
    if not any(series[other]):
        series.pop(other)
    labels = [timezone.localtime(slot).strftime("%H:00") for slot in slots]
    return {"labels": labels, "series": series, "since": since}


def minutes_credited_per_day(*, now: datetime, days: int = 14) -> dict:
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = dict(
        LedgerEntry.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(m=Sum("minutes"))
        .values_list("day", "m")
        .order_by()
    )
    day_list = [(since + timedelta(days=i)).date() for i in range(days)]
    return {
        "labels": [d.strftime("%m-%d") for d in day_list],
        "series": {gettext("minutes"): [rows.get(d) or 0 for d in day_list]},
    }


def appeal_queue(*, now: datetime) -> dict:
    counts = Appeal.objects.aggregate(
        open=Count("id", filter=Q(status__in=OPEN_STATUSES)),
        overdue=Count(
            "id",
            filter=overdue_q(now),
        ),
    )
    # Staff work only: appeals resolved by the system at filing (already
    # compensated) would pull the medians to zero.
    recent = Appeal.objects.filter(created_at__gte=now - timedelta(days=30)).exclude(
        status=AppealStatus.ALREADY_COMPENSATED
    )
    first = [
        (r - c).total_seconds()
        for c, r in recent.filter(first_response_at__isnull=False).values_list(
            "created_at", "first_response_at"
        )[:20000]
    ]
    decided = [
        (d - c).total_seconds()
        for c, d in recent.filter(decided_at__isnull=False).values_list("created_at", "decided_at")[
            :20000
        ]
    ]
    # A reply within minutes is a median of 0.0 hours, which templates read as
    # "no value": medians are durations (None when there is nothing to measure).
    return {
        **counts,
        "median_first_response": _median_duration(first),
        "median_decision": _median_duration(decided),
    }


def _median_duration(seconds: list[float]) -> timedelta | None:
    return timedelta(seconds=round(statistics.median(seconds))) if seconds else None


def notification_health(*, now: datetime) -> list[dict]:
    """Emails of the last 7 days by delivery status: status (for the list
    filter), its label and the count."""
    counts = dict(
        Notification.objects.filter(created_at__gte=now - timedelta(days=7))
        .values("email_status")
        .annotate(n=Count("id"))
        .values_list("email_status", "n")
        .order_by()
    )
    return [
        {"status": status, "label": label, "n": counts[status]}
        for status, label in EmailStatus.choices
        if status in counts
    ]


def incidents_summary() -> dict:
    return {
        "open": list(
            Incident.objects.filter(status=IncidentStatus.OPEN).order_by("-started_at")[:10]
        ),
        "recent": list(
            Incident.objects.filter(status=IncidentStatus.CLOSED).order_by("-started_at")[:10]
        ),
    }


def svg_bars(chart: dict, *, height: int = 180, width: int = 720, title: str = "") -> SafeString:
    """Stacked bar chart as inline SVG (escaped labels, no scripts)."""
    labels, series = chart["labels"], chart["series"]
    n = max(len(labels), 1)
    totals = [sum(values[i] for values in series.values()) for i in range(n)]
    peak = max(totals + [1])
    left, bottom, top = 36, 28, 10
    plot_h, plot_w = height - bottom - top, width - left - 10
    bar_w = plot_w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 24}" role="img" aria-label="{escape(title)}" class="kamen-chart">',
        f'<text x="0" y="{top + 10}" font-size="11" fill="#6b7280">{peak}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#e5e7eb"/>',
    ]
    for i in range(n):
        y = top + plot_h
        for k, (name, values) in enumerate(series.items()):
            value = values[i]
            if not value:
                continue
            h = plot_h * value / peak
            y -= h
            parts.append(
                f'<rect x="{left + i * bar_w + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(name)} {escape(labels[i])}: {value}</title></rect>'
            )
        if n <= 14 or i % 3 == 0:
            parts.append(
                f'<text x="{left + i * bar_w + bar_w / 2:.1f}" y="{top + plot_h + 14}" font-size="10" text-anchor="middle" fill="#6b7280">{escape(labels[i])}</text>'
            )
    legend_x = left
    for k, name in enumerate(series):
        parts.append(
            f'<rect x="{legend_x}" y="{height + 8}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>'
        )
        parts.append(
            f'<text x="{legend_x + 14}" y="{height + 17}" font-size="11" fill="#374151">{escape(name)}</text>'
        )
        legend_x += 20 + sum(11 if ord(c) > 0x2E7F else 7 for c in name)
    parts.append("</svg>")
    # Every label and name above went through html.escape.
    return mark_safe("".join(parts))  # noqa: S308
