"""Corrections of credits: entries are never edited, a mistaken credit is
reversed by a new, negative entry that takes the same minutes back."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from members.models import MemberProfile

from ..models import LedgerEntry, LedgerKind
from .chain import ledger_append


def ledger_reverse(*, entry: LedgerEntry, note: str, now: datetime) -> LedgerEntry:
    """Correct a mistaken credit with a new, negative entry (entries are never
    edited). The membership loses the same minutes in the same transaction."""
    with transaction.atomic():
        member = MemberProfile.objects.select_for_update().get(pk=entry.member_id)
        if LedgerEntry.objects.filter(reverses=entry).exists():
            raise ValueError("This entry has already been reversed.")
        if entry.kind != LedgerKind.CREDIT:
            raise ValueError("Only credits can be reversed.")
        new_expiry = member.expires_at - timedelta(minutes=entry.minutes)
        reversal = LedgerEntry(
            member_id=member.pk,
            kind=LedgerKind.REVERSAL,
            minutes=-entry.minutes,
            source_kind=entry.source_kind,
            source_ref=entry.source_ref,
            covered_start=entry.covered_start,
            covered_end=entry.covered_end,
            policy_version=entry.policy_version,
            reverses=entry,
            expires_before=member.expires_at,
            expires_after=new_expiry,
            note=note[:300],
            created_at=now,
        )
        ledger_append([reversal], member_nos={member.pk: member.member_no})
        member.expires_at = new_expiry
        member.save(update_fields=["expires_at"])
        return reversal
