import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import translation
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _

from compensation.models import Claim, Disconnect, Node
from kamen_portal.storage import PrivateStorage
from members.models import MemberProfile


@deconstructible(path="appeals.models.EvidenceStorage")
class EvidenceStorage(PrivateStorage):
    """Private storage of appeal evidence (MEDIA_ROOT/evidence)."""

    def __init__(self):
        super().__init__("evidence")


evidence_storage = EvidenceStorage()


class AppealStatus(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    IN_REVIEW = "in_review", _("In review")
    INFO_REQUESTED = "info_requested", _("Information requested")
    APPROVED = "approved", _("Approved")
    PARTLY_APPROVED = "partly_approved", _("Partly approved")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    ALREADY_COMPENSATED = "already_compensated", _("Already compensated")
    MEDIATION = "mediation", _("Taken to mediation")


OPEN_STATUSES = (AppealStatus.SUBMITTED, AppealStatus.IN_REVIEW, AppealStatus.INFO_REQUESTED)


def overdue_q(now) -> Q:
    """The one definition of "overdue": still open, no staff response yet,
    and the first-response SLA has passed (policy §5)."""
    return Q(status__in=OPEN_STATUSES, first_response_at__isnull=True, sla_due_at__lt=now)


class AppealQuerySet(models.QuerySet):
    def overdue(self, now):
        return self.filter(overdue_q(now))


class Appeal(models.Model):
    """A member's claim about lost time that detection missed or underpaid."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    member = models.ForeignKey(
        MemberProfile, on_delete=models.CASCADE, related_name="appeals", verbose_name=_("member")
    )
    disconnect = models.ForeignKey(
        Disconnect,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="appeals",
        verbose_name=_("detected disconnect"),
    )
    node = models.ForeignKey(
        Node, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("node")
    )
    service = models.CharField(_("node or service"), max_length=120, blank=True)
    claimed_start = models.DateTimeField(_("disconnected from"))
    claimed_end = models.DateTimeField(_("disconnected until"))
    description = models.TextField(_("what happened"), max_length=5000)
    status = models.CharField(
        _("status"), max_length=24, choices=AppealStatus.choices, default=AppealStatus.SUBMITTED
    )
    deadline = models.DateTimeField(_("filing deadline"))
    late_reason = models.CharField(
        _("reason for accepting after the deadline"), max_length=300, blank=True
    )
    submission_token = models.UUIDField(editable=False, verbose_name=_("submission token"))
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("filed by"),
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_appeals",
        verbose_name=_("assigned to"),
    )
    sla_due_at = models.DateTimeField(_("first response due"))
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decision_reason = models.TextField(_("decision reason"), blank=True)
    suggested_minutes = models.PositiveIntegerField(_("suggested credit (minutes)"), default=0)
    credited_minutes = models.PositiveIntegerField(_("credited minutes"), default=0)
    claim = models.OneToOneField(
        Claim,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="appeal",
        verbose_name=_("claim"),
    )
    escalated_at = models.DateTimeField(_("taken to mediation at"), null=True, blank=True)
    created_at = models.DateTimeField(_("filed at"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = AppealQuerySet.as_manager()

    class Meta:
        verbose_name = _("appeal")
        verbose_name_plural = _("appeals")
        ordering = ["-created_at"]
        permissions = [
            ("decide_appeal", _("Can decide appeals")),
            ("approve_above_limit", _("Can approve credits above the reviewer limit")),
            ("file_late_appeal", _("Can open an appeal after the deadline")),
        ]
        constraints = [
            # A double-submitted form creates one appeal.
            models.UniqueConstraint(
                fields=["member", "submission_token"], name="appeal_submission_once"
            ),
            # One open appeal per detected disconnect and member.
            models.UniqueConstraint(
                fields=["member", "disconnect"],
                condition=Q(status__in=["submitted", "in_review", "info_requested"]),
                name="one_open_appeal_per_disconnect",
            ),
            models.CheckConstraint(
                condition=Q(claimed_end__gt=models.F("claimed_start")), name="appeal_span_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "sla_due_at"]),
            models.Index(fields=["member", "-created_at"]),
            models.Index(fields=["assigned_to", "status"]),
        ]

    def __str__(self) -> str:
        return f"#{self.short_id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def is_overdue(self, now) -> bool:
        """The row-level form of ``overdue_q``."""
        return self.is_open and self.first_response_at is None and self.sla_due_at < now

    @property
    def short_id(self) -> str:
        return str(self.public_id)[:8].upper()


class EvidenceKind(models.TextChoices):
    SCREENSHOT = "screenshot", _("Screenshot")
    LOG = "log", _("Log file")


def _evidence_name(instance, filename: str) -> str:
    # Random names, in folders per appeal: nothing the member typed reaches the
    # filesystem (path traversal, odd characters, overwrites).
    return f"{instance.appeal.public_id}/{uuid.uuid4().hex}{'.txt' if instance.kind == 'log' else '.' + instance.fmt}"


class Evidence(models.Model):
    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    appeal = models.ForeignKey(
        Appeal, on_delete=models.CASCADE, related_name="evidence", verbose_name=_("appeal")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=EvidenceKind.choices)
    file = models.FileField(
        storage=evidence_storage, upload_to=_evidence_name, max_length=200, verbose_name=_("file")
    )
    fmt = models.CharField(max_length=8, blank=True, verbose_name=_("format"))  # png, jpg, webp
    content_type = models.CharField(max_length=40, verbose_name=_("content type"))
    original_name = models.CharField(_("file name"), max_length=120)
    size = models.PositiveIntegerField(_("size (bytes)"))
    width = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("width"))
    height = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("height"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    created_at = models.DateTimeField(_("uploaded at"))

    class Meta:
        verbose_name = _("evidence file")
        verbose_name_plural = _("evidence files")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.original_name


class EventKind(models.TextChoices):
    SUBMITTED = "submitted", _("Appeal filed")
    TRIAGED = "triaged", _("Checked against detected disconnects")
    ASSIGNED = "assigned", _("Assigned to a reviewer")
    INFO_REQUESTED = "info_requested", _("More information requested")
    MESSAGE = "message", _("Message")
    EVIDENCE_ADDED = "evidence_added", _("Evidence added")
    APPROVED = "approved", _("Approved")
    PARTLY_APPROVED = "partly_approved", _("Partly approved")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    ESCALATED = "escalated", _("Taken to third-party mediation")
    ALREADY_COMPENSATED = "already_compensated", _("Found already compensated")


ACTOR_ROLE_LABELS = {"member": _("Member"), "staff": _("Staff"), "system": _("System")}


class AppealEvent(models.Model):
    """The audit trail and the timeline a member sees: who, what, when."""

    appeal = models.ForeignKey(
        Appeal, on_delete=models.CASCADE, related_name="events", verbose_name=_("appeal")
    )
    kind = models.CharField(_("event"), max_length=24, choices=EventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    # member / staff / system
    actor_role = models.CharField(max_length=16, verbose_name=_("actor role"))
    old_status = models.CharField(max_length=24, blank=True, verbose_name=_("old status"))
    new_status = models.CharField(max_length=24, blank=True, verbose_name=_("new status"))
    message = models.TextField(_("message"), blank=True)
    data = models.JSONField(default=dict, blank=True, verbose_name=_("data"))
    created_at = models.DateTimeField(_("when"))

    class Meta:
        verbose_name = _("appeal event")
        verbose_name_plural = _("appeal events")
        ordering = ["created_at", "pk"]

    @staticmethod
    def _status_label(value: str) -> str:
        return AppealStatus(value).label if value in AppealStatus.values else value

    @property
    def old_status_label(self) -> str:
        return self._status_label(self.old_status)

    @property
    def new_status_label(self) -> str:
        return self._status_label(self.new_status)

    @property
    def actor_role_label(self) -> str:
        return str(ACTOR_ROLE_LABELS.get(self.actor_role, self.actor_role))


class ReasonTemplate(models.Model):
    """Editable rejection reasons staff pick from."""

    title = models.CharField(_("title"), max_length=80)
    text_zh = models.TextField(_("text (Chinese)"))
    text_en = models.TextField(_("text (English)"))
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("rejection reason template")
        verbose_name_plural = _("rejection reason templates")
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def text(self, language: str | None = None) -> str:
        language = language or translation.get_language()
        return self.text_en if language == "en" else self.text_zh
