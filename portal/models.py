import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models import MemberProfile


class AssistantQuestion(models.Model):
    """One question put to the assistant, kept to improve the help articles.

    Nothing here identifies the asker: no user, no address, and the text is
    stored with member numbers, e-mail addresses and phone numbers removed.
    ``public_id`` lets the asker rate the answer (thumbs up or down)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    asked_at = models.DateTimeField(_("asked at"), db_index=True)
    language = models.CharField(_("language"), max_length=8)
    text = models.CharField(_("question (without personal data)"), max_length=500)
    intent = models.CharField(_("intent"), max_length=32, db_index=True)
    confidence = models.FloatField(_("confidence"))
    article = models.CharField(_("help article"), max_length=64, blank=True)
    signed_in = models.BooleanField(_("asked by a signed-in member"), default=False)
    helpful = models.BooleanField(_("helpful"), null=True, blank=True)
    rated_at = models.DateTimeField(_("rated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("assistant question")
        verbose_name_plural = _("assistant questions")
        ordering = ["-asked_at"]

    def __str__(self) -> str:
        return self.text[:60]


class SupportRequestStatus(models.TextChoices):
    OPEN = "open", _("Waiting for staff")
    ANSWERED = "answered", _("Answered")
    CLOSED = "closed", _("Closed by staff")


class SupportRequest(models.Model):
    """A member's message to staff from the assistant, with the conversation
    that led to it, so nobody has to ask the member to repeat themselves."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    member = models.ForeignKey(
        MemberProfile,
        on_delete=models.CASCADE,
        related_name="support_requests",
        verbose_name=_("member"),
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=SupportRequestStatus.choices,
        default=SupportRequestStatus.OPEN,
    )
    message = models.TextField(_("message"), max_length=2000)
    conversation = models.JSONField(_("conversation"), default=list)
    language = models.CharField(_("language"), max_length=8)
    created_at = models.DateTimeField(_("created at"))
    updated_at = models.DateTimeField(_("updated at"))
    replied_at = models.DateTimeField(_("last answered at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("closed by"),
    )

    class Meta:
        verbose_name = _("support request")
        verbose_name_plural = _("support requests")
        ordering = ["-created_at"]
        permissions = [
            ("close_supportrequest", _("Can close support requests")),
            ("reply_supportrequest", _("Can reply to support requests")),
        ]
        indexes = [models.Index(fields=["status", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.member_id} · {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def reference(self) -> str:
        """Short reference a member can quote (not sequential)."""
        return str(self.public_id)[:8].upper()


class SupportReply(models.Model):
    """One staff answer on a support request. Answers are kept in order, so
    a second answer adds to the thread the member reads instead of
    replacing the first."""

    request = models.ForeignKey(
        SupportRequest,
        on_delete=models.CASCADE,
        related_name="replies",
        verbose_name=_("support request"),
    )
    body = models.TextField(_("reply"), max_length=5000)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("answered by"),
    )
    created_at = models.DateTimeField(_("answered at"))

    class Meta:
        verbose_name = _("support reply")
        verbose_name_plural = _("support replies")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.request.reference} · {self.created_at:%Y-%m-%d %H:%M}"
