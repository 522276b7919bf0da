from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from appeals.models import Appeal, AppealStatus, ReasonTemplate
from compensation.models import LedgerEntry
from members.models import User
from members.tests.mfa import staff_login, totp_secret

# Deadlines and "overdue" are read from the clock: freeze it (root conftest).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]


@pytest.fixture
def staff(db):
    call_command("seed_demo", stdout=StringIO())
    return User.objects.get(email="reviewer@example.com"), User.objects.get(
        email="supervisor@example.com"
    )


def _change(client, appeal, **data):
    """A decision, through the panel (the one way to decide)."""
    return client.post(reverse("admin:appeals_appeal_decide", args=[appeal.pk]), data)


def test_reviewer_sees_everything_on_one_page(client, staff, file_appeal):
    reviewer, _ = staff
    appeal = file_appeal()
    staff_login(client, reviewer)
    page = client.get(reverse("admin:appeals_appeal_change", args=[appeal.pk])).content.decode()
    item = appeal.evidence.get()
    assert f"/appeals/{appeal.public_id}/evidence/{item.public_id}/?thumb=1" in page
    assert appeal.description in page
    assert 'data-testid="suggestion-basis"' in page  # the suggestion and what it rests on
    assert (
        client.get(f"/appeals/{appeal.public_id}/evidence/{item.public_id}/?thumb=1").status_code
        == 200
    )


def test_staff_read_evidence_only_from_a_session_that_passed_two_factor(client, staff, file_appeal):
    reviewer, _ = staff
    appeal = file_appeal()
    item = appeal.evidence.get()
    url = f"/appeals/{appeal.public_id}/evidence/{item.public_id}/?thumb=1"
    totp_secret(reviewer)
    client.force_login(reviewer)  # password only: no two-factor record
    assert client.get(url).status_code == 404
    assert client.get(f"/appeals/{appeal.public_id}/").status_code == 404
    staff_login(client, reviewer)
    assert client.get(url).status_code == 200


def test_reviewer_approves_from_admin_and_the_member_is_credited(
    client, staff, file_appeal, member
):
    reviewer, _ = staff
    appeal = file_appeal()
    before = member.expires_at
    staff_login(client, reviewer)
    response = _change(client, appeal, decision="approve", minutes="30", message="Screenshot.")
    assert response.status_code == 302
    appeal.refresh_from_db()
    member.refresh_from_db()
    assert appeal.status == AppealStatus.APPROVED
    assert member.expires_at == before + timedelta(minutes=30)
    # A second reviewer approving the same appeal changes nothing.
    _change(client, appeal, decision="approve", minutes="500", message="More.")
    assert LedgerEntry.objects.exclude(kind="opening").filter(member=member).count() == 1


def test_reviewer_limit_is_enforced_and_supervisor_may_exceed_it(
    client, staff, file_appeal, settings
):
    reviewer, supervisor = staff
    settings.APPEAL_REVIEWER_LIMIT_MINUTES = 20
    appeal = file_appeal()
    staff_login(client, reviewer)
    _change(client, appeal, decision="approve", minutes="25", message="Seen.")
    assert Appeal.objects.get().status == AppealStatus.SUBMITTED
    staff_login(client, supervisor)
    _change(client, appeal, decision="approve", minutes="25", message="Seen.")
    assert Appeal.objects.get().credited_minutes == 25


def test_reject_with_a_template_reason(client, staff, file_appeal):
    reviewer, _ = staff
    template = ReasonTemplate.objects.create(
        title="no record", text_zh="记录中没有掉线。", text_en="No disconnect on record."
    )
    appeal = file_appeal()
    staff_login(client, reviewer)
    response = _change(client, appeal, decision="reject", message="")
    assert response.status_code == 302  # reason missing: refused, and said so
    assert Appeal.objects.get().status == AppealStatus.SUBMITTED
    _change(client, appeal, decision="reject", reason_template=template.pk, message="")
    appeal.refresh_from_db()
    assert appeal.status == AppealStatus.REJECTED
    assert appeal.decision_reason == "记录中没有掉线。"


def test_request_information_then_the_member_sees_it(client, staff, file_appeal):
    reviewer, _ = staff
    appeal = file_appeal()
    staff_login(client, reviewer)
    _change(client, appeal, decision="request_info", message="请补充客户端日志。")
    client.force_login(appeal.member.user)
    page = client.get(f"/appeals/{appeal.public_id}/").content.decode()
    assert "请补充客户端日志。" in page


def test_list_filters_search_and_bounded_queries(
    client, staff, file_appeal, member, django_assert_max_num_queries
):
    reviewer, _ = staff
    appeals = [file_appeal(start_ago=100 + i * 40, end_ago=90 + i * 40) for i in range(30)]
    staff_login(client, reviewer)
    url = reverse("admin:appeals_appeal_changelist")
    with django_assert_max_num_queries(15):
        response = client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 30
    assert client.get(url, {"q": member.member_no}).context["cl"].result_count == 30
    assert client.get(url, {"q": appeals[3].short_id}).context["cl"].result_count == 1
    assert client.get(url, {"overdue": "yes"}).context["cl"].result_count == 0
    assert client.get(url, {"assigned": "me"}).context["cl"].result_count == 0


def test_supervisor_files_a_late_appeal_for_a_member_with_a_reason(client, staff, member, now):
    _, supervisor = staff
    staff_login(client, supervisor)
    start = now - timedelta(days=3)
    response = client.post(
        reverse("admin:appeals_appeal_add"),
        {
            "member_no": member.member_no,
            "claimed_start_0": start.astimezone().strftime("%Y-%m-%d"),
            "claimed_start_1": start.astimezone().strftime("%H:%M:%S"),
            "claimed_end_0": (start + timedelta(minutes=40)).astimezone().strftime("%Y-%m-%d"),
            "claimed_end_1": (start + timedelta(minutes=40)).astimezone().strftime("%H:%M:%S"),
            "service": "hotline",
            "description": "Member phoned in.",
            "late_reason": "Member was in hospital",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    appeal = Appeal.objects.get()
    assert appeal.late_reason == "Member was in hospital"
    assert appeal.filed_by == supervisor


def test_reviewers_cannot_file_late_or_delete(client, staff, file_appeal):
    reviewer, _ = staff
    appeal = file_appeal()
    staff_login(client, reviewer)
    assert client.get(reverse("admin:appeals_appeal_add")).status_code == 403
    assert client.post(reverse("admin:appeals_appeal_delete", args=[appeal.pk])).status_code == 403


def test_the_timeline_shows_status_and_role_labels_not_codes(client, staff, file_appeal):
    from django.conf import settings

    from appeals.models import AppealEvent

    reviewer, _ = staff
    appeal = file_appeal()
    staff_login(client, reviewer)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("admin:appeals_appeal_change", args=[appeal.pk])).content.decode()
    assert "— → Submitted" in page and "→ submitted" not in page
    assert "Decided by" in page
    event = AppealEvent(actor_role="system", old_status="submitted", new_status="in_review")
    assert (event.actor_role_label, event.old_status_label, event.new_status_label) == (
        "System",
        "Submitted",
        "In review",
    )
