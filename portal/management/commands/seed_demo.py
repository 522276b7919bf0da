from datetime import timedelta

from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from compensation.demo import seed_compensation_history
from members.models import MemberProfile, Tier, User
from members.services.accounts import member_profile_create
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
            user = self._user(email, is_staff=False)
            profile = MemberProfile.objects.filter(user=user).first()
            if profile is None:
                profile = member_profile_create(user=user)
            if profile.expires_at is None:
                # Only a brand-new demo membership gets its initial period;
                # afterwards membership time changes through the ledger alone.
                profile.tier = tier
                profile.expires_at = now + validity
                profile.save(update_fields=["tier", "expires_at"])
            self.stdout.write(
                f"member   {email:<26} {profile.member_no}  {profile.get_tier_display()}"
            )

        for email, group_name, _superuser in DEMO_STAFF:
            user = self._user(email, is_staff=True)
            user.groups.add(Group.objects.get(name=group_name))
            self.stdout.write(f"staff    {email:<26} {group_name}")

        token = seed_compensation_history(now=now, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Password for all: {DEMO_PASSWORD}"))
        self.stdout.write(
            "Node demo-node token (new on every run; send heartbeats with "
            f"'Authorization: Bearer <token>'):\n{token}"
        )

    def _user(self, email: str, *, is_staff: bool) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=DEMO_PASSWORD, is_staff=is_staff)
        else:
            user.set_password(DEMO_PASSWORD)
            user.is_staff = is_staff
            user.is_active = True
            user.save(update_fields=["password", "is_staff", "is_active"])
        EmailAddress.objects.update_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        return user
