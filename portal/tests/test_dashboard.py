import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from compensation.models import Disconnect, Node
from members.tests.factories import MemberFactory, StaffFactory
from members.tests.mfa import staff_login

# Deadlines and "overdue" are read from the clock: freeze it (root conftest).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]


@pytest.fixture
def admin_client_(client, django_user_model):
    staff_login(
        client, django_user_model.objects.create_superuser(email="ops@example.com", password="x")
    )
    return client


def test_dashboard_charts_link_to_their_lists_and_queries_stay_bounded(
    admin_client_, django_assert_max_num_queries
):
    now = timezone.now()
    nodes = [
        Node.objects.create(name=f"node-{i}", token_hash=f"{i}" * 64, token_prefix="kmn_")
        for i in range(8)
    ]
    members = [MemberFactory().member for _ in range(5)]
    # 100,000 disconnects over ~70 days: the dashboard's query count does not
    # grow with them (the last 24 hours are read through an index).
    rows = (
        Disconnect(
            member=members[i % 5],
            node=nodes[i % 8],
            session_id=f"s{i}",
            started_at=now - timedelta(minutes=i),
            ended_at=now,
            status="closed",
            detected_at=now,
        )
        for i in range(100_000)
    )
    Disconnect.objects.bulk_create(rows, batch_size=10_000)
    with django_assert_max_num_queries(20):
        response = admin_client_.get(reverse("ops-dashboard"))
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('class="kamen-chart"') == 2 and "node-0" in page and "其他节点" in page
    assert reverse("admin:appeals_appeal_changelist") + "?overdue=yes" in page
    assert reverse("admin:members_notification_changelist") in page
    assert "<script" not in page.split("kamen-ops")[1]


def test_dashboard_is_for_staff_with_the_right_permission(client):
    client.force_login(MemberFactory())
    assert client.get(reverse("ops-dashboard")).status_code == 302  # admin login
    staff_login(client, StaffFactory())
    assert client.get(reverse("ops-dashboard")).status_code == 403


def test_svg_labels_are_escaped():
    from portal.dashboard import svg_bars

    svg = svg_bars({"labels": ["<b>"], "series": {"<script>alert(1)</script>": [3]}})
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_median_first_response_shows_a_reply_within_minutes(admin_client_, settings, tmp_path):
    import uuid

    from appeals.services import appeal_staff_message, appeal_submit

    settings.MEDIA_ROOT = tmp_path
    now = timezone.now()
    member = MemberFactory(membership__expires_at=now + timedelta(days=5)).member
    staff = StaffFactory(email="rev@example.com")
    appeal = appeal_submit(
        member=member,
        actor=staff,
        claimed_start=now - timedelta(minutes=90),
        claimed_end=now - timedelta(minutes=60),
        description="phoned in",
        files=[],
        submission_token=uuid.uuid4(),
        now=now - timedelta(minutes=6),
    )
    page = admin_client_.get(reverse("ops-dashboard")).content.decode()
    assert 'data-testid="median-first-response">—' in page  # no reply yet
    appeal_staff_message(
        appeal=appeal, staff=staff, message="looking", now=now - timedelta(minutes=1)
    )
    page = admin_client_.get(reverse("ops-dashboard")).content.decode()
    assert 'data-testid="median-first-response">5 分钟<' in page


def test_member_dashboard_answers_am_i_whole(client, settings, tmp_path):
    """Credited this month, the 30-day cap as a labelled bar, open appeals
    with their reply deadline, one status line, every account setting."""
    import uuid
    from datetime import UTC, datetime

    import time_machine

    from appeals.services import appeal_submit
    from compensation.services.credit import compensation_credit

    settings.MEDIA_ROOT = tmp_path
    now = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    with time_machine.travel(now, tick=False):
        member = MemberFactory(membership__expires_at=now + timedelta(days=20)).member
        compensation_credit(
            member_id=member.pk,
            intervals=[(now - timedelta(hours=2), now - timedelta(hours=1))],
            source_kind="disconnect",
            source_ref="x",
            idempotency_key="dash:1",
            now=now,
        )
        appeal = appeal_submit(
            member=member,
            actor=StaffFactory(email="s@example.com"),
            claimed_start=now - timedelta(minutes=50),
            claimed_end=now - timedelta(minutes=20),
            description="x",
            files=[],
            submission_token=uuid.uuid4(),
            now=now,
        )
        client.force_login(member.user)
        response = client.get(reverse("dashboard"))
    page = response.content.decode()
    text = re.sub(r"<[^>]+>", "", page)
    assert response.context["credited_this_month"] == 60
    cap = response.context["cap"]
    assert (cap.used_minutes, cap.cap_minutes) == (60, 7 * 24 * 60)
    assert f'<progress id="cap-bar" max="{7 * 24 * 60}" value="60"' in page
    assert 'for="cap-bar"' in page and 'aria-describedby="cap-text"' in page
    assert appeal.short_id in page and "剩余 1 天 0 小时（截至 11-21 12:00）" in text
    assert text.count("有效") == 1  # membership and account status say it once
    for name in ("members:notification-settings", "members:sign-ins", "members:export"):
        assert reverse(name) in page
