from django.core.management.base import BaseCommand, CommandError

from compensation.ledger import reconcile_expiries
from compensation.log_verify import verify_chain_and_log


class Command(BaseCommand):
    help = (
        "Recompute the ledger hash chain and the transparency log's Merkle tree (every stored "
        "hash, the log head, every signed checkpoint's root and signature), and reconcile "
        "every member's expiry against their entries; exit non-zero naming the first problem."
    )

    def handle(self, *args, **options) -> None:
        (count, problems), (leaves, log_problems) = verify_chain_and_log()
        members, expiry_problems = reconcile_expiries()
        for problem in problems[:20]:
            self.stderr.write(f"entry #{problem.seq}: {problem.message}")
        for problem in log_problems[:20]:
            self.stderr.write(f"log at #{problem.seq}: {problem.message}")
        for problem in expiry_problems[:20]:
            self.stderr.write(f"member {problem.member_no}: {problem.message}")
        if problems:
            first = problems[0]
            raise CommandError(
                f"Ledger verification FAILED at entry #{first.seq}: {first.message} "
                f"({len(problems)} problem(s) in {count} entries)."
            )
        if log_problems:
            first = log_problems[0]
            raise CommandError(
                f"Transparency log verification FAILED at #{first.seq}: {first.message} "
                f"({len(log_problems)} problem(s) in {leaves} leaves)."
            )
        if expiry_problems:
            first = expiry_problems[0]
            raise CommandError(
                f"Ledger reconciliation FAILED for member {first.member_no}: {first.message} "
                f"({len(expiry_problems)} member problem(s) of {members} members)."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Ledger OK: {count} entries, every link verified; the log's tree of {leaves} "
                "leaves recomputed, every stored hash and signed checkpoint matches; "
                f"the expiry of all {members} members with time or entries is the fold of "
                "their entries from the first."
            )
        )
