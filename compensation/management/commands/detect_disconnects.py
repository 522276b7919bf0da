from dataclasses import asdict

from django.core.management.base import BaseCommand
from django.utils import timezone

from compensation.services.detection import detection_run


class Command(BaseCommand):
    help = "Run one detection pass now (the same code Celery beat runs every 30 seconds)."

    def handle(self, *args, **options) -> None:
        report = detection_run(now=timezone.now())
        self.stdout.write(" ".join(f"{k}={v}" for k, v in asdict(report).items()))
