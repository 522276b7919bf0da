"""Membership time on the ledger: opening balances, purchases, refunds and
tier changes, the fold from nothing that verify_ledger checks, receipts of
the new kinds, and the data migration that opens existing members."""

import importlib
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from compensation.ledger import digest, entry_body, reconcile_expiries, verify_chain
from compensation.models import LedgerEntry, LedgerHead, LedgerKind
from compensation.receipts import receipt_for
from compensation.services.credit import compensation_credit
from compensation.services.memberships import (
    MembershipError,
    member_lock,
    membership_open,
    membership_open_many,
    membership_purchase,
    membership_refund,
    membership_tier_change,
)
from members.models import MemberProfile
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module(
    "compensation.migrations.0010_membership_ledger_card_keys_platforms"
)


def test_a_purchase_for_a_member_without_time_starts_now_and_is_the_first_entry():
    now = timezone.now()
    member = MemberFactory(membership__expires_at=None).member
    entry = membership_purchase(
        member_id=member.pk, days=30, tier="silver", source_ref="order-1", now=now
    )
    member.refresh_from_db()
    assert entry.kind == LedgerKind.PURCHASE and entry.minutes == 30 * 1440
    assert entry.expires_before is None
    assert member.expires_at == now + timedelta(days=30) == entry.expires_after
    assert member.tier == "silver"
    assert reconcile_expiries()[1] == []


def test_purchase_extends_the_current_expiry_and_a_lapsed_one_from_now():
    now = timezone.now()
    active = MemberFactory(membership__expires_at=now + timedelta(days=2)).member
    lapsed = MemberFactory(membership__expires_at=now - timedelta(days=2)).member
    membership_purchase(member_id=active.pk, days=10, source_ref="a", now=now)
    membership_purchase(member_id=lapsed.pk, days=10, source_ref="b", now=now)
    active.refresh_from_db()
    lapsed.refresh_from_db()
    assert active.expires_at == now + timedelta(days=12)
    assert lapsed.expires_at == now + timedelta(days=10)


def test_refund_takes_days_off_and_tier_change_moves_no_time():
    now = timezone.now()
    member = MemberFactory(membership__expires_at=now + timedelta(days=40)).member
    with_lock = member_lock(member_id=member.pk)
    refund = membership_refund(
        member=with_lock, days=30, source_kind="platform", source_ref="r", now=now
    )
    change = membership_tier_change(
        member=with_lock, tier="diamond", source_kind="platform", source_ref="t", now=now
    )
    member.refresh_from_db()
    assert refund.minutes == -30 * 1440 and refund.kind == LedgerKind.REFUND
    assert member.expires_at == now + timedelta(days=10)
    assert change.minutes == 0 and change.expires_before == change.expires_after
    assert member.tier == "diamond" and change.tier == "diamond"
    assert reconcile_expiries()[1] == []


def test_nothing_to_refund_for_a_member_without_time():
    member = MemberFactory(membership__expires_at=None).member
    with pytest.raises(MembershipError) as exc:
        membership_refund(
            member=member_lock(member_id=member.pk),
            days=1,
            source_kind="platform",
            source_ref="r",
            now=timezone.now(),
        )
    assert exc.value.code == "nothing_to_refund"


def test_opening_is_only_for_a_member_the_ledger_does_not_know():
    now = timezone.now()
    member = MemberFactory().member
    assert membership_open(member_id=member.pk, expires_at=now, now=now) is None
    assert member.ledger.count() == 1


@pytest.mark.ledger_tampered
def test_time_set_outside_the_ledger_is_reported():
    member = MemberFactory(membership__expires_at=None).member
    MemberProfile.objects.filter(pk=member.pk).update(expires_at=timezone.now())
    problems = reconcile_expiries()[1]
    assert [p.member_no for p in problems] == [member.member_no]
    assert "has no ledger entry" in problems[0].message
    with pytest.raises(Exception, match="no ledger entry"):
        call_command("verify_ledger", stdout=StringIO())


@pytest.mark.ledger_tampered
def test_a_first_entry_that_does_not_start_from_nothing_is_reported():
    now = timezone.now()
    member = MemberFactory(membership__expires_at=None).member
    # The old way: time put on the profile, then credited.
    MemberProfile.objects.filter(pk=member.pk).update(expires_at=now + timedelta(days=3))
    compensation_credit(
        member_id=member.pk,
        intervals=[(now - timedelta(hours=1), now - timedelta(minutes=30))],
        source_kind="disconnect",
        source_ref="x",
        idempotency_key="x",
        now=now,
    )
    messages = [p.message for p in reconcile_expiries()[1]]
    assert any("not from nothing" in m for m in messages), messages


def test_receipts_of_membership_entries_verify_and_old_bodies_are_unchanged():
    now = timezone.now()
    member = MemberFactory(membership__expires_at=None).member
    entry = membership_purchase(member_id=member.pk, days=7, tier="gold", source_ref="o", now=now)
    entry = LedgerEntry.objects.select_related("member").get(pk=entry.pk)
    receipt = receipt_for(entry)
    assert receipt["entry"]["kind"] == "purchase" and receipt["entry"]["tier"] == "gold"
    assert digest(receipt["entry"]) == entry.body_digest
    # An entry without a tier hashes exactly the fields it always had.
    credit = compensation_credit(
        member_id=member.pk,
        intervals=[(now - timedelta(hours=1), now - timedelta(minutes=30))],
        source_kind="disconnect",
        source_ref="c",
        idempotency_key="c",
        now=now + timedelta(minutes=1),
    ).entry
    body = entry_body(credit, member_no=member.member_no, reverses_seq=None)
    assert "tier" not in body
    assert verify_chain()[1] == []


def test_history_page_names_the_new_kinds(client):
    now = timezone.now()
    user = MemberFactory(membership__expires_at=None)
    membership_purchase(member_id=user.member.pk, days=30, tier="gold", source_ref="o", now=now)
    client.force_login(user)
    html = client.get("/my/compensation/").content.decode()
    assert 'data-kind="purchase"' in html


genesis_migration = importlib.import_module(
    "compensation.migrations.0002_ledger_genesis_policy_v1_append_only"
)


@pytest.fixture
def migrated_ledger(transactional_db):
    """The genesis head and policy v1 as migration 0002 leaves them: a
    transactional test starts from whatever the previous one's flush left,
    which may be no head at all. (serialized_rollback would restore them, but
    clashes with the content types that the flush's post_migrate recreates.)"""
    genesis_migration.genesis(django_apps, None)


def _run_migration(forward: bool) -> None:
    # As the migration executor runs it: in a schema editor of its own, which
    # on SQLite turns foreign-key checks off first. SQLite cannot do that
    # inside a transaction, hence the transactional tests below (an ordinary
    # test runs inside one); PostgreSQL would not mind either way.
    with connection.schema_editor(atomic=migration.Migration.atomic) as editor:
        if forward:
            migration.add_openings(django_apps, editor)
        else:
            migration.remove_openings(django_apps, editor)


@pytest.mark.django_db(transaction=True)
def test_the_data_migration_opens_every_member_with_time_and_reverses(migrated_ledger):
    now = timezone.now()
    legacy = MemberFactory(membership__expires_at=None).member
    never = MemberFactory(membership__expires_at=None).member
    # A member from before the ledger covered purchases: time on the profile.
    MemberProfile.objects.filter(pk=legacy.pk).update(expires_at=now + timedelta(days=9))
    head_before = LedgerHead.objects.get(pk=1)
    _run_migration(forward=True)
    opening = LedgerEntry.objects.get(member=legacy)
    assert opening.kind == "opening" and opening.expires_before is None
    assert opening.expires_after == now + timedelta(days=9)
    assert not LedgerEntry.objects.filter(member=never).exists()
    assert verify_chain()[1] == [] and reconcile_expiries()[1] == []
    _run_migration(forward=True)  # nothing new for members already opened
    assert LedgerEntry.objects.filter(member=legacy).count() == 1
    _run_migration(forward=False)
    assert not LedgerEntry.objects.filter(source_ref=migration.OPENING_REF).exists()
    head = LedgerHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (head_before.seq, head_before.hash)
    # Back to the state before: put the profile back so the fold holds.
    MemberProfile.objects.filter(pk=legacy.pk).update(expires_at=None)


@pytest.mark.django_db(transaction=True)
def test_the_data_migration_opening_comes_before_entries_a_member_already_had(
    migrated_ledger,
):
    now = timezone.now()
    member = MemberFactory(membership__expires_at=None).member
    MemberProfile.objects.filter(pk=member.pk).update(expires_at=now + timedelta(days=3))
    compensation_credit(
        member_id=member.pk,
        intervals=[(now - timedelta(hours=1), now - timedelta(minutes=30))],
        source_kind="disconnect",
        source_ref="x",
        idempotency_key="x",
        now=now,
    )
    _run_migration(forward=True)
    entries = list(LedgerEntry.objects.filter(member=member).order_by("seq"))
    assert [e.kind for e in entries] == ["credit", "opening"]
    assert entries[1].expires_after == now + timedelta(days=3)
    assert reconcile_expiries()[1] == [] and verify_chain()[1] == []
    receipt = json.loads(json.dumps(receipt_for(entries[1]), default=str))
    assert digest(receipt["entry"]) == entries[1].body_digest


def test_opening_many_members_at_once_chains_one_entry_each():
    now = timezone.now()
    fresh = [MemberFactory(membership__expires_at=None).member for _ in range(3)]
    known = MemberFactory().member
    wanted = {m.pk: now + timedelta(days=i + 1) for i, m in enumerate([*fresh, known])}
    assert membership_open_many(expires=wanted, tier="silver", now=now) == 3
    for i, member in enumerate(fresh):
        member.refresh_from_db()
        assert member.expires_at == now + timedelta(days=i + 1) and member.tier == "silver"
    assert known.ledger.count() == 1  # its own opening from the factory, untouched
    assert verify_chain()[1] == [] and reconcile_expiries()[1] == []
