from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from compensation.demo import seed_compensation_history
from compensation.services.memberships import membership_purchase
from members.models import Tier
from members.selectors import member_profile_for_user
from members.services.accounts import account_ensure, member_profile_create
from members.services.staff import staff_groups_sync

DEMO_PASSWORD = "kamen-demo-2026"

DEMO_MEMBERS = [
    ("member1@example.com", Tier.GOLD, timedelta(days=180)),
    ("member2@example.com", Tier.SILVER, timedelta(days=30)),
    ("member3@example.com", Tier.BASIC, timedelta(days=7)),
]
DEMO_STAFF = [
    ("reviewer@example.com", "Reviewers", False),
    ("supervisor@example.com", "Supervisors", False),
    ("supervisor2@example.com", "Supervisors", False),
    ("operator@example.com", "Operators", False),
]


# What each staff group may do in admin; later features add their own models.
class Command(BaseCommand):
    help = "Create the demo accounts and data (safe to run again: nothing is duplicated)."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        now = timezone.now()
        staff_groups_sync()

        for email, tier, validity in DEMO_MEMBERS:
            user = account_ensure(email=email, password=DEMO_PASSWORD)
            profile = member_profile_for_user(user=user) or member_profile_create(user=user)
            # Only a brand-new demo membership gets its initial period, as a
            # purchase on the ledger (its first entry, from nothing); every
            # later change of time is an entry too.
            if profile.expires_at is None and not profile.ledger.exists():
                membership_purchase(
                    member_id=profile.pk,
                    days=validity.days,
                    tier=tier,
                    source_ref="seed_demo",
                    note="Demo membership",
                    now=now,
                )
                profile.refresh_from_db()
            self.stdout.write(
                f"member   {email:<26} {profile.member_no}  {profile.get_tier_display()}"
            )

        for email, group_name, _superuser in DEMO_STAFF:
            account_ensure(email=email, password=DEMO_PASSWORD, is_staff=True, groups=(group_name,))
            self.stdout.write(f"staff    {email:<26} {group_name}")

        token = seed_compensation_history(now=now, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Password for all: {DEMO_PASSWORD}"))
        self.stdout.write(
            "Node demo-node token (new on every run; send heartbeats with "
            f"'Authorization: Bearer <token>'):\n{token}"
        )
