from django.core.management.base import BaseCommand
from django.utils import timezone

from compensation.services.ledger_publish import ledger_publish_head


class Command(BaseCommand):
    help = "Publish the current ledger head on the public ledger page now."

    def handle(self, *args, **options) -> None:
        checkpoint = ledger_publish_head(now=timezone.now())
        self.stdout.write(f"seq={checkpoint.seq} hash={checkpoint.hash}")
