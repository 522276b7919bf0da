"""The status page's reads: component state (one function) and the 90-day
uptime arithmetic, on a frozen clock."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from compensation import uptime
from compensation.models import IncidentKind, IncidentScope
from compensation.services.incidents import incident_declare, incident_open_detected
from compensation.services.nodes import node_create
from compensation.status import (
    component_state,
    day_bounds,
    overall_state,
    past_incidents,
    past_maintenance,
    status_incidents,
    status_overview,
)

pytestmark = pytest.mark.django_db

# 12:00 in Shanghai (the portal's zone): today is half observed.
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=200)
# 2026-11-10 00:00 Shanghai.
DAY = datetime(2026, 11, 9, 16, 0, tzinfo=UTC)
OBSERVED_90 = 89 * 86400 + 12 * 3600


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def make_node(name="sh-node-01", created=LONG_AGO):
    with time_machine.travel(created, tick=False):
        node, _token = node_create(name=name, now=created)
    return node


def declare(kind, start, end, nodes=(), scope=IncidentScope.NODES, title="t"):
    return incident_declare(
        kind=kind,
        scope=scope,
        node_ids=[n.pk for n in nodes],
        started_at=start,
        ended_at=end,
        ratio=None,
        title_zh=title,
        title_en=title,
        actor=None,
        now=NOW,
    )


def component(node):
    overview = status_overview(now=NOW)
    return next(c for c in overview.components if c.node.pk == node.pk)


def test_ninety_days_in_the_portal_time_zone_ending_today():
    bounds = day_bounds(now=NOW)
    assert len(bounds) == 90
    assert bounds[-1][0] == datetime(2026, 11, 19, 16, 0, tzinfo=UTC)  # 11-20 00:00 +08
    assert bounds[0][0] == bounds[-1][0] - timedelta(days=89)
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))


def test_overlapping_outages_count_once():
    node = make_node()
    # 02:00-04:00 detected, 03:30-04:30 declared: 2.5 h of downtime, not 3.
    incident_open_detected(
        kind=IncidentKind.NODE_SILENT,
        node=node,
        started_at=DAY + timedelta(hours=2),
        ended_at=DAY + timedelta(hours=4),
        member_ids=[],
    )
    declare(
        IncidentKind.OUTAGE,
        DAY + timedelta(hours=3, minutes=30),
        DAY + timedelta(hours=4, minutes=30),
        nodes=[node],
    )
    c = component(node)
    day = next(d for d in c.days if d.start == DAY)
    assert day.state == uptime.OUTAGE
    assert day.down == 2.5 * 3600
    assert day.down_minutes == 150
    assert day.uptime == Decimal("89.58")  # 1 - 2.5/24, truncated
    expected = (Decimal(OBSERVED_90 - 9000) / Decimal(OBSERVED_90) * 100).quantize(
        Decimal("0.01"), rounding="ROUND_DOWN"
    )
    assert c.uptime == expected == Decimal("99.88")
    assert sum(1 for d in c.days if d.state == uptime.OUTAGE) == 1
    assert c.state == "operational"  # both are over


def test_an_outage_across_midnight_is_split_between_the_two_days():
    node = make_node()
    declare(IncidentKind.OUTAGE, DAY - timedelta(minutes=30), DAY + timedelta(minutes=45), [node])
    days = {d.start: d for d in component(node).days}
    assert days[DAY - timedelta(days=1)].down == 30 * 60
    assert days[DAY].down == 45 * 60


def test_maintenance_is_not_downtime_even_when_the_node_went_silent_in_it():
    node = make_node()
    declare(IncidentKind.MAINTENANCE, DAY + timedelta(hours=1), DAY + timedelta(hours=4), [node])
    # The node went silent during the window and 30 minutes beyond it.
    incident_open_detected(
        kind=IncidentKind.NODE_SILENT,
        node=node,
        started_at=DAY + timedelta(hours=1, minutes=5),
        ended_at=DAY + timedelta(hours=4, minutes=30),
        member_ids=[],
    )
    day = next(d for d in component(node).days if d.start == DAY)
    assert day.maintenance == 3 * 3600
    assert day.down == 30 * 60  # only the overrun is downtime
    assert day.state == uptime.OUTAGE


def test_a_maintenance_only_day_is_maintenance_and_keeps_100_percent():
    node = make_node()
    declare(IncidentKind.MAINTENANCE, DAY + timedelta(hours=1), DAY + timedelta(hours=2), [node])
    c = component(node)
    assert next(d for d in c.days if d.start == DAY).state == uptime.MAINTENANCE
    assert c.uptime == Decimal("100.00")


def test_one_second_of_downtime_never_shows_as_100_percent():
    node = make_node()
    declare(IncidentKind.OUTAGE, DAY, DAY + timedelta(seconds=1), [node])
    assert component(node).uptime == Decimal("99.99")


def test_days_before_the_node_existed_are_no_data_and_not_in_the_percentage():
    node = make_node(created=NOW - timedelta(days=10, hours=12))  # 11-10 00:00 +08
    declare(IncidentKind.OUTAGE, NOW - timedelta(hours=6), NOW - timedelta(hours=5), [node])
    # An outage before the node existed (platform-wide) is not its downtime.
    declare(
        IncidentKind.OUTAGE,
        NOW - timedelta(days=30),
        NOW - timedelta(days=29),
        scope=IncidentScope.ALL,
    )
    c = component(node)
    # 11-10 is day 79 of 0..89: the 79 days before it have no data.
    assert [d.state for d in c.days[:79]] == [uptime.NO_DATA] * 79
    assert c.days[79].state == uptime.OPERATIONAL
    assert c.no_data_days == 79
    observed = 10 * 86400 + 12 * 3600
    assert sum(d.observed for d in c.days) == observed
    assert c.uptime == (Decimal(observed - 3600) / Decimal(observed) * 100).quantize(
        Decimal("0.01"), rounding="ROUND_DOWN"
    )


def test_a_brand_new_node_has_no_data_not_100_percent():
    node = make_node(created=NOW)
    c = component(node)
    assert c.uptime is None
    assert {d.state for d in c.days} == {uptime.NO_DATA}


def test_an_open_outage_counts_up_to_now():
    node = make_node()
    declare(IncidentKind.OUTAGE, NOW - timedelta(hours=1), None, [node])
    c = component(node)
    assert c.days[-1].down == 3600
    assert c.state == "outage"


def _state(node, incidents_now=None):
    return component_state(node=node, incidents=status_incidents(since=LONG_AGO), now=NOW)


def test_component_state_follows_the_open_incidents_that_cover_the_node():
    a, b = make_node("node-a"), make_node("node-b")
    assert _state(a) == "operational"
    declare(IncidentKind.DEGRADED, NOW - timedelta(minutes=5), None, [a])
    assert (_state(a), _state(b)) == ("degraded", "operational")
    declare(IncidentKind.OUTAGE, NOW - timedelta(minutes=3), None, [a])
    assert _state(a) == "outage"
    # A platform-wide maintenance covers every node, and a silent node in
    # its own maintenance window is the maintenance.
    declare(
        IncidentKind.MAINTENANCE,
        NOW - timedelta(minutes=1),
        NOW + timedelta(hours=1),
        scope=IncidentScope.ALL,
    )
    assert (_state(a), _state(b)) == ("maintenance", "maintenance")


def test_upcoming_maintenance_does_not_change_the_state_yet():
    node = make_node()
    declare(IncidentKind.MAINTENANCE, NOW + timedelta(days=1), NOW + timedelta(days=1, hours=2))
    assert _state(node) == "operational"
    overview = status_overview(now=NOW)
    assert [i.title for i in overview.upcoming] == ["t"]
    assert overview.maintenance_now == [] and overview.active == []


def test_a_mass_drop_is_degraded_performance():
    node = make_node()
    incident_open_detected(
        kind=IncidentKind.MASS_DROP, node=node, started_at=NOW - timedelta(minutes=2), member_ids=[]
    )
    assert _state(node) == "degraded"


def test_overall_state_is_the_worst_component_and_maintenance_ranks_lowest():
    assert overall_state([]) == "operational"
    assert overall_state(["operational", "maintenance"]) == "maintenance"
    assert overall_state(["maintenance", "degraded"]) == "degraded"
    assert overall_state(["degraded", "outage", "maintenance"]) == "outage"


def test_past_incidents_never_list_maintenance():
    node = make_node()
    outage = declare(IncidentKind.OUTAGE, DAY, DAY + timedelta(hours=1), [node], title="o")
    maint = declare(IncidentKind.MAINTENANCE, DAY, DAY + timedelta(hours=1), [node], title="m")
    assert list(past_incidents()) == [outage]
    assert list(past_maintenance()) == [maint]
