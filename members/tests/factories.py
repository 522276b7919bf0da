from datetime import timedelta

import factory
from allauth.account.models import EmailAddress
from django.utils import timezone

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
    """A verified member with an active gold membership for 30 more days."""

    @factory.post_generation
    def membership(obj, create, extracted, **kwargs):
        if not create:
            return
        profile = obj.member
        profile.tier = kwargs.get("tier", Tier.GOLD)
        profile.expires_at = kwargs.get("expires_at", timezone.now() + timedelta(days=30))
        profile.save()


class StaffFactory(UserFactory):
    is_staff = True
