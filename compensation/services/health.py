"""Network health (issue 14 items 5-6): one call per detection pass observes
every node with what the portal already receives, steps the node's online
model (compensation/health_model.py), records its state and score, and acts
on a new degradation episode: operators are told, and members on the node
get a notice naming the healthiest node they may use instead (once per
episode each, within their notification preferences). Nothing here credits
time: credits stay with detection and the policy.

The same pass samples members' usage for the personalised-compensation
profiles, off the ingest path (see ``usage_sample_node``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count

from kamen_portal.queue import enqueue_on_commit
from members.models import User
from members.services.notify import notify_many

from .. import health_model as hm
from .. import health_notices
from ..models import Disconnect, DisconnectStatus, HealthState, Node, NodeHealth
from ..store import NodeClock, get_store
from .incidents import member_ids_for_keys
from .usage import usage_add

logger = logging.getLogger(__name__)

# A live session whose last beat is this far behind its node's watermark is
# late (beats come every 30 to 60 s), until the threshold makes it a disconnect.
LATE_AFTER = timedelta(seconds=90)
# While a node stays degraded, members who joined it since are told too, at
# most every this many passes (and still once per episode each).
NOTICE_EVERY_PASSES = 10
SAMPLE_EVERY = timedelta(minutes=5)
# After a long silence (node down, portal down) do not pretend members were
# active for all of it: at most this much per sample.
MAX_SAMPLE = timedelta(minutes=15)
BAD = (HealthState.DEGRADED, HealthState.FAILING)
OBSERVE_EVERY = timedelta(seconds=20)
RECEIVING_WITHIN = timedelta(seconds=60)


def network_health_observe(
    *, store, clocks: dict[int, NodeClock], threshold: timedelta, now: datetime
) -> None:
    """The detection pass's one call. A failure here is logged and never
    stops detection."""
    try:
        _observe(store, clocks, threshold, now)
    except Exception:  # noqa: BLE001 - health is advisory; detection must go on
        logger.exception("Node health pass failed")


def _observe(store, clocks: dict[int, NodeClock], threshold: timedelta, now: datetime) -> None:
    nodes = {n.pk: n for n in Node.objects.filter(pk__in=list(clocks), revoked_at__isnull=True)}
    rows = {h.node_id: h for h in NodeHealth.objects.filter(node_id__in=list(nodes))}
    missing = [pk for pk in nodes if pk not in rows]
    if missing:
        NodeHealth.objects.bulk_create(
            [NodeHealth(node_id=pk, model=hm.new_state()) for pk in missing],
            ignore_conflicts=True,
        )
    # Passes can run more often than every 30 s (a backlog, a manual run):
    # the model takes one step per node per OBSERVE_EVERY at most.
    due = sorted(
        pk
        for pk in nodes
        if clocks[pk].watermark is not None
        and (
            pk not in rows
            or rows[pk].observed_at is None
            or now - rows[pk].observed_at >= OBSERVE_EVERY
        )
    )
    # If no node got a batch through lately, the portal is the one cut off
    # (as detection reasons): nothing can be judged from silence.
    receiving = any(
        c.last_arrival is not None and now - c.last_arrival <= RECEIVING_WITHIN
        for c in clocks.values()
    )
    if not due or not receiving:
        return
    silent = dict(
        Disconnect.objects.filter(node_id__in=due, status=DisconnectStatus.OPEN)
        .values("node_id")
        .annotate(n=Count("pk"))
        .values_list("node_id", "n")
    )
    oldest = min(
        (rows[pk].observed_at for pk in due if pk in rows and rows[pk].observed_at),
        default=now - OBSERVE_EVERY,
    )
    recent = list(
        Disconnect.objects.filter(node_id__in=due, detected_at__gt=oldest).values_list(
            "node_id", "detected_at"
        )
    )
    for node_id in due:
        clock = clocks[node_id]
        with transaction.atomic():
            # A concurrent pass observing the same node skips it: one step
            # per pass, never two with the same data.
            health = (
                NodeHealth.objects.select_for_update(skip_locked=True).filter(pk=node_id).first()
            )
            if health is None:
                continue
            since = health.observed_at or now - OBSERVE_EVERY
            drops = sum(1 for n, t in recent if n == node_id and t > since)
            _step(
                store, nodes[node_id], health, clock, silent.get(node_id, 0), drops, threshold, now
            )
        if _usage_due(health, clock.watermark):
            enqueue_on_commit("compensation.tasks.sample_usage", node_id)


def _step(store, node, health, clock, silent: int, drops: int, threshold, now) -> None:
    state = health.model or hm.new_state()
    if health.observed_at is not None and now - health.observed_at < OBSERVE_EVERY:
        return  # observed meanwhile by a concurrent pass: the model moves forward only
    wm = clock.watermark
    prev_wm = datetime.fromisoformat(state["wm"]) if state.get("wm") else None
    obs = hm.Observation(
        at=now,
        active=store.live_count(node.pk),
        drops=drops,
        silent=silent,
        late=len(store.seen_between(node.pk, wm - threshold, wm - LATE_AFTER)),
        since_arrival_s=(
            max((now - clock.last_arrival).total_seconds(), 0.0) if clock.last_arrival else 0.0
        ),
        watermark_advance_s=(wm - prev_wm).total_seconds() if prev_wm else None,
        wall_advance_s=(now - health.observed_at).total_seconds() if health.observed_at else None,
    )
    verdict = hm.step(state, obs)
    state["wm"] = wm.isoformat()
    if verdict.changed:
        health.since = now
    if verdict.episode_started:
        health.episode += 1
        state["notice_pass"] = 0
    health.state, health.score, health.model, health.observed_at = (
        verdict.state,
        verdict.score,
        state,
        now,
    )
    if health.state in BAD:
        due = state.get("notice_pass", 0) % NOTICE_EVERY_PASSES == 0
        state["notice_pass"] = state.get("notice_pass", 0) + 1
        if verdict.episode_started:
            _alert_operators(node, health, verdict, now)
        if due:
            _advise_members(store, node, health, wm - threshold, wm, now)
    health.save()


def _alert_operators(node: Node, health: NodeHealth, verdict: hm.Verdict, now) -> None:
    operators = User.objects.filter(
        is_active=True, is_staff=True, groups__name="Operators"
    ).distinct()
    notify_many(
        messages=[
            health_notices.operator_alert(node, health, verdict.z, user_id=u.pk) for u in operators
        ],
        now=now,
    )


def healthiest_node(*, exclude: int) -> Node | None:
    """The node a member on a degraded node is advised to use: any node in
    service that is healthy (or still learning), the best score first."""
    candidates = (
        NodeHealth.objects.filter(
            state__in=[HealthState.HEALTHY, HealthState.LEARNING], node__revoked_at__isnull=True
        )
        .exclude(node_id=exclude)
        .select_related("node")
        .order_by("-score", "node__name")
    )
    best = candidates.first()
    return best.node if best else None


def _advise_members(
    store, node: Node, health: NodeHealth, since: datetime, until: datetime, now
) -> None:
    """Members with a session on the node now: a beat within the threshold,
    not logged out since."""
    keys = store.seen_between(node.pk, since, until)
    member_ids = sorted(set(member_ids_for_keys(keys).values()))
    if not member_ids:
        return
    alternative = healthiest_node(exclude=node.pk)
    notify_many(
        messages=[
            health_notices.member_advice(node, health, alternative, member_id=m) for m in member_ids
        ],
        now=now,
    )


def _usage_due(health: NodeHealth, watermark: datetime) -> bool:
    mark = health.usage_sampled_until
    return mark is None or watermark - mark >= SAMPLE_EVERY


def usage_sample_node(*, node_id: int, now: datetime) -> int:
    """Add the minutes since the node's last sample to the usage profiles of
    the members whose sessions beat on it meanwhile (at the hour-of-week of
    each member's own time zone). The window is claimed with a conditional
    update, so a retried or duplicated task never counts minutes twice.
    Returns the number of members updated."""
    clock = get_store().clocks().get(node_id)
    health = NodeHealth.objects.filter(pk=node_id).first()
    if clock is None or clock.watermark is None or health is None:
        return 0
    if not _usage_due(health, clock.watermark):
        return 0
    hi, lo = clock.watermark, health.usage_sampled_until
    claimed = NodeHealth.objects.filter(pk=node_id, usage_sampled_until=lo).update(
        usage_sampled_until=hi
    )
    if claimed != 1 or lo is None:
        return 0  # someone else took this window, or the first mark only starts the clock
    minutes = int(min(hi - lo, MAX_SAMPLE).total_seconds() // 60)
    member_ids = sorted(set(member_ids_for_keys(get_store().seen_since(node_id, lo)).values()))
    if not member_ids or minutes <= 0:
        return 0
    return usage_add(member_ids=member_ids, at=hi, minutes=minutes, now=now)
