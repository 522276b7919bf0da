from django.http import Http404

from .models import MemberProfile, NotificationPreference, User
from .services.notify import channels_for


def member_profile_for_user(*, user: User) -> MemberProfile | None:
    """The member profile of ``user``, or None for staff-only accounts."""
    return MemberProfile.objects.filter(user=user).select_related("user").first()


def member_profile_or_404(*, user: User) -> MemberProfile:
    """The signed-in member's profile for member-only pages; staff-only
    accounts have none and get a 404."""
    profile = member_profile_for_user(user=user)
    if profile is None:
        raise Http404
    return profile


def notification_channels(*, user: User, kind: str) -> tuple[bool, bool]:
    """(email, inbox) the member chose for ``kind``, or its default."""
    chosen = NotificationPreference.objects.filter(user=user, kind=kind).first()
    if chosen is not None:
        return channels_for(user.pk, kind, {(user.pk, kind): (chosen.email, chosen.inbox)})
    return channels_for(user.pk, kind, {})
