"""allauth's two-factor code forms with django-axes lock-out (settings.MFA_FORMS).

allauth already rate-limits wrong codes per user (its ``login_failed`` limit);
axes is the portal's lock-out for passwords, and the second factor must obey
the same counter: a wrong TOTP or recovery code counts as a failed sign-in for
the user's email and client IP, and while axes holds that pair locked out even
a correct code is refused, so a stolen password cannot be paired with a code
guessed across lock-out windows.
"""

from __future__ import annotations

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.core import context
from allauth.mfa.base import forms as mfa_forms
from axes.handlers.proxy import AxesProxyHandler
from django import forms
from django.contrib.auth.signals import user_login_failed
from django.utils.translation import gettext_lazy as _

from .models import MEMBER_NO_PATTERN, MemberProfile


class _AxesCodeMixin:
    user = None

    def _credentials(self) -> dict:
        # The same key the password step counts under (members.security.axes_username).
        return {"username": self.user.email}

    def clean_code(self) -> str:
        request = context.request
        credentials = self._credentials()
        if not AxesProxyHandler.is_allowed(request, credentials):
            # AxesMiddleware answers with the lock-out page, as for a password.
            request.axes_locked_out = True
            request.axes_credentials = credentials
            raise get_account_adapter().validation_error("too_many_login_attempts")
        try:
            return super().clean_code()
        except forms.ValidationError:
            user_login_failed.send(sender=type(self), credentials=credentials, request=request)
            raise


class AuthenticateForm(_AxesCodeMixin, mfa_forms.AuthenticateForm):
    """The code step of the sign-in (after the password)."""


class ReauthenticateForm(_AxesCodeMixin, mfa_forms.ReauthenticateForm):
    """The code asked of a signed-in session, e.g. before the admin opens."""


class MemberNumberField(forms.RegexField):
    """A member number typed by staff (KM and 8 ASCII digits), cleaned to
    the member it names; used wherever staff act for a member in admin."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", _("Member number"))
        kwargs.setdefault(
            "error_messages", {"invalid": _("A member number is KM followed by 8 digits.")}
        )
        super().__init__(regex=MEMBER_NO_PATTERN, **kwargs)

    def clean(self, value):
        number = super().clean(value)
        member = MemberProfile.objects.filter(member_no=number).select_related("user").first()
        if member is None:
            raise forms.ValidationError(_("No member has this number."), code="unknown_member")
        return member
