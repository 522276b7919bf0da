"""The one way to enqueue Celery work from a transaction.

Tasks are sent only after the surrounding transaction commits (a task must
never see a row that is later rolled back, nor run before the row exists).
If the broker is unreachable at that moment the failure is logged and the
work is not lost: every enqueued job has a database-side sweeper that finds
undone work and enqueues it again.
"""

import logging

from celery.exceptions import NotRegistered
from django.core.cache import cache
from django.db import transaction

from .celery import app as celery_app

logger = logging.getLogger(__name__)


def task_named(name: str):
    """The registered task ``name``. Web processes import task modules only
    on demand: the first look-up runs Celery's autodiscovery."""
    try:
        return celery_app.tasks[name]
    except NotRegistered:
        celery_app.loader.import_default_modules()
        return celery_app.tasks[name]


def enqueue_on_commit(task: str, *args, using: str | None = None, **kwargs) -> None:
    """Send the task named ``task`` (e.g. "compensation.tasks.pay_incident")
    after commit. Services name their tasks instead of importing them: tasks
    import services, never the other way round, so there is no cycle."""

    def send() -> None:
        try:
            # Looked up in the app's registry at send time: the same task
            # object as an import would give, so eager mode and routing apply.
            task_named(task).apply_async(args=args, kwargs=kwargs, retry=False)
        except Exception:  # noqa: BLE001 - any broker failure; the sweeper recovers
            logger.warning(
                "Could not enqueue %s%r; it will be retried by its sweeper.",
                task,
                args,
                exc_info=True,
            )

    transaction.on_commit(send, using=using)


def enqueue_now(task: str, *args, **kwargs) -> None:
    """Send the task named ``task`` at once (sweepers and relays, which run
    outside any transaction that could roll back). Broker errors propagate:
    the sweeper's own schedule is the retry."""
    task_named(task).apply_async(args=args, kwargs=kwargs, retry=False)


def enqueue_many_on_commit(task: str, arg_lists, *, using: str | None = None) -> None:
    """``enqueue_on_commit`` for many calls of one task (a detection pass
    closing thousands of disconnects): after commit, all sent over one broker
    connection. A broker failure part-way loses the rest to the sweeper, as
    one failed ``enqueue_on_commit`` would."""
    arg_lists = [tuple(args) for args in arg_lists]
    if not arg_lists:
        return

    def send() -> None:
        try:
            registered = task_named(task)
            if celery_app.conf.task_always_eager:
                for args in arg_lists:
                    registered.apply_async(args=args, retry=False)
                return
            with celery_app.producer_or_acquire() as producer:
                for args in arg_lists:
                    registered.apply_async(args=args, retry=False, producer=producer)
        except Exception:  # noqa: BLE001 - any broker failure; the sweeper recovers
            logger.warning(
                "Could not enqueue %d × %s; the sweeper will retry them.",
                len(arg_lists),
                task,
                exc_info=True,
            )

    transaction.on_commit(send, using=using)


def enqueue_coalesced_on_commit(task: str, *, key: str, within: float) -> None:
    """After commit, have ``task`` (no arguments) run ``within`` seconds from
    now, unless a run is already due under ``key``: many commits in a burst
    (a payout's chunks) cause one run per ``within`` seconds, not one each.
    The run comes after every commit that was coalesced into it. A lost send
    (broker or cache down) is covered by the task's own periodic schedule."""

    def send() -> None:
        try:
            # add() is atomic: only the first commit of a window schedules.
            # The run starts a second after the mark expires, so a commit
            # that saw the mark is always committed before the run starts.
            if not cache.add(f"coalesce:{key}", 1, timeout=within):
                return
            task_named(task).apply_async(countdown=within + 1, retry=False)
        except Exception:  # noqa: BLE001 - any broker or cache failure; the schedule recovers
            logger.warning(
                "Could not schedule %s; its periodic run covers it.", task, exc_info=True
            )

    transaction.on_commit(send)
