"""Where every Celery task runs and when the periodic ones fire: the queue
and beat tables of the settings, kept apart from the environment-driven
settings (kamen_portal/settings.py imports them by name).

A test fails if a task has no route (kamen_portal/tests/test_queues.py) or a
beat entry names a task that does not exist (test_beat.py)."""

from celery.schedules import crontab
from kombu import Exchange, Queue

# Queues by urgency: the 30-second detection pass drains on its own queue,
# so a 100,000-member payout or e-mail fan-out (thousands of messages) can
# never sit in front of it. Give each queue its own worker in production
# (README, docs/deployment.md section 6); `make run` has one worker consume
# them all. The default queue keeps Celery's name, `celery`, so messages
# queued before an upgrade are still consumed.
CELERY_QUEUE_DETECTION = "detection"
CELERY_QUEUE_PAYOUTS = "payouts"
CELERY_QUEUE_NOTIFICATIONS = "notifications"
CELERY_QUEUE_EXPORTS = "exports"
CELERY_QUEUE_WEBHOOKS = "webhooks"
CELERY_QUEUE_DEFAULT = "celery"
CELERY_QUEUES_ALL = (
    CELERY_QUEUE_DETECTION,
    CELERY_QUEUE_PAYOUTS,
    CELERY_QUEUE_NOTIFICATIONS,
    CELERY_QUEUE_EXPORTS,
    CELERY_QUEUE_WEBHOOKS,
    CELERY_QUEUE_DEFAULT,
)
CELERY_TASK_DEFAULT_QUEUE = CELERY_QUEUE_DEFAULT
# Declared, so a worker started without -Q consumes every queue (the embedded
# `make run`, and a worker started from an older guide) and nothing is stranded.
CELERY_TASK_QUEUES = tuple(Queue(q, Exchange(q), routing_key=q) for q in CELERY_QUEUES_ALL)
CELERY_TASK_ROUTES = {
    # Detection: the pass itself (it also sweeps stalled payouts and lost
    # work, re-enqueueing it onto the queues below) and the worker liveness
    # mark, which readiness and operators read to see that workers consume.
    "compensation.tasks.detect_disconnects": {"queue": CELERY_QUEUE_DETECTION},
    "members.tasks.record_worker_heartbeat": {"queue": CELERY_QUEUE_DETECTION},
    # Payouts: one credit per closed disconnect (thousands after a regional
    # outage), incident payouts and their chunks.
    "compensation.tasks.compensate_disconnect": {"queue": CELERY_QUEUE_PAYOUTS},
    "compensation.tasks.compensate_disconnects": {"queue": CELERY_QUEUE_PAYOUTS},
    "compensation.tasks.pay_incident": {"queue": CELERY_QUEUE_PAYOUTS},
    "compensation.tasks.pay_incident_chunk": {"queue": CELERY_QUEUE_PAYOUTS},
    # Notifications: recording notices for everyone an incident touched,
    # sending e-mail, the outbox relay, reminders and the staff digest.
    "compensation.tasks.notify_incident": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    "compensation.tasks.notify_status_update": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    "appeals.tasks.remind_appeal_windows": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    "appeals.tasks.send_staff_digest": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    "members.tasks.send_notification_emails": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    "members.tasks.send_notification_email": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    "members.tasks.relay_notifications": {"queue": CELERY_QUEUE_NOTIFICATIONS},
    # Exports: minutes of ZIP building per member request.
    "members.tasks.build_export": {"queue": CELERY_QUEUE_EXPORTS},
    # Outbound webhooks wait on other people's servers (up to their timeout):
    # their own queue, so a slow receiver never delays e-mails or payouts.
    "integrations.tasks.deliver_webhooks": {"queue": CELERY_QUEUE_WEBHOOKS},
    "integrations.tasks.sweep_webhook_deliveries": {"queue": CELERY_QUEUE_WEBHOOKS},
    "members.tasks.expire_exports": {"queue": CELERY_QUEUE_EXPORTS},
    "members.tasks.sweep_exports": {"queue": CELERY_QUEUE_EXPORTS},
    # Short periodic housekeeping on the default queue. A new task must be
    # given a queue here (kamen_portal/tests/test_queues.py checks).
    "compensation.tasks.publish_ledger_head": {"queue": CELERY_QUEUE_DEFAULT},
    "compensation.tasks.sample_usage": {"queue": CELERY_QUEUE_DEFAULT},
}
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "members.tasks.record_worker_heartbeat", "schedule": 60.0},
    "detect-disconnects": {
        "task": "compensation.tasks.detect_disconnects",
        "schedule": 30.0,
        # A pass older than its interval is stale: the next one does its work.
        "options": {"expire_seconds": 25},
    },
    # Chain heads and signed log checkpoints: at least every minute while
    # entries are appended (a minute with nothing new publishes nothing).
    "publish-ledger-head": {"task": "compensation.tasks.publish_ledger_head", "schedule": 60.0},
    # The outbox relay: emails whose enqueue was lost are sent anyway.
    "relay-notifications": {"task": "members.tasks.relay_notifications", "schedule": 60.0},
    "expire-exports": {"task": "members.tasks.expire_exports", "schedule": 3600.0},
    # Exports whose enqueue was lost or whose worker died are queued again.
    "sweep-exports": {"task": "members.tasks.sweep_exports", "schedule": 120.0},
    "remind-appeal-windows": {
        "task": "appeals.tasks.remind_appeal_windows",
        "schedule": 600.0,
    },
    "staff-digest": {
        "task": "appeals.tasks.send_staff_digest",
        "schedule": crontab(hour=9, minute=0),
    },
    # Webhook retries that are due, and deliveries whose enqueue was lost or
    # whose worker died mid-send (integrations.services.webhooks).
    "sweep-webhook-deliveries": {
        "task": "integrations.tasks.sweep_webhook_deliveries",
        "schedule": 15.0,
        "options": {"expire_seconds": 14},
    },
}
