from .models import MemberProfile, User


def member_profile_for_user(*, user: User) -> MemberProfile | None:
    """The member profile of ``user``, or None for staff-only accounts."""
    return MemberProfile.objects.filter(user=user).select_related("user").first()
