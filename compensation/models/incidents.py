"""Incidents (node-wide or platform-wide interruptions) and whom they affect."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from members.models import MemberProfile

from .nodes import Node


class IncidentKind(models.TextChoices):
    NODE_SILENT = "node_silent", _("Node outage (detected)")
    MASS_DROP = "mass_drop", _("Mass disconnect (detected)")
    OUTAGE = "outage", _("Outage (declared)")
    MAINTENANCE = "maintenance", _("Maintenance (declared)")
    DEGRADED = "degraded", _("Degraded performance (declared)")


# Kinds declared by staff (the others are detected).
DECLARED_KINDS = (IncidentKind.OUTAGE, IncidentKind.MAINTENANCE, IncidentKind.DEGRADED)


class IncidentStatus(models.TextChoices):
    OPEN = "open", _("Ongoing")
    CLOSED = "closed", _("Resolved")
    CANCELLED = "cancelled", _("Withdrawn (no outage)")


class IncidentScope(models.TextChoices):
    ALL = "all", _("All members")
    NODES = "nodes", _("Members on the chosen nodes")


class PayoutState(models.TextChoices):
    NOT_STARTED = "not_started", _("Not started")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")


class Incident(models.Model):
    """A node-wide or platform-wide interruption: detected or declared by staff."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=IncidentKind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.OPEN
    )
    scope = models.CharField(
        _("scope"), max_length=8, choices=IncidentScope.choices, default=IncidentScope.NODES
    )
    nodes = models.ManyToManyField(
        Node, blank=True, related_name="incidents", verbose_name=_("nodes")
    )
    # Set for detected incidents: at most one open detected incident per node.
    auto_node = models.ForeignKey(
        Node,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("auto node"),
    )
    started_at = models.DateTimeField(_("start"))
    ended_at = models.DateTimeField(_("end"), null=True, blank=True)
    ratio = models.DecimalField(
        _("compensation ratio"),
        max_digits=4,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("10"))],
        help_text=_("Leave empty to use the policy's incident ratio."),
    )
    title_zh = models.CharField(_("public title (Chinese)"), max_length=120)
    title_en = models.CharField(_("public title (English)"), max_length=120)
    description_zh = models.TextField(_("public description (Chinese)"), blank=True)
    description_en = models.TextField(_("public description (English)"), blank=True)
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("declared by"),
    )
    payout_state = models.CharField(
        _("compensation"),
        max_length=16,
        choices=PayoutState.choices,
        default=PayoutState.NOT_STARTED,
        editable=False,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-started_at"]
        permissions = [
            ("close_incident", _("Can end incidents and start their payout")),
            ("view_ops_dashboard", _("Can view the operations dashboard")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["auto_node"],
                condition=Q(status="open"),
                name="one_open_detected_incident_per_node",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gt=models.F("started_at")),
                name="incident_ends_after_it_starts",
            ),
        ]
        indexes = [models.Index(fields=["status", "started_at"])]

    def __str__(self) -> str:
        return self.title

    @property
    def is_declared(self) -> bool:
        return self.kind in DECLARED_KINDS

    @property
    def is_maintenance(self) -> bool:
        """Planned work, shown apart from incidents and labelled 维护 on
        every page (see ``compensation.status.incident_label``)."""
        return self.kind == IncidentKind.MAINTENANCE

    @property
    def title(self) -> str:
        return self.title_en if translation.get_language() == "en" else self.title_zh

    @property
    def description(self) -> str:
        return self.description_en if translation.get_language() == "en" else self.description_zh


class IncidentMember(models.Model):
    """A member affected by an incident (snapshot taken when it was detected,
    or computed at payout for declared ones)."""

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="affected", verbose_name=_("incident")
    )
    member = models.ForeignKey(
        MemberProfile, on_delete=models.CASCADE, related_name="+", verbose_name=_("member")
    )

    class Meta:
        verbose_name = _("incident member")
        verbose_name_plural = _("incident members")
        constraints = [
            models.UniqueConstraint(fields=["incident", "member"], name="incident_member_once")
        ]


class UpdateStatus(models.TextChoices):
    """The stage an incident update announces (Statuspage's vocabulary)."""

    INVESTIGATING = "investigating", _("Investigating")
    IDENTIFIED = "identified", _("Identified")
    MONITORING = "monitoring", _("Monitoring")
    RESOLVED = "resolved", _("Resolved")
    SCHEDULED = "scheduled", _("Scheduled")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETED = "completed", _("Completed")


class IncidentUpdate(models.Model):
    """A public update staff post on an incident: shown in order on its page,
    in the Atom feed, and sent to members subscribed to status notices.
    Public text only: never member data."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="updates", verbose_name=_("incident")
    )
    status = models.CharField(_("stage"), max_length=16, choices=UpdateStatus.choices)
    message_zh = models.TextField(_("message (Chinese)"), max_length=4000)
    message_en = models.TextField(_("message (English)"), max_length=4000)
    posted_at = models.DateTimeField(_("posted at"), editable=False)
    posted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("posted by"),
    )

    class Meta:
        verbose_name = _("incident update")
        verbose_name_plural = _("incident updates")
        ordering = ["posted_at", "pk"]
        indexes = [models.Index(fields=["incident", "posted_at"])]

    def __str__(self) -> str:
        return f"{self.get_status_display()} · {self.posted_at:%Y-%m-%d %H:%M}"

    @property
    def message(self) -> str:
        return self.message_en if translation.get_language() == "en" else self.message_zh
