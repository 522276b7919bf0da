import re

import pytest

from members.models import MemberProfile, User
from members.services import accounts as services
from members.tests.factories import MemberFactory, StaffFactory


@pytest.mark.django_db
def test_every_new_member_gets_a_km_member_number():
    user = User.objects.create_user(email="new@example.com", password="x")
    assert re.fullmatch(r"KM\d{8}", user.member.member_no)
    assert user.member.language == "zh-hans"
    assert user.member.timezone == "Asia/Shanghai"
    assert user.member.expires_at is None


@pytest.mark.django_db
def test_staff_accounts_are_not_members():
    staff = StaffFactory()
    assert not MemberProfile.objects.filter(user=staff).exists()


@pytest.mark.django_db
def test_member_numbers_are_unique_and_not_sequential():
    numbers = [MemberFactory().member.member_no for _ in range(20)]
    assert len(set(numbers)) == 20
    as_ints = sorted(int(n[2:]) for n in numbers)
    gaps = {b - a for a, b in zip(as_ints, as_ints[1:], strict=False)}
    assert gaps != {1}


@pytest.mark.django_db
def test_member_number_collision_is_retried(monkeypatch):
    first = MemberFactory()
    taken = first.member.member_no
    candidates = iter([taken, taken, "KM12345678"])
    monkeypatch.setattr(services, "_random_member_no", lambda: next(candidates))
    second = User.objects.create_user(email="second@example.com", password="x")
    assert second.member.member_no == "KM12345678"


@pytest.mark.django_db
def test_email_is_normalised_to_lower_case():
    user = User.objects.create_user(email="Mixed.Case@Example.COM", password="x")
    assert user.email == "mixed.case@example.com"


@pytest.mark.django_db
def test_membership_activity_follows_expiry():
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    member = MemberFactory(membership__expires_at=now + timedelta(hours=3))
    profile = member.member
    assert profile.membership_is_active(now=now)
    assert profile.remaining(now=now) == timedelta(hours=3)
    assert not profile.membership_is_active(now=now + timedelta(hours=4))
    assert profile.remaining(now=now + timedelta(hours=4)) == timedelta(0)


@pytest.mark.django_db
@pytest.mark.parametrize("number", ["KM12345678\n", "KM１２３４５６７８", "KM1234567"])
def test_a_member_number_must_be_exactly_km_and_eight_ascii_digits(number):
    from django.core.exceptions import ValidationError
    from django.db import DataError, IntegrityError, transaction

    profile = MemberFactory().member
    profile.member_no = number
    with pytest.raises(ValidationError) as refused:
        profile.full_clean()
    assert "member_no" in refused.value.message_dict
    # The database refuses it too (the constraint, or the column's length).
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        MemberProfile.objects.filter(pk=profile.pk).update(member_no=number)


@pytest.mark.django_db
def test_a_node_name_with_a_trailing_newline_is_refused():
    from django.core.exceptions import ValidationError
    from django.utils import timezone

    from compensation.services.nodes import node_create

    with pytest.raises(ValidationError):
        node_create(name="sh-node-01\n", now=timezone.now())
