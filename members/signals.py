from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import User
from .services.accounts import member_profile_create
from .services.security_notices import security_notify, sign_in_record


@receiver(post_save, sender=User, dispatch_uid="members_profile_for_new_user")
def create_profile_for_new_member(sender, instance: User, created: bool, **kwargs) -> None:
    # Every member account has a profile from its first moment; staff accounts
    # (reviewers, supervisors) are not members and get none.
    if created and not instance.is_staff and not kwargs.get("raw"):
        member_profile_create(user=instance)


# --- security notices ------------------------------------------------------------

from allauth.account import signals as account_signals  # noqa: E402
from allauth.mfa import signals as mfa_signals  # noqa: E402
from axes.helpers import get_client_ip_address  # noqa: E402
from django.contrib.auth.signals import user_logged_in  # noqa: E402
from django.utils import timezone  # noqa: E402


@receiver(user_logged_in, dispatch_uid="members_new_device_notice")
def notice_new_device(sender, request, user, **kwargs) -> None:
    if request is None:
        return
    # The same client address axes uses (honours PROXY_COUNT).
    sign_in_record(
        user=user,
        ip=get_client_ip_address(request) or None,
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        now=timezone.now(),
    )


def _notice(event: str):
    def handler(sender, request=None, user=None, **kwargs) -> None:
        if user is not None:
            security_notify(user=user, event=event)

    return handler


for _signal, _event_name in (
    (account_signals.password_changed, "password_changed"),
    (account_signals.password_set, "password_changed"),
    (account_signals.password_reset, "password_changed"),
    (account_signals.email_changed, "email_changed"),
    (mfa_signals.authenticator_added, "mfa_changed"),
    (mfa_signals.authenticator_removed, "mfa_changed"),
    (mfa_signals.authenticator_reset, "mfa_changed"),
):
    _signal.connect(
        _notice(_event_name), weak=False, dispatch_uid=f"members_notice_{_event_name}_{id(_signal)}"
    )
