"""Queues by urgency: every task of the project goes to a declared queue, the
detection pass has its queue to itself, and the embedded runner consumes all."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings

from kamen_portal.celery import app

PROJECT_APPS = (
    "kamen_portal.",
    "members.",
    "compensation.",
    "appeals.",
    "portal.",
    "integrations.",
)
BULK_TASKS = (
    "compensation.tasks.pay_incident",
    "compensation.tasks.pay_incident_chunk",
    "compensation.tasks.compensate_disconnect",
    "compensation.tasks.compensate_disconnects",
    "compensation.tasks.notify_incident",
    "members.tasks.send_notification_emails",
    "members.tasks.send_notification_email",
    "members.tasks.build_export",
)


def _project_tasks() -> list[str]:
    app.loader.import_default_modules()  # autodiscovery, as a worker does at start
    return sorted(name for name in app.tasks if name.startswith(PROJECT_APPS))


def _queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def test_every_project_task_has_an_explicit_route_to_a_declared_queue():
    tasks = _project_tasks()
    assert "compensation.tasks.detect_disconnects" in tasks  # the walk found the tasks
    declared = {q.name for q in settings.CELERY_TASK_QUEUES}
    unrouted = [t for t in tasks if t not in settings.CELERY_TASK_ROUTES]
    assert unrouted == [], f"give these tasks a queue in CELERY_TASK_ROUTES: {unrouted}"
    misrouted = {t: _queue_of(t) for t in tasks if _queue_of(t) not in declared}
    assert misrouted == {}


def test_routes_name_only_tasks_that_exist():
    stale = sorted(set(settings.CELERY_TASK_ROUTES) - set(_project_tasks()))
    assert stale == [], f"routes for tasks that no longer exist: {stale}"


def test_detection_pass_has_its_queue_free_of_bulk_work():
    assert _queue_of("compensation.tasks.detect_disconnects") == "detection"
    on_detection = [t for t in _project_tasks() if _queue_of(t) == "detection"]
    assert set(on_detection) <= {
        "compensation.tasks.detect_disconnects",
        "members.tasks.record_worker_heartbeat",
    }
    assert {t: _queue_of(t) for t in BULK_TASKS if _queue_of(t) == "detection"} == {}


def test_payouts_notifications_and_exports_each_have_their_own_queue():
    assert _queue_of("compensation.tasks.pay_incident_chunk") == "payouts"
    assert _queue_of("members.tasks.send_notification_emails") == "notifications"
    assert _queue_of("members.tasks.build_export") == "exports"


def test_every_beat_entry_is_routed_to_a_declared_queue():
    declared = {q.name for q in settings.CELERY_TASK_QUEUES}
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert _queue_of(entry["task"]) in declared, name


def test_a_worker_started_without_q_consumes_every_queue():
    """Workers consume the declared queues when no -Q is given: an operator
    following an older guide strands nothing."""
    assert {q.name for q in app.amqp.queues.values()} == set(settings.CELERY_QUEUES_ALL)


def test_the_embedded_runner_consumes_every_queue():
    script = (Path(settings.BASE_DIR) / "scripts" / "run.sh").read_text()
    match = re.search(r'^QUEUES="([^"]+)"', script, re.MULTILINE)
    assert match, 'scripts/run.sh names its queues in QUEUES="..."'
    assert set(match.group(1).split(",")) == set(settings.CELERY_QUEUES_ALL)
    assert '-Q "$QUEUES"' in script


@pytest.mark.redis
def test_detection_pass_is_published_onto_the_detection_list_in_redis(broker):
    """On the real broker the pass lands in the Redis list `detection`, not
    behind the payouts in `payouts`."""
    import redis

    from compensation.tasks import detect_disconnects, pay_incident

    pay_incident.delay(1)
    detect_disconnects.delay()
    client = redis.Redis.from_url(broker.url)
    try:
        queued = {
            queue: [json.loads(m)["headers"]["task"] for m in client.lrange(queue, 0, -1)]
            for queue in ("detection", "payouts", "celery")
        }
    finally:
        client.close()
    assert queued == {
        "detection": ["compensation.tasks.detect_disconnects"],
        "payouts": ["compensation.tasks.pay_incident"],
        "celery": [],
    }
