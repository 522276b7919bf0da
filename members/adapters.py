import secrets

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib.auth.hashers import make_password
from django.utils import translation


class AccountAdapter(DefaultAccountAdapter):
    """Sends account emails in the member's language, and keeps sign-up
    from telling taken addresses apart by its timing."""

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        language = translation.get_language()
        user = context.get("user")
        profile = getattr(user, "member", None) if user is not None else None
        if profile is not None:
            language = profile.language
        with translation.override(language):
            super().send_mail(template_prefix, email, context)

    def respond_email_verification_sent(self, request, user):
        # With ACCOUNT_PREVENT_ENUMERATION, signing up with a taken address
        # answers like a new sign-up, user=None (so does the honeypot). A new
        # sign-up hashes the password (most of its time); without the same
        # work here the taken address would answer ~20x faster and give
        # itself away. The hash's cost does not depend on the password.
        if user is None:
            make_password(secrets.token_urlsafe(16))
        return super().respond_email_verification_sent(request, user)
