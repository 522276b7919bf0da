"""Security notices: a sign-in from a new device, and changes to password,
email addresses and two-factor authentication. Always emailed (see
ALWAYS_EMAILED); allauth's own notification emails are switched off so the
member gets one message per event, in their language, in the portal's look."""

from __future__ import annotations

import hashlib
import ipaddress
import uuid

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import KnownDevice, NotificationKind, SignInEvent, User
from .notify import Message, notify_many

EVENTS = {
    "new_device": lambda: (
        _("New sign-in to your account"),
        _(
            "Your account was signed in from a browser we have not seen before. If this was not you, change your password now and enable two-factor authentication."
        ),
    ),
    "password_changed": lambda: (
        _("Your password was changed"),
        _(
            "The password of your account was changed. If you did not do this, reset your password now."
        ),
    ),
    "email_changed": lambda: (
        _("Your email address was changed"),
        _(
            "The email address of your account was changed. If you did not do this, contact support at once."
        ),
    ),
    "mfa_changed": lambda: (
        _("Your two-factor authentication was changed"),
        _(
            "Two-factor authentication settings of your account were changed. If you did not do this, secure your account now."
        ),
    ),
}


def security_notify(*, user: User, event: str) -> None:
    title_body = EVENTS[event]

    def render():
        title, body = title_body()
        return title, body, reverse("account_change_password")

    notify_many(
        messages=[
            Message(
                kind=NotificationKind.SECURITY,
                dedupe_key=f"security:{event}:{user.pk}:{uuid.uuid4().hex}",
                user_id=user.pk,
                render=render,
            )
        ],
        now=timezone.now(),
    )


def _network(ip: str) -> str:
    # The /24 (or /48): a phone moving between addresses of one provider is
    # still the same device for this purpose.
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def device_seen(*, user: User, user_agent: str, ip: str) -> bool:
    """Record the device; True when it is new for a user who already had one."""
    fingerprint = hashlib.sha256(f"{user_agent}|{_network(ip)}".encode()).hexdigest()
    now = timezone.now()
    if KnownDevice.objects.filter(user=user, fingerprint=fingerprint).update(last_seen=now):
        return False
    had_devices = KnownDevice.objects.filter(user=user).exists()
    try:
        with transaction.atomic():
            KnownDevice.objects.create(
                user=user,
                fingerprint=fingerprint,
                user_agent=user_agent[:300],
                first_seen=now,
                last_seen=now,
            )
    except IntegrityError:
        return False
    return had_devices


def sign_in_record(*, user: User, ip: str | None, user_agent: str, now) -> bool:
    """Record a sign-in in the member's history; a browser not seen before
    is a new device and the member is told by email. Returns whether it was."""
    new = device_seen(user=user, user_agent=user_agent, ip=ip or "")
    SignInEvent.objects.create(
        user=user, at=now, ip=ip, user_agent=user_agent[:300], new_device=new
    )
    if new:
        security_notify(user=user, event="new_device")
    return new
