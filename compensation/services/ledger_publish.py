from datetime import datetime

from django.db import IntegrityError, transaction

from kamen_portal.queue import enqueue_coalesced_on_commit

from ..models import LedgerCheckpoint, LedgerHead
from .ledger_log import ledger_log_integrate, ledger_log_publish

# A burst of committed payout chunks is checkpointed at most once per this
# many seconds (issue 23: a checkpoint whenever a payout batch commits, but
# not one signature per chunk); the minute beat stays the safety net.
CHECKPOINT_WITHIN = 5


def ledger_publish_head(*, now: datetime) -> LedgerCheckpoint:
    """Publish the current chain head and a signed checkpoint of the
    transparency log (beat: every minute; the public ledger page lists
    them). Entries committed since the last run are integrated into the
    log's tree first, so the checkpoint covers them. Once a head is public,
    rewriting any entry below it changes every later hash and no longer
    matches what was published."""
    # The chain head first: a log key that cannot sign (see compensation
    # checks) must not stop the heads that version 1 receipts rely on.
    published = _publish_chain_head(now=now)
    ledger_log_integrate()
    ledger_log_publish(now=now)
    return published


def _publish_chain_head(*, now: datetime) -> LedgerCheckpoint:
    head = LedgerHead.objects.filter(pk=1).first() or LedgerHead(pk=1)
    latest = LedgerCheckpoint.objects.order_by("-published_at").first()
    if latest is not None and latest.seq == head.seq and latest.hash == head.hash:
        return latest
    try:
        with transaction.atomic():
            return LedgerCheckpoint.objects.create(seq=head.seq, hash=head.hash, published_at=now)
    except IntegrityError:
        return LedgerCheckpoint.objects.get(published_at=now)


def ledger_checkpoint_soon() -> None:
    """After the caller's transaction commits, integrate and sign a log
    checkpoint within CHECKPOINT_WITHIN seconds (coalesced with any other
    commit of that window), so newly paid entries become provable at once
    instead of at the next minute beat."""
    enqueue_coalesced_on_commit(
        "compensation.tasks.publish_ledger_head", key="ledger-checkpoint", within=CHECKPOINT_WITHIN
    )
