"""The public status page in real Chromium: a node with a past outage (and
its update timeline), past and scheduled maintenance, an ongoing degradation;
desktop and phone, Chinese and English; the Atom feed parsed; a member
subscribing; the JSON summary."""

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
import time_machine
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone

from compensation.models import IncidentKind, IncidentScope
from compensation.services.incident_updates import incident_update_post
from compensation.services.incidents import incident_declare
from compensation.services.nodes import node_create
from members.models import NotificationKind, NotificationPreference
from members.tests.factories import PASSWORD, MemberFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ATOM = "{http://www.w3.org/2005/Atom}"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def _node(name, *, age_days, now):
    created = now - timedelta(days=age_days)
    with time_machine.travel(created, tick=False):
        node, _token = node_create(name=name, now=created, description="")
    return node


def _declare(kind, *, nodes, start, end, zh, en, now, scope=IncidentScope.NODES):
    return incident_declare(
        kind=kind,
        scope=scope,
        node_ids=[n.pk for n in nodes],
        started_at=start,
        ended_at=end,
        ratio=None,
        title_zh=zh,
        title_en=en,
        actor=None,
        now=now,
    )


def _post(incident, stage, at, zh, en):
    return incident_update_post(
        incident=incident, status=stage, message_zh=zh, message_en=en, actor=None, now=at
    )


@pytest.fixture
def status_world():
    now = timezone.now().replace(second=0, microsecond=0)
    sh = _node("sh-node-01", age_days=120, now=now)
    bj = _node("bj-node-02", age_days=120, now=now)
    gz = _node("gz-node-03", age_days=20, now=now)
    # Five days ago, 10:00-11:10 in the portal's zone (one calendar day's bar).
    local = timezone.localtime(now - timedelta(days=5))
    start = local.replace(hour=10, minute=0)
    outage = _declare(
        IncidentKind.OUTAGE,
        nodes=[sh],
        start=start,
        end=None,
        zh="上海节点中断",
        en="Shanghai node outage",
        now=start,
    )
    for minutes, stage, zh, en in (
        (5, "investigating", "上海节点无法连接，正在调查。", "sh-node-01 is unreachable."),
        (20, "identified", "已查明原因：机房供电中断。", "Cause found: power loss."),
        (45, "monitoring", "已恢复供电，正在观察。", "Power is back; monitoring."),
        (
            70,
            "resolved",
            "服务已恢复正常，受影响时长将自动补偿。",
            "Resolved; lost time is credited.",
        ),
    ):
        _post(outage, stage, start + timedelta(minutes=minutes), zh, en)
    past_maintenance = _declare(
        IncidentKind.MAINTENANCE,
        nodes=[bj],
        start=now - timedelta(days=12, hours=3),
        end=now - timedelta(days=12, hours=1),
        zh="北京节点例行维护",
        en="Beijing node routine maintenance",
        now=now,
    )
    upcoming = _declare(
        IncidentKind.MAINTENANCE,
        nodes=[bj],
        start=now + timedelta(days=2),
        end=now + timedelta(days=2, hours=2),
        zh="北京节点系统升级",
        en="Beijing node system upgrade",
        now=now,
    )
    _post(
        upcoming,
        "scheduled",
        now,
        "升级期间北京节点暂停服务约 2 小时，其间时长将自动补偿。",
        "bj-node-02 will be down for about 2 hours; the time is credited.",
    )
    slow = _declare(
        IncidentKind.DEGRADED,
        nodes=[gz],
        start=now - timedelta(minutes=25),
        end=None,
        zh="广州节点延迟升高",
        en="Guangzhou node latency",
        now=now,
    )
    _post(slow, "investigating", now, "部分会员连接变慢，正在调查。", "Some connections are slow.")
    return {
        "outage": outage,
        "past_maintenance": past_maintenance,
        "upcoming": upcoming,
        "slow": slow,
    }


def _set_language(context, base, language):
    context.add_cookies([{"name": "django_language", "value": language, "url": base}])


def _serious_violations(page) -> list[str]:
    """axe-core over the page's own content (``main``; the shared layout is
    checked by the site-wide axe run): serious or critical ones only."""
    results = Axe().run(page, context="main")
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])})"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _fits(page, width):
    return page.evaluate("document.documentElement.scrollWidth") <= width


def test_status_page_journey(browser, live_server, shots, status_world):
    base = live_server.url
    outage = status_world["outage"]

    # Desktop, Chinese, anonymous.
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    _set_language(context, base, "zh-hans")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/status/")
    assert page.locator("[data-testid=overall]").get_attribute("data-state") == "degraded"
    assert "部分服务性能下降" in page.locator("[data-testid=overall]").inner_text()
    assert page.locator("[data-testid=last-updated]").inner_text()
    components = page.locator("[data-testid=component]")
    assert components.count() == 3
    sh = page.locator("[data-testid=component][data-node=sh-node-01]")
    assert sh.get_attribute("data-state") == "operational"
    assert re.search(r"90 天可用率 99\.9\d%", sh.inner_text())
    assert sh.locator(".bar").count() == 90
    outage_bar = sh.locator(".bar.day-outage")
    assert outage_bar.count() == 1
    assert "中断时长 1 小时 10 分钟" in outage_bar.get_attribute("title")
    gz = page.locator("[data-testid=component][data-node=gz-node-03]")
    assert gz.get_attribute("data-state") == "degraded"
    assert gz.locator(".bar.day-no_data").count() == 69  # added 20 days ago
    assert page.locator("link[rel=alternate][type='application/atom+xml']").count() == 1
    past = page.locator("[data-testid=past-incidents]").inner_text()
    assert "上海节点中断" in past and "维护" not in past
    assert "北京节点例行维护" in page.locator("[data-testid=past-maintenance]").inner_text()
    upcoming = page.locator("[data-testid=upcoming-maintenance]").inner_text()
    assert "北京节点系统升级" in upcoming and "已计划" in upcoming
    assert "登录" in page.locator("[data-testid=subscribe]").inner_text()
    shots(page, "status-01-desktop-zh")
    assert _serious_violations(page) == []

    # The text alternative of the bars.
    sh.locator("summary").click()
    assert "中断时长" in sh.locator("table").inner_text()
    page.evaluate("window.scrollTo(0, 0)")
    shots(page, "status-02-daily-record-zh")

    # The past outage's page: its updates in order.
    page.locator("[data-testid=past-incidents] a", has_text="上海节点中断").click()
    page.wait_for_url(re.compile(rf"/status/{outage.public_id}/$"))
    assert page.locator("[data-testid=incident-label]").inner_text() == "故障"
    stages = page.locator("[data-testid=updates] li").evaluate_all(
        "items => items.map(i => i.dataset.stage)"
    )
    assert stages == ["investigating", "identified", "monitoring", "resolved"]
    shots(page, "status-03-incident-zh")
    assert _serious_violations(page) == []

    # The scheduled maintenance is 维护 on its own page too.
    page.goto(f"{base}/status/{status_world['upcoming'].public_id}/")
    assert page.locator("[data-testid=incident-label]").inner_text() == "维护"
    assert page.locator("[data-testid=incident-phase]").inner_text() == "已计划"

    # The Atom feed, parsed.
    feed = page.request.get(f"{base}/status/feed.atom")
    assert feed.status == 200
    root = ET.fromstring(feed.body())
    titles = [e.findtext(f"{ATOM}title") for e in root.findall(f"{ATOM}entry")]
    assert "[故障] 上海节点中断" in titles
    assert "[维护] 北京节点系统升级" in titles
    assert "[维护] 北京节点例行维护" in titles
    entry = next(
        e
        for e in root.findall(f"{ATOM}entry")
        if e.findtext(f"{ATOM}title") == "[故障] 上海节点中断"
    )
    summary = entry.findtext(f"{ATOM}summary")
    assert summary.index("正在调查") < summary.index("已恢复正常")

    # The JSON summary.
    summary_json = page.request.get(f"{base}/api/v1/status/").json()
    assert summary_json["state"] == "degraded"
    assert {c["name"]: c["state"] for c in summary_json["components"]} == {
        "bj-node-02": "operational",
        "gz-node-03": "degraded",
        "sh-node-01": "operational",
    }
    assert summary_json["incidents"][0]["latest_update"]["status"] == "investigating"
    assert errors == []
    context.close()

    # Phone, English.
    context = browser.new_context(viewport=PHONE, locale="en-US", is_mobile=True)
    _set_language(context, base, "en")
    page = context.new_page()
    page.goto(f"{base}/status/")
    assert "Some services are running with degraded performance." in page.inner_text("main")
    assert _fits(page, PHONE["width"])
    sh = page.locator("[data-testid=component][data-node=sh-node-01]")
    assert sh.locator(".bar:visible").count() == 30
    assert "uptime over 90 days" in sh.inner_text()
    shots(page, "status-04-phone-en")
    assert _serious_violations(page) == []
    page.goto(f"{base}/status/{outage.public_id}/")
    assert _fits(page, PHONE["width"])
    assert page.locator("[data-testid=incident-label]").inner_text() == "Incident"
    shots(page, "status-05-incident-phone-en")
    context.close()

    # Phone, Chinese.
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True)
    _set_language(context, base, "zh-hans")
    page = context.new_page()
    page.goto(f"{base}/status/")
    assert _fits(page, PHONE["width"])
    shots(page, "status-06-phone-zh")
    assert _serious_violations(page) == []
    context.close()


def test_a_member_subscribes_to_status_notices(page, live_server, shots, status_world):
    member = MemberFactory(email="watcher@example.com").member
    page.context.add_cookies(
        [{"name": "django_language", "value": "zh-hans", "url": live_server.url}]
    )
    page.goto(f"{live_server.url}/accounts/login/?next=/status/")
    page.fill("input[name=login]", "watcher@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/status/$"))
    page.locator("[data-testid=subscribe-button]").click()
    page.wait_for_url(re.compile(r"/status/$"))
    assert "我们将通过邮件通知您" in page.locator(".messages").inner_text()
    assert page.locator("[data-testid=unsubscribe]").is_visible()
    pref = NotificationPreference.objects.get(user=member.user, kind=NotificationKind.STATUS_NOTICE)
    assert pref.email and pref.inbox
    shots(page, "status-07-subscribed-zh")
