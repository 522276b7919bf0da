"""The status page's history: the demo's past shows on the bars, a retired
node stays a component while it matters (its days after retirement are
"no data"), and every node a member's disconnect names is on the page."""

import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from compensation import uptime
from compensation.models import Disconnect, Node
from compensation.services.nodes import node_create, node_revoke
from compensation.status import status_overview
from members.tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def test_a_retired_node_is_observed_only_until_its_retirement():
    start = datetime(2026, 11, 1, 16, 0, tzinfo=UTC)  # 11-02 00:00 Shanghai
    bounds = [(start + timedelta(days=n), start + timedelta(days=n + 1)) for n in range(5)]
    timeline = uptime.node_timeline(outages=[], degraded=[], maintenance=[])
    days = uptime.days_of(
        timeline,
        bounds=bounds,
        observed_from=start,
        now=start + timedelta(days=5),
        observed_until=start + timedelta(days=2, hours=12),
    )
    assert [d.state for d in days] == ["operational"] * 3 + ["no_data"] * 2
    assert days[2].observed == 12 * 3600


def test_the_demo_history_shows_on_the_bars_and_every_disconnect_node_is_a_component(client):
    call_command("seed_demo", stdout=StringIO())
    overview = status_overview(now=datetime.now(tz=UTC))
    demo = next(c for c in overview.components if c.node.name == "demo-node")
    states = [d.state for d in demo.days]
    # 30 days of record, not today alone; the demo maintenance on its day.
    assert states.count("no_data") == 90 - 31
    assert "maintenance" in states
    assert states[-1] == "operational"

    listed = {c.node.name for c in overview.components + overview.retired}
    named = set(Disconnect.objects.values_list("node__name", flat=True))
    assert named and named <= listed

    html = client.get("/status/").content.decode()
    for name in named:
        assert f'id="node-{name}"' in html
    retired = re.search(r'data-testid="retired-components">(.*?)</ul>', html, re.S).group(1)
    assert "demo-history-node" in retired and 'data-testid="retired"' in retired


def test_a_node_retired_long_ago_stays_listed_only_if_a_disconnect_names_it():
    with time_machine.travel(NOW - timedelta(days=200), tick=False):
        old, _ = node_create(name="old-node", now=NOW - timedelta(days=200))
        node_revoke(node=old, now=NOW - timedelta(days=150))
        gone, _ = node_create(name="gone-node", now=NOW - timedelta(days=200))
        node_revoke(node=gone, now=NOW - timedelta(days=150))
    member = MemberFactory().member
    Disconnect.objects.create(
        member=member,
        node=old,
        session_id="s",
        started_at=NOW - timedelta(days=160),
        ended_at=NOW - timedelta(days=160) + timedelta(minutes=9),
        detected_at=NOW - timedelta(days=160),
    )
    overview = status_overview(now=NOW)
    assert [c.node.name for c in overview.retired] == ["old-node"]
    assert all(d.state == "no_data" for d in overview.retired[0].days)
    assert Node.objects.count() == 2 and overview.components == []
