from django.core.management.base import BaseCommand, CommandError

from compensation.ledger import reconcile_expiries, verify_chain


class Command(BaseCommand):
    help = (
        "Recompute the ledger hash chain and reconcile every member's expiry against "
        "their entries; exit non-zero naming the first problem."
    )

    def handle(self, *args, **options) -> None:
        count, problems = verify_chain()
        members, expiry_problems = reconcile_expiries()
        for problem in problems[:20]:
            self.stderr.write(f"entry #{problem.seq}: {problem.message}")
        for problem in expiry_problems[:20]:
            self.stderr.write(f"member {problem.member_no}: {problem.message}")
        if problems:
            first = problems[0]
            raise CommandError(
                f"Ledger verification FAILED at entry #{first.seq}: {first.message} "
                f"({len(problems)} problem(s) in {count} entries)."
            )
        if expiry_problems:
            first = expiry_problems[0]
            raise CommandError(
                f"Ledger reconciliation FAILED for member {first.member_no}: {first.message} "
                f"({len(expiry_problems)} member problem(s) of {members} members)."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Ledger OK: {count} entries, every link verified; "
                f"the expiry of all {members} members with time or entries is the fold of "
                "their entries from the first."
            )
        )
