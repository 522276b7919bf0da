import secrets

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.utils import translation

from kamen_portal.http import portal_url

from .language import SUPPORTED, language_choice_take, language_cookie_set
from .services.accounts import member_language_on_sign_in, member_set_language

# Links allauth builds from the request's Host; ours come from PORTAL_BASE_URL.
_LINKS = ("activate_url", "password_reset_url", "signup_url")


class AccountAdapter(DefaultAccountAdapter):
    """Keeps the reader's language from sign-up on (account e-mails, the
    pages and messages after sign-in), puts our own links in account
    e-mails, and keeps sign-up from telling taken addresses apart by its
    timing."""

    def save_user(self, request, user, form, commit=True):
        # The new account keeps the language the page was read in: chosen
        # on the switcher before signing up, or the portal's default.
        user = super().save_user(request, user, form, commit=commit)
        profile = getattr(user, "member", None) if commit else None
        if profile is not None:
            # The middleware activated the switcher's choice for this request.
            language = translation.get_language()
            if language in SUPPORTED:
                member_set_language(profile=profile, language=language)
        return user

    def login(self, request, user) -> None:
        chosen = language_choice_take(request)
        super().login(request, user)
        profile = getattr(user, "member", None)
        if profile is None:
            return
        language = member_language_on_sign_in(profile=profile, chosen=chosen)
        # This request was read as anonymous; the "signed in" message that
        # follows and the next page are in the member's language.
        translation.activate(language)
        request.LANGUAGE_CODE = language

    def post_login(self, request, user, **kwargs):
        response = super().post_login(request, user, **kwargs)
        profile = getattr(user, "member", None)
        if profile is not None and response is not None:
            # The page keeps the account's language after signing out too.
            language_cookie_set(response, profile.language)
        return response

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        language = translation.get_language()
        user = context.get("user")
        profile = getattr(user, "member", None) if user is not None else None
        if profile is not None:
            language = profile.language
        context = {
            **context,
            **{key: portal_url(context[key]) for key in _LINKS if context.get(key)},
            "portal_url": portal_url("/"),
            "confirm_days": settings.ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS,
        }
        with translation.override(language):
            context["portal_name"] = str(settings.PORTAL_NAME)
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
