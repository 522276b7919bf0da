"""The one way to enqueue Celery work from a transaction.

Tasks are sent only after the surrounding transaction commits (a task must
never see a row that is later rolled back, nor run before the row exists).
If the broker is unreachable at that moment the failure is logged and the
work is not lost: every enqueued job has a database-side sweeper that finds
undone work and enqueues it again.
"""

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, *args, using: str | None = None, **kwargs) -> None:
    def send() -> None:
        try:
            task.apply_async(args=args, kwargs=kwargs, retry=False)
        except Exception:  # noqa: BLE001 - any broker failure; the sweeper recovers
            logger.warning(
                "Could not enqueue %s%r; it will be retried by its sweeper.",
                task.name,
                args,
                exc_info=True,
            )

    transaction.on_commit(send, using=using)
