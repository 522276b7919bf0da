"""The one name of each kind of ledger entry, on every page that lists
entries (dashboard, my compensation, receipts, appeals, admin).

A credit (and its reversal) is named by what it paid for: the member's own
disconnect, an approved appeal, or the incident (维护 or 故障, the label the
status page uses). Every other entry is named by its kind (purchase,
renewal, card key, refund, staff adjustment...), with the tier when it
carries one, so the demo's +180 days reads "购买 · 黄金" everywhere.
"""

from __future__ import annotations

from django.utils.translation import pgettext_lazy

from .models import IncidentKind, LedgerKind, SourceKind
from .selectors import incidents_by_ref

# Entries named by what they paid for, not by their kind.
_BY_SOURCE = (LedgerKind.CREDIT, LedgerKind.REVERSAL)


def incident_label(kind: str) -> str:
    """维护 for maintenance, 故障 for everything else."""
    if kind == IncidentKind.MAINTENANCE:
        return str(pgettext_lazy("incident label", "Maintenance"))
    return str(pgettext_lazy("incident label", "Incident"))


def entry_label(entry, kinds: dict[str, str] | None = None) -> str:
    """What a ledger entry was for, in words. ``kinds`` maps the incident
    refs of a page to their kinds (one query for the page); without it an
    incident entry costs one query."""
    if entry.kind in _BY_SOURCE:
        if entry.source_kind == SourceKind.INCIDENT:
            if kinds is None:
                kinds = {ref: i.kind for ref, i in incidents_by_ref([entry.source_ref]).items()}
            return incident_label(kinds.get(entry.source_ref, IncidentKind.OUTAGE))
        return str(entry.get_source_kind_display())
    label = str(entry.get_kind_display())
    if entry.tier and entry.kind != LedgerKind.ADJUSTMENT:
        return f"{label} · {entry.get_tier_display()}"
    return label
