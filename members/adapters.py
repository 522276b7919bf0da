from allauth.account.adapter import DefaultAccountAdapter
from django.utils import translation


class AccountAdapter(DefaultAccountAdapter):
    """Sends account emails in the member's language."""

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        language = translation.get_language()
        user = context.get("user")
        profile = getattr(user, "member", None) if user is not None else None
        if profile is not None:
            language = profile.language
        with translation.override(language):
            super().send_mail(template_prefix, email, context)
