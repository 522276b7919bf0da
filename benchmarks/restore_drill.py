"""The restore drill (``make restore-drill``): back up PostgreSQL with
pg_dump while credits are being written, restore into a fresh database, and
prove the copy is whole.

1. Own PostgreSQL and Redis on loopback (ports P, P+1; default 58200).
2. Members, a ledger of credits, a published head.
3. Traffic: a thread credits members in batches and publishes the ledger
   head every second, as beat would; outside observers keep every head.
4. ``pg_dump -Fc`` while the traffic runs (timed), then the traffic stops.
5. ``pg_restore -j 2`` into a new, empty database (timed).
6. Against the copy: ``manage.py verify_ledger`` (the hash chain, every
   published checkpoint, every member's expiry explained by the ledger;
   timed); and every head the observers saw published before the dump
   began still matches the copy's chain.

RPO: the copy holds exactly what was committed when the dump's snapshot
was taken; what came after is lost until the next dump. RTO: restore +
verify. Both are printed and written to benchmarks/results/restore-drill.json.

    python -m benchmarks.restore_drill [--quick] [--base-port P]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import harness
from .chaos.procs import PGBIN, Daemon, Postgres, _as_postgres, free_ports
from .harness import Context, Services, configure_environment, log, migrate


def _credit_batch(members, k: int, base: datetime, now: datetime) -> int:
    from compensation.models import SourceKind
    from compensation.services.credit import ClaimRequest, compensation_credit_many

    requests = [
        ClaimRequest(
            member_id=member.pk,
            # Disjoint 6-minute losses: each credit is new time, never covered.
            intervals=[(base + timedelta(minutes=10 * k), base + timedelta(minutes=10 * k + 6))],
            source_kind=SourceKind.INCIDENT,
            source_ref=f"drill-{k}",
            idempotency_key=f"drill:{k}:{member.pk}",
        )
        for member in members
    ]
    compensation_credit_many(requests=requests, now=now)
    return len(requests)


class Traffic(threading.Thread):
    def __init__(self, members, base: datetime, first_round: int):
        super().__init__(daemon=True, name="traffic")
        self.members, self.base, self.k = members, base, first_round
        self.stop = threading.Event()
        self.heads: list[tuple[int, str, float]] = []  # (seq, hash, monotonic when seen)
        self.credits = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        from django.db import connection
        from django.utils import timezone

        from compensation.services.ledger_publish import ledger_publish_head

        last_head = 0.0
        try:
            while not self.stop.is_set():
                batch = self.members[(self.k * 50) % len(self.members) :][:50]
                self.credits += _credit_batch(batch, self.k, self.base, timezone.now())
                self.k += 1
                if time.monotonic() - last_head >= 1.0:
                    head = ledger_publish_head(now=timezone.now())
                    self.heads.append((head.seq, head.hash, time.monotonic()))
                    last_head = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
        finally:
            connection.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.restore_drill")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--base-port", type=int, default=int(os.environ.get("DRILL_PORT", "58200")))
    parser.add_argument("--out", type=Path, default=harness.RESULTS_DIR)
    args = parser.parse_args(argv)
    members_n = 2_000 if args.quick else 20_000
    warm_rounds = 10 if args.quick else 40
    workdir = Path(tempfile.mkdtemp(prefix="kamen-drill-"))
    os.chmod(workdir, 0o755)
    pg_port, redis_port = free_ports(args.base_port, 2)
    pg = Postgres(workdir, pg_port)
    (workdir / "redis").mkdir()
    redis = Daemon(
        "redis",
        ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port)]
        + ["--dir", str(workdir / "redis"), "--save", "", "--appendonly", "no"],
        workdir / "redis.log",
        redis_port,
    )
    ok = False
    try:
        pg.init()
        redis.start()
        configure_environment(Services(pg.url, f"redis://127.0.0.1:{redis_port}/0", own=True))
        migrate()
        import django

        django.setup()
        from django.db import connection, connections
        from django.utils import timezone

        from compensation.models import LedgerEntry
        from compensation.services.ledger_publish import ledger_publish_head
        from members.models import MemberProfile

        from .data import ensure_members

        bench = ensure_members(members_n, now=timezone.now())
        members = list(MemberProfile.objects.filter(pk__in=[m.pk for m in bench]).order_by("pk"))
        base = datetime.now(UTC) - timedelta(days=5)
        started = time.monotonic()
        for k in range(warm_rounds):
            _credit_batch(members[(k * 500) % members_n :][:500], k, base, timezone.now())
        ledger_publish_head(now=timezone.now())
        entries_before = LedgerEntry.objects.count()
        log(
            f"drill: {members_n:,} members, {entries_before:,} ledger entries in "
            f"{time.monotonic() - started:.1f} s; traffic starts, then pg_dump"
        )

        # Dump and restore are timed as in production: fsync on.
        connections.close_all()
        pg.durable()
        traffic = Traffic(members, base, warm_rounds)
        traffic.start()
        time.sleep(3.0)
        dump = workdir / "kamen.dump"
        heads_before_dump = list(traffic.heads)
        dump_started = time.monotonic()
        subprocess.run(
            _as_postgres([str(PGBIN / "pg_dump"), "-h", "127.0.0.1", "-p", str(pg.port)])
            + ["-U", "postgres", "-Fc", "-f", str(dump), "kamen"],
            check=True,
            capture_output=True,
        )
        dump_s = time.monotonic() - dump_started
        time.sleep(1.0)
        traffic.stop.set()
        traffic.join(timeout=60)
        if traffic.error:
            raise traffic.error
        entries_source = LedgerEntry.objects.count()
        connections.close_all()

        restore_started = time.monotonic()
        subprocess.run(
            _as_postgres([str(PGBIN / "createdb"), "-h", "127.0.0.1", "-p", str(pg.port)])
            + ["-U", "postgres", "kamen_restored"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            _as_postgres([str(PGBIN / "pg_restore"), "-h", "127.0.0.1", "-p", str(pg.port)])
            + ["-U", "postgres", "-j", "2", "-d", "kamen_restored", str(dump)],
            check=True,
            capture_output=True,
        )
        restore_s = time.monotonic() - restore_started

        restored_url = pg.url.rsplit("/", 1)[0] + "/kamen_restored"
        verify_started = time.monotonic()
        verify = subprocess.run(
            [sys.executable, "manage.py", "verify_ledger"],
            cwd=harness.ROOT,
            env={**os.environ, "DATABASE_URL": restored_url},
            capture_output=True,
            text=True,
            check=False,
        )
        verify_s = time.monotonic() - verify_started
        log(f"drill: verify_ledger on the copy: {(verify.stdout + verify.stderr).strip()[-300:]}")

        # The copy through its own connection: counts, and the heads seen.
        connection.settings_dict["NAME"] = "kamen_restored"
        connection.close()
        entries_restored = LedgerEntry.objects.count()
        hashes = dict(
            LedgerEntry.objects.filter(seq__in=[s for s, _h, _t in traffic.heads]).values_list(
                "seq", "hash"
            )
        )
        head_seq = LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first()
        problems = []
        if verify.returncode != 0:
            problems.append("verify_ledger failed on the restored copy")
        for seq, value, _seen in heads_before_dump:
            if hashes.get(seq) != value:
                problems.append(f"published head #{seq} does not match the copy")
        later_heads = [h for h in traffic.heads if h not in heads_before_dump]
        heads_in_copy = sum(1 for seq, value, _t in later_heads if hashes.get(seq) == value)
        if not entries_before <= entries_restored <= entries_source:
            problems.append(
                f"copy has {entries_restored} entries, not in [{entries_before}, {entries_source}]"
            )

        result = {
            "parameters": {"members": members_n, "quick": args.quick},
            "results": {
                "ledger_entries_at_dump_start_at_least": entries_before,
                "ledger_entries_in_copy": entries_restored,
                "ledger_entries_in_source_at_end": entries_source,
                "entries_written_after_the_snapshot": entries_source - entries_restored,
                "copy_head_seq": head_seq,
                "heads_published_before_dump": len(heads_before_dump),
                "heads_published_during_dump_found_in_copy": heads_in_copy,
                "heads_published_during_dump_total": len(later_heads),
                "dump_s": round(dump_s, 2),
                "dump_bytes": dump.stat().st_size,
                "restore_s": round(restore_s, 2),
                "verify_s": round(verify_s, 2),
                "rto_s": round(restore_s + verify_s, 2),
                "problems": problems,
            },
            "targets": [harness.target("problems", len(problems), below=1)],
        }
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        ctx = Context(Services(pg.url, redis_url, own=True), args.quick, workdir, args.out)
        path = harness.write_result(ctx, "restore-drill", result)
        log(
            f"drill: dump {dump_s:.1f} s ({dump.stat().st_size / 1e6:.1f} MB), restore "
            f"{restore_s:.1f} s, verify {verify_s:.1f} s; {entries_restored:,} entries in the copy, "
            f"{entries_source - entries_restored} written after the snapshot; problems: {problems}"
        )
        log(f"drill: wrote {path}")
        ok = not problems
        return 0 if ok else 1
    finally:
        redis.stop()
        pg.stop()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"drill: files kept in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
