from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import User
from .services import member_profile_create


@receiver(post_save, sender=User, dispatch_uid="members_profile_for_new_user")
def create_profile_for_new_member(sender, instance: User, created: bool, **kwargs) -> None:
    # Every member account has a profile from its first moment; staff accounts
    # (reviewers, supervisors) are not members and get none.
    if created and not instance.is_staff and not kwargs.get("raw"):
        member_profile_create(user=instance)
