"""Decisions are bounded by the claim, and staff filing errors are form
errors, never a 500."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from appeals.models import Appeal, AppealStatus
from appeals.services import AppealError, appeal_approve, appeal_credit_bound
from appeals.tests.factories import png_bytes, upload
from compensation.models import LedgerEntry
from members.tests.mfa import staff_login

pytestmark = pytest.mark.django_db


def test_a_reviewer_cannot_credit_more_than_was_claimed(file_appeal, reviewer, member, now):
    appeal = file_appeal(start_ago=40, end_ago=30)  # a 10-minute claim
    assert appeal_credit_bound(appeal=appeal, now=now) == 10
    with pytest.raises(AppealError) as refused:
        appeal_approve(appeal=appeal, staff=reviewer, minutes=1440, reason="Generous.", now=now)
    assert refused.value.code == "above_claim"
    assert not LedgerEntry.objects.exclude(kind="opening").filter(member=member).exists()
    appeal_approve(appeal=appeal, staff=reviewer, minutes=10, reason="Seen.", now=now)
    assert LedgerEntry.objects.exclude(kind="opening").get(member=member).minutes == 10


def test_a_supervisor_may_credit_more_than_claimed_only_with_a_reason(
    file_appeal, supervisor, member, now
):
    appeal = file_appeal(start_ago=40, end_ago=30)
    with pytest.raises(AppealError) as refused:
        appeal_approve(appeal=appeal, staff=supervisor, minutes=120, reason="  ", now=now)
    assert refused.value.code == "reason_required"
    appeal_approve(
        appeal=appeal,
        staff=supervisor,
        minutes=120,
        reason="The member also lost a ranked match; goodwill.",
        now=now,
    )
    appeal.refresh_from_db()
    assert appeal.status == AppealStatus.APPROVED and appeal.credited_minutes == 120


def test_the_admin_tells_the_reviewer_why_and_credits_nothing(
    client, file_appeal, reviewer, member
):
    appeal = file_appeal(start_ago=40, end_ago=30)
    staff_login(client, reviewer)
    response = client.post(
        reverse("admin:appeals_appeal_decide", args=[appeal.pk]),
        {"decision": "approve", "minutes": "1440", "message": "Generous."},
        follow=True,
    )
    texts = " ".join(str(m) for m in response.context["messages"])
    assert "1440" in texts and "10" in texts
    appeal.refresh_from_db()
    assert appeal.status != AppealStatus.APPROVED
    assert not LedgerEntry.objects.exclude(kind="opening").filter(member=member).exists()


def _filing(member, **overrides):
    now = timezone.localtime()
    start = now - timedelta(hours=50)
    end = now - timedelta(hours=49)
    data = {
        "member_no": member.member_no,
        "claimed_start_0": start.strftime("%Y-%m-%d"),
        "claimed_start_1": start.strftime("%H:%M:%S"),
        "claimed_end_0": end.strftime("%Y-%m-%d"),
        "claimed_end_1": end.strftime("%H:%M:%S"),
        "service": "",
        "description": "Member phoned: dropped during the evening peak.",
        "late_reason": "",
    }
    data.update(overrides)
    return data


def test_staff_filing_outside_the_window_without_a_reason_is_a_form_error(
    client, supervisor, member
):
    staff_login(client, supervisor)
    response = client.post(reverse("admin:appeals_appeal_add"), _filing(member))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Member phoned: dropped during the evening peak." in page  # text kept
    assert response.context["adminform"].form.errors["late_reason"]
    assert not Appeal.objects.exists()


def test_staff_filing_with_a_file_that_is_not_an_image_is_a_form_error(client, supervisor, member):
    staff_login(client, supervisor)
    data = _filing(member, late_reason="Member was in hospital.")
    data["screenshot"] = upload("shot.png", data=b"%PDF-1.4 not an image")
    response = client.post(reverse("admin:appeals_appeal_add"), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["screenshot"]
    assert not Appeal.objects.exists()


def test_staff_filing_late_with_a_reason_and_a_screenshot_files_the_appeal(
    client, supervisor, member
):
    staff_login(client, supervisor)
    data = _filing(member, late_reason="Member was in hospital.")
    data["screenshot"] = upload("shot.png", data=png_bytes())
    response = client.post(reverse("admin:appeals_appeal_add"), data)
    assert response.status_code == 302
    appeal = Appeal.objects.get()
    assert appeal.member == member and appeal.late_reason == "Member was in hospital."
    assert appeal.evidence.count() == 1
