from django.core.management.base import BaseCommand, CommandError

from compensation.ledger import verify_chain


class Command(BaseCommand):
    help = "Recompute the ledger hash chain; exit non-zero naming the first bad entry."

    def handle(self, *args, **options) -> None:
        count, problems = verify_chain()
        if problems:
            for problem in problems[:20]:
                self.stderr.write(f"entry #{problem.seq}: {problem.message}")
            first = problems[0]
            raise CommandError(
                f"Ledger verification FAILED at entry #{first.seq}: {first.message} "
                f"({len(problems)} problem(s) in {count} entries)."
            )
        self.stdout.write(self.style.SUCCESS(f"Ledger OK: {count} entries, every link verified."))
