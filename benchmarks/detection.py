"""Detection: one pass over 100,000 live sessions in the Redis store.

The store is filled directly through ``RedisStore.apply`` (the call ingest
makes), then one ``detection_run`` is timed. Per scenario a share of the
sessions changed since the last pass, half of each kind:

- fell silent: their last beat is 10 minutes behind the node's watermark, so
  the pass flags them and opens a disconnect;
- came back after a gap: a beat 10 minutes after the previous one, so ingest
  pushed a gap that the pass drains, closes as a disconnect and enqueues
  compensation for.

The rest beat within the last minute and must cost (almost) nothing: a pass
should grow with the changed sessions, not with all of them.

Compensation of the closed disconnects is enqueued on commit, exactly as in
production; no worker runs, so it waits in Redis and is purged afterwards.
Nothing is paid inside the measured pass.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from .harness import Context, log, purge_task_queue, queued_tasks, target

TARGET_SECONDS = 2.0
COMPENSATE_TASKS = (
    "compensation.tasks.compensate_disconnect",
    "compensation.tasks.compensate_disconnects",
)
APPLY_BATCH = 5000


def params_for(args) -> dict:
    quick = args.quick
    return {
        "sessions": args.sessions or (10_000 if quick else 100_000),
        "nodes": args.nodes or 10,
        "changed_shares": args.changed or [0.0, 0.001, 0.01, 0.05],
        "repeats": args.repeats or (1 if quick else 3),
        "target_share": 0.05,
    }


class _QueryCounter:
    """Counts SQL statements (DEBUG is off, so Django keeps no query log)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def _disconnects_enqueued() -> int:
    """Disconnect ids waiting in compensation messages (one per message of
    ``compensate_disconnect``, a chunk per ``compensate_disconnects``)."""
    import base64
    import json

    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        raw = client.lrange(settings.CELERY_QUEUE_PAYOUTS, 0, -1)
    finally:
        client.close()
    count = 0
    for message in map(json.loads, raw):
        name = message.get("headers", {}).get("task")
        if name not in COMPENSATE_TASKS:
            continue
        args = json.loads(base64.b64decode(message["body"]))[0]
        count += len(args[0]) if name.endswith("disconnects") else 1
    return count


def _cleanup(store, nodes) -> None:
    from compensation.models import Disconnect, Incident

    node_ids = [n.pk for n in nodes]
    store.reset()
    Disconnect.objects.filter(node_id__in=node_ids).delete()
    Incident.objects.filter(auto_node_id__in=node_ids).delete()
    purge_task_queue()


def _fill(store, nodes, members, *, share: float, now, threshold_s: float) -> dict:
    """Put ``len(members)`` sessions into the store, ``share`` of them changed.

    Session i belongs to member i, on node i mod N. Each node also has one
    "pacer" session (a second session of its first member) that beats every
    2 minutes from T-10 to T: a node's watermark never jumps by more than the
    threshold, which would be a node outage rather than member disconnects.
    """
    from compensation.store import Beat

    T = now - timedelta(seconds=2)
    old = T - timedelta(minutes=10)
    n = len(members)
    changed = round(share * n)
    # Spread evenly over sessions, and so over nodes; alternate the two kinds.
    picks = [int(k * n / changed) for k in range(changed)] if changed else []
    silent = set(picks[0::2])
    gapped = set(picks[1::2])

    per_node = {node.pk: [] for node in nodes}
    for i, member in enumerate(members):
        per_node[nodes[i % len(nodes)].pk].append((i, f"{member.member_no}|s{i}"))

    def apply(node_id, beats):
        for start in range(0, len(beats), APPLY_BATCH):
            store.apply(
                node_id, beats[start : start + APPLY_BATCH], threshold_s=threshold_s, arrival=now
            )

    started = time.perf_counter()
    for node in nodes:
        sessions = per_node[node.pk]
        pacer = f"{sessions[0][1].split('|')[0]}|pacer"
        # T-10 min: the pacer and the sessions that are about to change.
        apply(
            node.pk,
            [Beat(pacer, old, False)]
            + [Beat(key, old, False) for i, key in sessions if i in silent or i in gapped],
        )
        for minutes in (8, 6, 4, 2):
            apply(node.pk, [Beat(pacer, T - timedelta(minutes=minutes), False)])
        # The last minute: everybody but the silent ones beats; the gapped
        # ones thereby close a 10-minute gap. Sorted: ingest applies in
        # event-time order.
        recent = [
            Beat(key, T - timedelta(milliseconds=(i * 7919) % 60_000), False)
            for i, key in sessions
            if i not in silent
        ]
        recent.append(Beat(pacer, T, False))
        recent.sort(key=lambda b: b.at)
        apply(node.pk, recent)
    return {
        "silent": len(silent),
        "gapped": len(gapped),
        "fill_s": round(time.perf_counter() - started, 2),
    }


def run(ctx: Context, params: dict, members) -> dict:
    from django.db import connection
    from django.utils import timezone

    from compensation.services.detection import detection_run
    from compensation.services.policy import policy_current
    from compensation.store import RedisStore, get_store

    from .data import ensure_nodes

    store = get_store()
    if not isinstance(store, RedisStore):
        raise RuntimeError("the detection benchmark needs the Redis store (set REDIS_URL)")
    nodes = [
        node for node, _token in ensure_nodes("bench-detect", params["nodes"], now=timezone.now())
    ]
    sessions = members[: params["sessions"]]
    threshold_s = policy_current().threshold_minutes * 60

    scenarios = []
    try:
        # One untimed pass first: production passes run in a long-lived
        # worker, with connections open and code imported.
        _cleanup(store, nodes)
        now = timezone.now()
        _fill(store, nodes, sessions, share=0.001, now=now, threshold_s=threshold_s)
        detection_run(now=now)
        for share in params["changed_shares"]:
            runs = []
            for repeat in range(params["repeats"]):
                _cleanup(store, nodes)
                now = timezone.now()
                filled = _fill(
                    store, nodes, sessions, share=share, now=now, threshold_s=threshold_s
                )
                counter = _QueryCounter()
                with connection.execute_wrapper(counter):
                    started = time.perf_counter()
                    report = detection_run(now=now)
                    seconds = time.perf_counter() - started
                enqueued = _disconnects_enqueued()
                run_result = {
                    "seconds": round(seconds, 3),
                    "sql_queries": counter.count,
                    "disconnects_enqueued_for_compensation": enqueued,
                    "task_messages": sum(queued_tasks().get(t, 0) for t in COMPENSATE_TASKS),
                    **filled,
                    "report": {k: v for k, v in vars(report).items() if v},
                }
                # The pass must have found exactly what was planted, or the
                # timing measures something else.
                problems = []
                if report.disconnects_opened != filled["silent"]:
                    problems.append(f"opened {report.disconnects_opened} != {filled['silent']}")
                if report.disconnects_closed != filled["gapped"]:
                    problems.append(f"closed {report.disconnects_closed} != {filled['gapped']}")
                if report.incidents_opened:
                    problems.append(f"{report.incidents_opened} incidents opened")
                if enqueued != filled["gapped"]:
                    problems.append(f"{enqueued} enqueued for payment != {filled['gapped']}")
                if problems:
                    raise RuntimeError(f"detection share {share}: " + "; ".join(problems))
                log(
                    f"detection: {len(sessions):,} sessions, {share:.1%} changed "
                    f"({filled['silent']} silent, {filled['gapped']} gaps), run {repeat + 1}: "
                    f"{seconds:.3f} s, {counter.count} SQL"
                )
                runs.append(run_result)
            times = [r["seconds"] for r in runs]
            scenarios.append(
                {
                    "changed_share": share,
                    "changed_sessions": runs[0]["silent"] + runs[0]["gapped"],
                    "median_s": round(statistics.median(times), 3),
                    "min_s": min(times),
                    "max_s": max(times),
                    "runs": runs,
                }
            )
    finally:
        _cleanup(store, nodes)

    at_target = next((s for s in scenarios if s["changed_share"] == params["target_share"]), None)
    return {
        "parameters": {**params, "threshold_s": threshold_s},
        "results": {"sessions": len(sessions), "scenarios": scenarios},
        "targets": [
            target(
                f"pass seconds with {params['target_share']:.0%} changed (median)",
                at_target["median_s"] if at_target else None,
                below=TARGET_SECONDS,
            )
        ],
    }


def summary(result: dict) -> str:
    parts = [
        f"{s['changed_share']:.1%} changed: {s['median_s']:.3f} s"
        for s in result["results"]["scenarios"]
    ]
    return f"detection over {result['results']['sessions']:,} sessions: " + ", ".join(parts)
