"""End to end: Debian's real ``prometheus`` and ``prometheus-alertmanager``,
with the shipped node rule (deploy/prometheus/kamen-node-alerts.example.yml,
``for: 2m``, unchanged) and the shipped route and receiver
(deploy/alertmanager/kamen-receiver.yml: group_wait 30 s, group_interval
1 m, send_resolved), against the real portal (gunicorn).

A service node with four members' sessions beats every 2 s and answers
Prometheus's scrapes (the rule sees a node down through ``up`` of the
``service-nodes`` job, Prometheus's own scrape of the node; the portal
exports nothing per node for it). Then the node goes down for five minutes
of real time: no beats, scrapes refused. ``KamenServiceNodeDown`` fires two
minutes in, Alertmanager posts it 30 s later, the node comes back, the
resolution follows at the next group interval. Every member is credited
the whole silence, from their node's last accepted beat (not from the
alert's start, which would pay about 3 of the 5 minutes), within a minute
of rounding; a detection pass over the same silence afterwards pays nothing
more.

Only Prometheus's scrape and evaluation intervals are shortened (1 s, in a
test-only prometheus.yml). Runs about 6 minutes, nearly all of it the
outage itself.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from kamen_portal.env import env_bool

from .stack import (
    ALERTMANAGER,
    PROMETHEUS,
    Alertmanager,
    Portal,
    Prometheus,
    ServiceNode,
    binary,
    wait_until,
)

pytestmark = pytest.mark.slow

NODE = "sh-node-01"
MEMBERS = 4
OUTAGE = timedelta(minutes=5)
# A little over five minutes, so the silence is longer than the policy's
# 5-minute threshold and detection records it as a node gap of its own.
MARGIN = 2.0

READ_OUT = """
import json
from compensation.models import AlertLink, Incident, LedgerEntry
from members.models import MemberProfile
incidents = [
    {"kind": i.kind, "status": i.status, "payout": i.payout_state,
     "started_at": i.started_at.isoformat(),
     "ended_at": i.ended_at.isoformat() if i.ended_at else None}
    for i in Incident.objects.order_by("kind", "pk")
]
links = [
    {"alertname": a.alertname, "starts_at": a.starts_at.isoformat(),
     "received_at": a.received_at.isoformat(),
     "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None}
    for a in AlertLink.objects.order_by("pk")
]
credited = {
    m.member_no: sum(e.minutes for e in LedgerEntry.objects.filter(member=m).exclude(kind="opening"))
    for m in MemberProfile.objects.order_by("member_no")
}
print(json.dumps({"incidents": incidents, "links": links, "credited": credited}))
"""


def _binaries() -> tuple[str, str]:
    found = binary("prometheus", PROMETHEUS), binary("prometheus-alertmanager", ALERTMANAGER)
    if None in found:
        message = "needs Debian's prometheus and prometheus-alertmanager (apt-get install)"
        if env_bool("KAMEN_FAIL_ON_SKIP", default=False):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def stack(tmp_path):
    prometheus_bin, alertmanager_bin = _binaries()
    token = secrets.token_urlsafe(32)
    portal = Portal(tmp_path, alertmanager_token=token)
    portal.manage("migrate", "--noinput", "--verbosity", "0")
    members = portal.shell_json(
        "import json; from django.utils import timezone; "
        "from benchmarks.data import ensure_members; "
        f"print(json.dumps([m.member_no for m in ensure_members({MEMBERS}, now=timezone.now())]))"
    )
    node_token = portal.manage("create_node", NODE).strip().splitlines()[-1]
    portal.start()
    alertmanager = Alertmanager(
        tmp_path, portal_url=portal.url, token=token, executable=alertmanager_bin
    )
    node = ServiceNode(portal.url, node_token, members)
    prometheus = Prometheus(
        tmp_path,
        node_name=NODE,
        node_port=node.port,
        alertmanager_port=alertmanager.port,
        executable=prometheus_bin,
    )
    started = []
    try:
        for part in (alertmanager, node, prometheus):
            part.start()
            started.append(part)
        yield portal, alertmanager, node, prometheus, members
    finally:
        for part in reversed(started):
            part.stop()
        portal.stop()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_five_minute_node_outage_is_credited_whole_through_prometheus_and_alertmanager(
    stack, output_dir
):
    portal, alertmanager, node, prometheus, members = stack
    # The route under test is the shipped one.
    (route,) = alertmanager.config["route"]["routes"]
    assert route["receiver"] == "kamen-portal" and route["group_wait"] == "30s"
    wait_until(
        lambda: prometheus.query(f'up{{job="service-nodes",instance="{NODE}:{node.port}"}} == 1'),
        timeout=60,
        what="Prometheus to scrape the node",
    )
    wait_until(lambda: len(node.accepted) >= 3, timeout=60, what="the node's first beats")
    assert not node.errors, node.errors

    # The node goes down: no beats, its scrape port refuses connections.
    node.stop()
    down_at = time.monotonic()
    last_beat = node.accepted[-1]

    def firing():
        return [
            a
            for a in prometheus.alerts()
            if a["labels"].get("alertname") == "KamenServiceNodeDown" and a["state"] == "firing"
        ]

    (alert,) = wait_until(firing, timeout=180, what="KamenServiceNodeDown to fire", every=1)
    assert alert["labels"]["kamen_node"] == NODE
    fired_after = time.monotonic() - down_at
    assert fired_after >= 120  # the rule's `for: 2m`, as shipped

    # Alertmanager's group_wait (30 s) later the portal has opened the outage,
    # starting at the node's last beat while the node is still down.
    def opened():
        state = portal.shell_json(READ_OUT)
        return state if state["incidents"] else None

    during = wait_until(opened, timeout=120, what="the portal to open the outage", every=5)
    assert time.monotonic() - down_at < OUTAGE.total_seconds()
    (incident,) = during["incidents"]
    assert (incident["kind"], incident["status"]) == ("outage", "open")
    assert _at(incident["started_at"]) == last_beat
    (link,) = during["links"]
    assert _at(link["starts_at"]) >= last_beat + timedelta(minutes=2)  # the alert's own start

    # Five minutes after it stopped, the node is back.
    time.sleep(max(0.0, OUTAGE.total_seconds() + MARGIN - (time.monotonic() - down_at)))
    beats_before = len(node.accepted)
    node.start()
    wait_until(lambda: len(node.accepted) > beats_before, timeout=30, what="the node's return")
    first_back = node.accepted[beats_before]
    silence = (first_back - last_beat).total_seconds() / 60
    assert silence >= 5

    def paid():
        state = portal.shell_json(READ_OUT)
        outage = [i for i in state["incidents"] if i["kind"] == "outage"]
        return state if outage and outage[0]["payout"] == "done" else None

    # The resolution comes at Alertmanager's next group interval (1 m).
    after_alert = wait_until(paid, timeout=180, what="the resolution and its payout", every=5)
    # The detection pass sees the same silence as a node gap: paid once.
    portal.manage("detect_disconnects")
    final = portal.shell_json(READ_OUT)

    (outage,) = [i for i in final["incidents"] if i["kind"] == "outage"]
    assert outage["status"] == "closed" and _at(outage["started_at"]) == last_beat
    (detected,) = [i for i in final["incidents"] if i["kind"] == "node_silent"]
    assert (_at(detected["started_at"]), _at(detected["ended_at"])) == (last_beat, first_back)
    assert _at(outage["ended_at"]) >= first_back - timedelta(seconds=5)
    credited = final["credited"]
    # What happened, for a person to look at (test-output/monitoring/).
    summary = {
        "last_beat": last_beat.isoformat(),
        "first_beat_back": first_back.isoformat(),
        "silence_minutes": round(silence, 3),
        "fired_after_seconds": round(fired_after, 1),
        **final,
    }
    directory = Path(output_dir) / "monitoring"
    directory.mkdir(exist_ok=True)
    (directory / "alert-outage.json").write_text(json.dumps(summary, indent=2))
    assert set(credited) == set(members)
    # Every member: the whole silence, rounded up to the minute (the alert's
    # end may lag the node's first beat back by a scrape or two).
    for member, minutes in credited.items():
        assert math.floor(silence) <= minutes <= math.ceil(silence) + 1, (member, minutes, silence)
        assert minutes >= 5, (member, minutes)
    assert final["credited"] == after_alert["credited"]  # detection added nothing
    assert not node.errors, node.errors
