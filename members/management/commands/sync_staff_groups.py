from django.core.management.base import BaseCommand

from members.services.staff import GROUP_PERMISSIONS, staff_groups_sync


class Command(BaseCommand):
    help = "Create or update the staff groups (Reviewers, Supervisors, Operators) and their permissions."

    def handle(self, *args, **options) -> None:
        staff_groups_sync()
        self.stdout.write(
            self.style.SUCCESS("Staff groups are up to date: " + ", ".join(GROUP_PERMISSIONS) + ".")
        )
