"""copy_insert: COPY on PostgreSQL, bulk_create elsewhere; keys in order,
conflicts skipped only when asked, nothing left behind on rollback."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from kamen_portal.bulk import copy_insert
from members.models import EmailStatus, Notification
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def _rows(user, keys, **extra):
    now = timezone.now()
    return [
        Notification(
            user=user,
            kind="credited",
            dedupe_key=key,
            title="t 'quoted' \\ back",
            body="正文\ttab\nline",
            texts={"en": ["t", "b"], "zh-hans": ["标题", "正文"]},
            created_at=now,
            **extra,
        )
        for key in keys
    ]


def test_rows_are_inserted_with_their_keys_in_order_and_text_intact():
    user = MemberFactory()
    rows = copy_insert(_rows(user, ["a", "b", "c"]))
    assert [r.dedupe_key for r in rows] == ["a", "b", "c"]
    assert all(r.pk for r in rows) and [r.pk for r in rows] == sorted(r.pk for r in rows)
    stored = Notification.objects.get(pk=rows[1].pk)
    assert stored.dedupe_key == "b" and stored.body == "正文\ttab\nline"
    assert stored.title == "t 'quoted' \\ back"
    assert stored.texts == {"en": ["t", "b"], "zh-hans": ["标题", "正文"]}
    assert stored.email_status == EmailStatus.PENDING  # the model default


@pytest.mark.postgres  # elsewhere bulk_create with ignore_conflicts sets no keys
def test_a_conflict_is_skipped_when_asked_and_the_rest_keep_their_keys():
    user = MemberFactory()
    copy_insert(_rows(user, ["x"]))
    inserted = copy_insert(_rows(user, ["w", "x", "y"]), ignore_conflicts=True)
    assert [r.dedupe_key for r in inserted] == ["w", "y"]
    assert {r.pk: r.dedupe_key for r in inserted} == dict(
        Notification.objects.filter(dedupe_key__in=["w", "y"]).values_list("pk", "dedupe_key")
    )
    assert Notification.objects.filter(dedupe_key="x").count() == 1


def test_a_conflict_raises_unless_asked():
    user = MemberFactory()
    copy_insert(_rows(user, ["dup"]))
    with pytest.raises(IntegrityError), transaction.atomic():
        copy_insert(_rows(user, ["dup"]))
    assert Notification.objects.filter(dedupe_key="dup").count() == 1


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_rows_commit_and_a_second_call_starts_clean():
    user = MemberFactory()
    copy_insert(_rows(user, ["p"]))
    copy_insert(_rows(user, ["q"]))
    assert sorted(Notification.objects.values_list("dedupe_key", flat=True)) == ["p", "q"]
