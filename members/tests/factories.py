from datetime import timedelta

import factory
from allauth.account.models import EmailAddress
from django.utils import timezone

from compensation.services.memberships import membership_open
from members.models import Tier, User

PASSWORD = "correct-horse-battery-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified(obj, create, extracted, **kwargs):
        if not create:
            return
        obj.save()
        if extracted is not False:
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


class MemberFactory(UserFactory):
    """A verified member with an active gold membership for 30 more days.

    The membership is an opening entry on the ledger (as for every member
    who had time before the ledger knew them), so the expiry is the fold of
    the member's entries like everyone else's. ``membership__expires_at=None``
    makes a member who never had time (and no entry)."""

    @factory.post_generation
    def membership(obj, create, extracted, **kwargs):
        if not create:
            return
        profile = obj.member
        tier = kwargs.get("tier", Tier.GOLD)
        expires_at = kwargs.get("expires_at", timezone.now() + timedelta(days=30))
        if expires_at is None:
            if profile.tier != tier:
                profile.tier = tier
                profile.save(update_fields=["tier"])
            return
        membership_open(
            member_id=profile.pk,
            expires_at=expires_at,
            tier=tier,
            source_ref="test-factory",
            now=timezone.now(),
        )
        profile.refresh_from_db()


class StaffFactory(UserFactory):
    is_staff = True
