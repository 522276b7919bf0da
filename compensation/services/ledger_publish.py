from datetime import datetime

from django.db import IntegrityError, transaction

from ..models import LedgerCheckpoint, LedgerHead
from .ledger_log import ledger_log_integrate, ledger_log_publish


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
