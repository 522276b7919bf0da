import pytest
from django.urls import reverse

from members.tests.factories import MemberFactory
from members.tests.mfa import staff_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client, django_user_model):
    admin = django_user_model.objects.create_superuser(email="root@example.com", password="x")
    staff_login(client, admin)
    return client


def test_member_search_by_member_number(admin_client_):
    wanted = MemberFactory()
    other = MemberFactory()
    url = reverse("admin:members_memberprofile_changelist")
    response = admin_client_.get(url, {"q": wanted.member.member_no})
    assert response.status_code == 200
    results = list(response.context["cl"].result_list)
    assert results == [wanted.member]
    assert other.member not in results


def test_member_search_by_email(admin_client_):
    wanted = MemberFactory(email="findme@example.com")
    MemberFactory()
    response = admin_client_.get(
        reverse("admin:members_memberprofile_changelist"), {"q": "findme@"}
    )
    assert list(response.context["cl"].result_list) == [wanted.member]


def test_member_filter_by_tier(admin_client_):
    gold = MemberFactory(membership__tier="gold")
    MemberFactory(membership__tier="silver")
    response = admin_client_.get(
        reverse("admin:members_memberprofile_changelist"), {"tier__exact": "gold"}
    )
    assert list(response.context["cl"].result_list) == [gold.member]


def test_member_list_queries_are_bounded(admin_client_, django_assert_max_num_queries):
    for _ in range(30):
        MemberFactory()
    with django_assert_max_num_queries(12):
        admin_client_.get(reverse("admin:members_memberprofile_changelist"))


def test_user_list_shows_member_numbers(admin_client_):
    member = MemberFactory()
    response = admin_client_.get(
        reverse("admin:members_user_changelist"), {"q": member.member.member_no}
    )
    assert member.member.member_no in response.content.decode()
