"""The status page, incident pages, the Atom feed, GET /api/v1/status/, the
status subscription and staff-posted updates (admin and service)."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from compensation.models import IncidentKind, IncidentScope, IncidentStatus, IncidentUpdate
from compensation.notices import incident_render
from compensation.services.incident_updates import incident_update_post
from compensation.services.incidents import incident_declare, incident_open_detected
from compensation.services.nodes import node_create
from members.models import Notification, NotificationKind, NotificationPreference
from members.services.preferences import preferences_set
from members.tests.factories import MemberFactory, StaffFactory
from members.tests.mfa import staff_login

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


class Scene:
    """A node with a past outage (with its update timeline), a scheduled
    maintenance, and a member who is on the outage's affected list."""

    def __init__(self):
        with time_machine.travel(NOW - timedelta(days=120), tick=False):
            self.node, _ = node_create(name="sh-node-01", now=NOW - timedelta(days=120))
            self.other, _ = node_create(name="bj-node-02", now=NOW - timedelta(days=120))
        self.member = MemberFactory(email="member@example.com").member
        start = NOW - timedelta(days=3)
        self.outage = incident_declare(
            kind=IncidentKind.OUTAGE,
            scope=IncidentScope.NODES,
            node_ids=[self.node.pk],
            started_at=start,
            ended_at=None,
            ratio=None,
            title_zh="上海节点故障",
            title_en="Shanghai node outage",
            actor=None,
            now=start,
        )
        for minutes, stage, zh, en in (
            (5, "investigating", "正在调查。", "We are investigating."),
            (20, "identified", "已找到原因：机房断电。", "Cause found: power loss."),
            (40, "monitoring", "已恢复供电，正在观察。", "Power restored, monitoring."),
            (70, "resolved", "已恢复正常。", "Back to normal."),
        ):
            incident_update_post(
                incident=self.outage,
                status=stage,
                message_zh=zh,
                message_en=en,
                actor=None,
                now=start + timedelta(minutes=minutes),
            )
        self.outage.refresh_from_db()
        self.maintenance = incident_declare(
            kind=IncidentKind.MAINTENANCE,
            scope=IncidentScope.NODES,
            node_ids=[self.other.pk],
            started_at=NOW + timedelta(days=2),
            ended_at=NOW + timedelta(days=2, hours=2),
            ratio=None,
            title_zh="北京节点升级",
            title_en="Beijing node upgrade",
            actor=None,
            now=NOW,
        )


@pytest.fixture
def scene():
    return Scene()


def test_a_resolving_update_ends_a_declared_incident(scene):
    assert scene.outage.status == IncidentStatus.CLOSED
    assert scene.outage.ended_at == scene.outage.started_at + timedelta(minutes=70)
    stages = list(scene.outage.updates.values_list("status", flat=True))
    assert stages == ["investigating", "identified", "monitoring", "resolved"]


def test_status_page_shows_components_bars_and_separates_maintenance(
    client, scene, django_assert_max_num_queries
):
    with django_assert_max_num_queries(14):
        page = client.get("/status/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert page.count('data-testid="component"') == 2
    assert page.count('class="bar day-') == 180
    assert 'class="bar day-outage" title="2026-11-17 · 中断 · 中断时长 1 小时 10 分钟' in page
    assert "99.94% 可用率" in page or "99.94%" in page
    assert 'rel="alternate" type="application/atom+xml" href="/status/feed.atom"' in page
    past = page.split('data-testid="past-incidents"')[1].split("</section>")[0]
    upcoming = page.split('data-testid="upcoming-maintenance"')[1].split("</section>")[0]
    assert "上海节点故障" in past and "北京节点升级" not in past
    assert "北京节点升级" in upcoming and "已计划" in upcoming
    assert "最后更新" in page
    # The text alternative of the bars lists the outage day.
    assert '<th scope="row">2026-11-17</th>' in page


def test_the_same_incident_has_the_same_label_on_every_page_and_notice(client, scene):
    maintenance_page = client.get(f"/status/{scene.maintenance.public_id}/").content.decode()
    status_page = client.get("/status/").content.decode()
    assert 'data-testid="incident-label">维护<' in maintenance_page
    upcoming = status_page.split('data-testid="upcoming-maintenance"')[1].split("</section>")[0]
    assert ">维护<" in upcoming and ">故障<" not in upcoming
    title, _body, _url = incident_render(scene.maintenance, "declared")()
    assert title.startswith("维护") and "故障" not in title
    outage_page = client.get(f"/status/{scene.outage.public_id}/").content.decode()
    assert 'data-testid="incident-label">故障<' in outage_page


def test_incident_page_lists_updates_in_order_and_no_member_data(client, scene):
    page = client.get(
        f"/status/{scene.outage.public_id}/", HTTP_COOKIE="django_language=en"
    ).content.decode()
    positions = [
        page.index(f'data-stage="{s}"')
        for s in ("investigating", "identified", "monitoring", "resolved")
    ]
    assert positions == sorted(positions)
    assert "Power restored, monitoring." in page
    assert scene.member.member_no not in page and "member@example.com" not in page


def test_unknown_or_withdrawn_incident_is_404(client, scene):
    assert client.get("/status/00000000-0000-0000-0000-000000000000/").status_code == 404
    node = scene.node
    silent = incident_open_detected(
        kind=IncidentKind.NODE_SILENT, node=node, started_at=NOW, member_ids=[]
    )
    from compensation.services.incidents import incident_cancel

    incident_cancel(incident=silent)
    assert client.get(f"/status/{silent.public_id}/").status_code == 404


def test_atom_feed_parses_and_lists_incidents_with_their_updates(client, scene):
    response = client.get("/status/feed.atom", HTTP_COOKIE="django_language=en")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    entries = root.findall(f"{ATOM}entry")
    by_title = {e.findtext(f"{ATOM}title"): e for e in entries}
    assert set(by_title) == {
        "[Incident] Shanghai node outage",
        "[Maintenance] Beijing node upgrade",
    }
    outage = by_title["[Incident] Shanghai node outage"]
    assert outage.find(f"{ATOM}link").get("href").endswith(f"/status/{scene.outage.public_id}/")
    summary = outage.findtext(f"{ATOM}summary")
    assert summary.index("We are investigating.") < summary.index("Back to normal.")
    assert outage.find(f"{ATOM}category").get("term") == "Incident"
    # <updated> moves with the last change (the frozen clock here).
    assert outage.findtext(f"{ATOM}updated") == "2026-11-20T04:00:00+00:00"
    assert root.findtext(f"{ATOM}title") == "Kamen service status"


def test_status_api_summary(client, scene, django_assert_max_num_queries):
    declare_now = incident_declare(
        kind=IncidentKind.DEGRADED,
        scope=IncidentScope.NODES,
        node_ids=[scene.other.pk],
        started_at=NOW - timedelta(minutes=10),
        ended_at=None,
        ratio=None,
        title_zh="北京节点变慢",
        title_en="Beijing node slow",
        actor=None,
        now=NOW,
    )
    incident_update_post(
        incident=declare_now,
        status="investigating",
        message_zh="正在调查变慢原因。",
        message_en="Looking into the slowness.",
        actor=None,
        now=NOW,
    )
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/status/", HTTP_COOKIE="django_language=en")
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "degraded"
    components = {c["name"]: c for c in body["components"]}
    assert components["sh-node-01"] == {
        "id": str(scene.node.public_id),
        "name": "sh-node-01",
        "state": "operational",
        "uptime_90d": "99.94",
    }
    assert components["bj-node-02"]["state"] == "degraded"
    [active] = body["incidents"]
    assert active["title"] == "Beijing node slow"
    assert active["latest_update"]["status"] == "investigating"
    assert active["latest_update"]["message"] == "Looking into the slowness."
    [maintenance] = body["maintenance"]
    assert (maintenance["label"], maintenance["phase"]) == ("Maintenance", "scheduled")
    assert body["updated_at"].startswith("2026-11-20T")


def test_status_api_needs_no_sign_in_and_ignores_a_bad_session(client):
    client.cookies["sessionid"] = "garbage"
    response = client.get("/api/v1/status/")
    assert response.status_code == 200
    assert response.json()["state"] == "operational"


def test_anonymous_visitors_get_the_feed_and_a_sign_in_link(client):
    page = client.get("/status/").content.decode()
    assert "/accounts/login/?next=/status/" in page or "login" in page
    assert 'data-testid="feed-link"' in page
    # Anonymous visitors subscribe by email (members/tests/test_subscribers.py):
    # without an address they are told what is missing.
    response = client.post("/status/subscribe/", {"subscribe": "1"})
    assert response.status_code == 400
    assert 'data-testid="subscribe-error"' in response.content.decode()


def test_a_member_subscribes_and_is_told_of_updates(client, django_capture_on_commit_callbacks):
    member = MemberFactory().member
    bystander = MemberFactory().member
    client.force_login(member.user)
    assert 'data-testid="subscribe-button"' in client.get("/status/").content.decode()
    client.post("/status/subscribe/", {"subscribe": "1"})
    pref = NotificationPreference.objects.get(user=member.user, kind=NotificationKind.STATUS_NOTICE)
    assert (pref.email, pref.inbox) == (True, True)
    assert 'data-testid="unsubscribe"' in client.get("/status/").content.decode()
    incident = incident_declare(
        kind=IncidentKind.MAINTENANCE,
        scope=IncidentScope.NODES,
        node_ids=[],
        started_at=NOW + timedelta(hours=5),
        ended_at=NOW + timedelta(hours=6),
        ratio=None,
        title_zh="数据库升级",
        title_en="Database upgrade",
        actor=None,
        now=NOW,
    )
    with django_capture_on_commit_callbacks(execute=True):
        incident_update_post(
            incident=incident,
            status="scheduled",
            message_zh="将于今晚升级数据库。",
            message_en="Database upgrade tonight.",
            actor=None,
            now=NOW,
        )
    notices = Notification.objects.filter(kind=NotificationKind.STATUS_NOTICE)
    assert {n.user_id for n in notices} == {member.user_id}
    assert bystander.user_id not in {n.user_id for n in notices}
    assert notices.filter(title__startswith="维护更新").exists()
    client.post("/status/subscribe/", {"subscribe": "0"})
    pref.refresh_from_db()
    assert (pref.email, pref.inbox) == (False, False)


def test_status_notices_are_opt_in_and_listed_in_settings(client):
    member = MemberFactory().member
    client.force_login(member.user)
    page = client.get(reverse("members:notification-settings")).content.decode()
    assert "状态页" in page or "Status page" in page
    preferences_set(user=member.user, kind=NotificationKind.STATUS_NOTICE, email=True)
    assert NotificationPreference.objects.get(
        user=member.user, kind=NotificationKind.STATUS_NOTICE
    ).email


def test_update_rules():
    with time_machine.travel(NOW - timedelta(days=10), tick=False):
        node, _ = node_create(name="n1", now=NOW - timedelta(days=10))
    silent = incident_open_detected(
        kind=IncidentKind.NODE_SILENT, node=node, started_at=NOW - timedelta(hours=1), member_ids=[]
    )
    with pytest.raises(ValidationError) as wrong_stage:
        incident_update_post(
            incident=silent, status="completed", message_zh="x", message_en="x", actor=None, now=NOW
        )
    assert "status" in wrong_stage.value.message_dict
    with pytest.raises(ValidationError):
        # Detection ends a detected outage; staff cannot declare it over.
        incident_update_post(
            incident=silent, status="resolved", message_zh="x", message_en="x", actor=None, now=NOW
        )
    assert not IncidentUpdate.objects.exists()


def _admin_post(client, incident, stage):
    return client.post(
        reverse("admin:compensation_incidentupdate_add"),
        {
            "incident": incident.pk,
            "status": stage,
            "message_zh": "正在处理。",
            "message_en": "Working on it.",
        },
    )


@pytest.mark.parametrize(
    ("role", "stage", "posted", "closed"),
    [
        ("Operators", "identified", True, False),
        ("Operators", "resolved", True, True),
        ("Supervisors", "identified", True, False),
        ("Supervisors", "resolved", False, False),  # may post, may not end it
        ("Reviewers", "identified", False, False),
    ],
)
def test_staff_post_updates_in_admin_by_role(client, role, stage, posted, closed):
    call_command("sync_staff_groups", stdout=StringIO())
    staff = StaffFactory()
    staff.groups.add(Group.objects.get(name=role))
    staff_login(client, staff)
    incident = incident_declare(
        kind=IncidentKind.OUTAGE,
        scope=IncidentScope.ALL,
        node_ids=[],
        started_at=NOW - timedelta(minutes=30),
        ended_at=None,
        ratio=None,
        title_zh="全站故障",
        title_en="Site-wide outage",
        actor=None,
        now=NOW,
    )
    response = _admin_post(client, incident, stage)
    assert IncidentUpdate.objects.filter(incident=incident).exists() == posted
    incident.refresh_from_db()
    assert (incident.status == IncidentStatus.CLOSED) == closed
    if role == "Reviewers":
        assert response.status_code == 403
    elif not posted:
        assert response.status_code == 200 and response.context["adminform"].form.errors
    if posted:
        update = IncidentUpdate.objects.get(incident=incident)
        assert update.posted_by_id == staff.pk
        change = client.get(reverse("admin:compensation_incident_change", args=[incident.pk]))
        assert "正在处理。" in change.content.decode()


def test_a_maintenance_credit_is_labelled_maintenance_on_my_compensation(client):
    from compensation.services.incidents import incident_pay_members, incident_payout_plan

    member = MemberFactory().member
    maintenance = incident_declare(
        kind=IncidentKind.MAINTENANCE,
        scope=IncidentScope.ALL,
        node_ids=[],
        started_at=NOW - timedelta(hours=3),
        ended_at=NOW - timedelta(hours=2),
        ratio=None,
        title_zh="全站维护",
        title_en="Site maintenance",
        actor=None,
        now=NOW,
    )
    for chunk in incident_payout_plan(incident_id=maintenance.pk, threshold=timedelta(minutes=5)):
        incident_pay_members(incident_id=maintenance.pk, member_ids=chunk, now=NOW)
    client.force_login(member.user)
    page = client.get(reverse("compensation:my-compensation")).content.decode()
    cell = page.split('data-label="事由" data-kind="credit">')[1].split("</td>")[0]
    cell = re.sub(r"<[^>]+>", "", cell)
    assert cell.startswith("维护") and "故障" not in cell


def test_degraded_performance_is_closed_by_detection_and_told_only_to_subscribers(
    django_capture_on_commit_callbacks,
):
    from compensation.services.detection import detection_run
    from compensation.services.incidents import incident_notify

    subscriber = MemberFactory().member
    other = MemberFactory().member
    preferences_set(user=subscriber.user, kind=NotificationKind.STATUS_NOTICE, email=True)
    slow = incident_declare(
        kind=IncidentKind.DEGRADED,
        scope=IncidentScope.ALL,
        node_ids=[],
        started_at=NOW - timedelta(hours=2),
        ended_at=NOW + timedelta(minutes=30),
        ratio=None,
        title_zh="全站变慢",
        title_en="Slow everywhere",
        actor=None,
        now=NOW,
    )
    incident_notify(incident_id=slow.pk, event="declared", now=NOW)
    told = set(Notification.objects.values_list("user_id", flat=True))
    assert told == {subscriber.user_id}
    assert other.user_id not in told
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        detection_run(now=NOW + timedelta(hours=1))
    slow.refresh_from_db()
    assert slow.status == IncidentStatus.CLOSED
    assert slow.payout_state == "not_started"  # no window is paid
