import uuid
import zoneinfo
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from kamen_portal.storage import PrivateStorage

# \Z, not $ (which also matches before a trailing newline), and ASCII digits
# (\d takes any Unicode digit). PostgreSQL's regex engine knows \Z too.
MEMBER_NO_PATTERN = r"^KM[0-9]{8}\Z"


class UserManager(BaseUserManager):
    """Users are identified by email; there is no username."""

    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields):
        extra_fields["is_staff"] = True
        extra_fields["is_superuser"] = True
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    username = None
    email = models.EmailField(_("email address"), unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.email


class Tier(models.TextChoices):
    BASIC = "basic", _("Basic")
    SILVER = "silver", _("Silver")
    GOLD = "gold", _("Gold")
    DIAMOND = "diamond", _("Diamond")


class MemberStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    CLOSED = "closed", _("Closed")


def validate_timezone(value: str) -> None:
    # Validated rather than offered as `choices`: the tz database differs
    # between machines, and choices would make migrations depend on it.
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(_("Unknown time zone: %(name)s"), params={"name": value}) from exc


class MemberProfile(models.Model):
    """The member side of an account: member number and membership."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="member",
        verbose_name=_("account"),
    )
    member_no = models.CharField(
        _("member number"),
        max_length=10,
        unique=True,
        validators=[RegexValidator(MEMBER_NO_PATTERN)],
        help_text=_("KM followed by 8 digits, shown to the member."),
    )
    tier = models.CharField(_("tier"), max_length=16, choices=Tier.choices, default=Tier.BASIC)
    expires_at = models.DateTimeField(
        _("membership expires at"),
        null=True,
        blank=True,
        help_text=_("Empty when the member has never had a paid membership."),
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=MemberStatus.choices,
        default=MemberStatus.ACTIVE,
    )
    language = models.CharField(
        _("preferred language"),
        max_length=8,
        choices=settings.LANGUAGES,
        default="zh-hans",
    )
    timezone = models.CharField(
        _("time zone"), max_length=64, validators=[validate_timezone], default="Asia/Shanghai"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("member profile")
        verbose_name_plural = _("member profiles")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(member_no__regex=MEMBER_NO_PATTERN),
                name="member_no_format",
            )
        ]
        indexes = [models.Index(fields=["tier", "status"])]

    def __str__(self) -> str:
        return self.member_no

    def membership_is_active(self, *, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return (
            self.status == MemberStatus.ACTIVE
            and self.expires_at is not None
            and self.expires_at > now
        )

    def remaining(self, *, now: datetime | None = None) -> timedelta:
        now = now or timezone.now()
        if self.expires_at is None or self.expires_at <= now:
            return timedelta(0)
        return self.expires_at - now


class NotificationKind(models.TextChoices):
    DISCONNECT_DETECTED = "disconnect_detected", _("Disconnect detected")
    CREDITED = "credited", _("Time credited")
    COUPON_ISSUED = "coupon_issued", _("Coupon issued")
    APPEAL_RECEIVED = "appeal_received", _("Appeal received")
    APPEAL_INFO_REQUESTED = "appeal_info_requested", _("Information requested on an appeal")
    APPEAL_DECIDED = "appeal_decided", _("Appeal decided")
    APPEAL_ESCALATED = "appeal_escalated", _("Appeal taken to mediation")
    APPEAL_WINDOW_CLOSING = "appeal_window_closing", _("Appeal window closing")
    INCIDENT_DECLARED = "incident_declared", _("Incident declared")
    INCIDENT_RESOLVED = "incident_resolved", _("Incident resolved")
    EXPORT_READY = "export_ready", _("Data export ready")
    SECURITY = "security", _("Account security")
    MEMBERSHIP_ADJUSTED = "membership_adjusted", _("Membership time adjusted by staff")
    STAFF_DIGEST = "staff_digest", _("Staff digest")
    STATUS_NOTICE = "status_notice", _("Status page updates (incidents and maintenance)")
    NODE_DEGRADED = "node_degraded", _("Your service node is degraded")
    NODE_HEALTH_ALERT = "node_health_alert", _("Node health alert (operators)")
    WEBHOOK_DISABLED = "webhook_disabled", _("Webhook endpoint disabled")
    SUPPORT_REPLY = "support_reply", _("Reply to a support request")
    SUBSCRIPTION_CONFIRM = "subscription_confirm", _("Confirm an email subscription")


# Security events always go by email, whatever the preferences say.
ALWAYS_EMAILED = frozenset(
    {
        NotificationKind.SECURITY,
        NotificationKind.STAFF_DIGEST,
        NotificationKind.WEBHOOK_DISABLED,
        NotificationKind.SUBSCRIPTION_CONFIRM,
    }
)
# Defaults when a member has not chosen: (email, inbox).
DEFAULT_CHANNELS = {
    NotificationKind.DISCONNECT_DETECTED: (False, True),
    NotificationKind.APPEAL_WINDOW_CLOSING: (True, True),
    # Status page subscription: members opt in (on /status/ or in settings).
    NotificationKind.STATUS_NOTICE: (False, False),
    # Advice, not an event about the member's own time: inbox only unless chosen.
    NotificationKind.NODE_DEGRADED: (False, True),
}


class EmailStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SENDING = "sending", _("Being sent")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Not emailed")


class EmailSubscriber(models.Model):
    """Somebody without an account who asked for one kind of notice by email
    (the status page's updates), Statuspage's model: pending until the
    address is confirmed by the link sent to it (double opt-in); a signed
    link in every email ends it in one click."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    email = models.EmailField(_("email address"))
    kind = models.CharField(_("kind"), max_length=32, choices=NotificationKind.choices)
    language = models.CharField(_("language"), max_length=10, default=settings.LANGUAGE_CODE)
    created_at = models.DateTimeField(_("created at"))
    confirm_sent_at = models.DateTimeField(_("confirmation sent at"), null=True, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("email subscriber")
        verbose_name_plural = _("email subscribers")
        constraints = [
            models.UniqueConstraint(fields=["email", "kind"], name="one_subscription_per_address")
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_active(self) -> bool:
        return self.confirmed_at is not None and self.unsubscribed_at is None


class Notification(models.Model):
    """One thing a member is told, in the inbox and (unless skipped) by email.

    Recorded in the same transaction as the event it reports; the email goes
    out after commit. ``dedupe_key`` makes reporting the same event twice a
    no-op (a retried task, a replayed detection). The recipient is an
    account or, for email-only notices, an ``EmailSubscriber``: never both."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("account"),
        null=True,
        blank=True,
    )
    subscriber = models.ForeignKey(
        EmailSubscriber,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("email subscriber"),
        null=True,
        blank=True,
    )
    kind = models.CharField(_("kind"), max_length=32, choices=NotificationKind.choices)
    dedupe_key = models.CharField(_("deduplication key"), max_length=120, unique=True)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("message"))
    # The notice in every interface language ({"en": [title, body], ...}),
    # rendered when it is recorded: the inbox shows the reader's current
    # language, not the one the member had when the event happened.
    texts = models.JSONField(_("texts"), default=dict, blank=True, editable=False)
    url = models.CharField(_("link"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"))
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    in_inbox = models.BooleanField(_("shown in the inbox"), default=True)
    email_status = models.CharField(
        _("email"), max_length=16, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    emailed_at = models.DateTimeField(_("emailed at"), null=True, blank=True)
    email_attempts = models.PositiveSmallIntegerField(_("send attempts"), default=0)
    email_claimed_at = models.DateTimeField(_("email claimed at"), null=True, blank=True)
    # When the next attempt is due after a failed one: the relay re-sends
    # the email if that attempt's task was lost.
    email_retry_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    email_error = models.CharField(_("last error"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]
        permissions = [("retry_notification", _("Can retry failed notification emails"))]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["email_status", "created_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, subscriber__isnull=True)
                    | models.Q(user__isnull=True, subscriber__isnull=False)
                ),
                name="notification_has_one_recipient",
            )
        ]

    def __str__(self) -> str:
        return self.title

    def _shown(self) -> tuple[str, str]:
        text = self.texts.get(translation.get_language() or "")
        return (text[0], text[1]) if text else (self.title, self.body)

    @property
    def shown_title(self) -> str:
        """The title in the reader's current language."""
        return self._shown()[0]

    @property
    def shown_body(self) -> str:
        return self._shown()[1]


class NotificationPreference(models.Model):
    """A member's choice of channels for one kind of notification."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_preferences",
        verbose_name=_("user"),
    )
    kind = models.CharField(max_length=32, choices=NotificationKind.choices, verbose_name=_("kind"))
    email = models.BooleanField(_("email"), default=True)
    inbox = models.BooleanField(_("inbox"), default=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="one_preference_per_kind")
        ]


class KnownDevice(models.Model):
    """A browser a member has signed in from (hashed user agent and network),
    so a sign-in from a new one can be reported."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="known_devices",
        verbose_name=_("user"),
    )
    fingerprint = models.CharField(max_length=64, verbose_name=_("fingerprint"))
    user_agent = models.CharField(max_length=300, blank=True, verbose_name=_("user agent"))
    first_seen = models.DateTimeField(verbose_name=_("first seen"))
    last_seen = models.DateTimeField(verbose_name=_("last seen"))

    class Meta:
        verbose_name = _("known device")
        verbose_name_plural = _("known devices")
        constraints = [
            models.UniqueConstraint(fields=["user", "fingerprint"], name="device_once_per_user")
        ]


class ExportStatus(models.TextChoices):
    PENDING = "pending", _("Queued")
    BUILDING = "building", _("Being prepared")
    READY = "ready", _("Ready to download")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired")


class DataExport(models.Model):
    """A member's request for a copy of their whole record (ZIP)."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="exports",
        verbose_name=_("user"),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING
    )
    requested_at = models.DateTimeField(_("requested at"))
    ready_at = models.DateTimeField(_("ready at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("link expires at"), null=True, blank=True)
    file = models.FileField(
        storage=PrivateStorage("exports"), max_length=200, blank=True, verbose_name=_("file")
    )
    size = models.PositiveBigIntegerField(default=0, verbose_name=_("size"))
    sha256 = models.CharField(max_length=64, blank=True, verbose_name=_("SHA-256"))
    error = models.CharField(max_length=300, blank=True, verbose_name=_("error"))

    class Meta:
        verbose_name = _("data export")
        verbose_name_plural = _("data exports")
        ordering = ["-requested_at"]
        indexes = [models.Index(fields=["user", "-requested_at"])]


class SignInEvent(models.Model):
    """One successful sign-in: the member's sign-in history."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="sign_ins",
        verbose_name=_("user"),
    )
    at = models.DateTimeField(verbose_name=_("signed in at"))
    ip = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("IP address"))
    user_agent = models.CharField(max_length=300, blank=True, verbose_name=_("user agent"))
    new_device = models.BooleanField(default=False, verbose_name=_("new device"))

    class Meta:
        verbose_name = _("sign-in")
        verbose_name_plural = _("sign-ins")
        ordering = ["-at"]
        indexes = [models.Index(fields=["user", "-at"])]
