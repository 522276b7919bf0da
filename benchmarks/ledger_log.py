"""The ledger with its transparency log, on a real database (issue 23).

Appends ``N`` entries through ``chain.ledger_append`` in batches (as a bulk
opening or a payout does), integrates them into the log's tree with the
sequencer, signs a checkpoint, then measures ``verify_chain`` and
``verify_log`` (what ``verify_ledger`` runs) and the size of a version 2
receipt against the version 1 receipt of the same entry.

Runs against the database of ``DATABASE_URL`` (migrated, disposable: it
writes ``N`` ledger entries):

    DATABASE_URL=postgres://... python -m benchmarks.ledger_log [--entries 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--output", default="")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kamen_portal.settings")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "benchmark-only")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from compensation.log_verify import verify_chain_and_log
    from compensation.models import LedgerEntry, LedgerKind, SourceKind
    from compensation.receipts import receipt_for
    from compensation.services.chain import ledger_append
    from compensation.services.ledger_log import ledger_log_integrate, ledger_log_publish
    from members.models import MemberProfile

    members = list(MemberProfile.objects.values_list("pk", "member_no")[:100])
    if not members:
        sys.exit("needs members: run manage.py seed_demo first")
    numbers = dict(members)
    now = timezone.now()
    before = LedgerEntry.objects.count()
    started = time.perf_counter()
    for at in range(0, args.entries, args.batch):
        rows = [
            LedgerEntry(
                member_id=members[i % len(members)][0],
                kind=LedgerKind.ADJUSTMENT,
                minutes=1 + i % 60,
                source_kind=SourceKind.MANUAL,
                source_ref=f"bench-{before + i}",
                policy_version=1,
                expires_before=now,
                expires_after=now + timedelta(minutes=1 + i % 60),
                note="benchmark",
                created_at=now,
            )
            for i in range(at, min(at + args.batch, args.entries))
        ]
        with transaction.atomic():
            ledger_append(rows, member_nos=numbers)
    append_s = time.perf_counter() - started
    started = time.perf_counter()
    size = ledger_log_integrate()
    integrate_s = time.perf_counter() - started
    ledger_log_publish(now=timezone.now())
    total = LedgerEntry.objects.count()
    started = time.perf_counter()
    (chain_count, chain_problems), (leaves, log_problems) = verify_chain_and_log()
    verify_s = time.perf_counter() - started
    first = LedgerEntry.objects.select_related("member", "reverses").get(seq=1)
    middle = LedgerEntry.objects.select_related("member", "reverses").get(seq=total // 2)
    from compensation.services.ledger_publish import ledger_publish_head

    ledger_publish_head(now=timezone.now())
    sizes = {
        name: {
            f"v{v}": len(json.dumps(receipt_for(e, version=v), ensure_ascii=False).encode())
            for v in (1, 2)
        }
        for name, e in (("first", first), ("middle", middle))
    }
    result = {
        "database": connection.vendor,
        "entries_appended": args.entries,
        "log_size": size,
        "append_entries_per_s": round(args.entries / append_s),
        "integrate_entries_per_s": round((size - before) / integrate_s) if size > before else None,
        "verify_ledger_entries_per_s": round(total / verify_s),
        "problems": len(chain_problems) + len(log_problems),
        "receipt_bytes": sizes,
    }
    print(json.dumps(result, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
