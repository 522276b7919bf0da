"""Disconnects: a member silent on a live node longer than the threshold."""

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models import MemberProfile

from .incidents import Incident
from .nodes import Node


class DisconnectStatus(models.TextChoices):
    OPEN = "open", _("Ongoing")
    CLOSED = "closed", _("Ended")
    UNRESOLVED = "unresolved", _("Never resumed")


class Outcome(models.TextChoices):
    PENDING = "pending", _("Being calculated")
    CREDITED = "credited", _("Credited")
    PARTLY_CAPPED = "partly_capped", _("Credited, partly capped")
    CAPPED = "capped", _("Capped")
    COVERED = "covered", _("Already compensated")
    NOT_ELIGIBLE = "not_eligible", _("Not eligible")


class Disconnect(models.Model):
    """A member's silence on a live node longer than the threshold."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    member = models.ForeignKey(
        MemberProfile,
        on_delete=models.CASCADE,
        related_name="disconnects",
        verbose_name=_("member"),
    )
    node = models.ForeignKey(
        Node, on_delete=models.PROTECT, related_name="disconnects", verbose_name=_("node")
    )
    session_id = models.CharField(_("session"), max_length=128)
    started_at = models.DateTimeField(_("last heartbeat before the gap"))
    ended_at = models.DateTimeField(_("first heartbeat after the gap"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=DisconnectStatus.choices, default=DisconnectStatus.OPEN
    )
    incident = models.ForeignKey(
        Incident,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="disconnects",
        verbose_name=_("incident"),
    )
    outcome = models.CharField(
        _("compensation"), max_length=16, choices=Outcome.choices, default=Outcome.PENDING
    )
    credited_minutes = models.PositiveIntegerField(_("credited minutes"), default=0)
    withheld_minutes = models.PositiveIntegerField(_("minutes withheld by caps"), default=0)
    outcome_reason = models.CharField(_("why"), max_length=200, blank=True)
    detected_at = models.DateTimeField(_("detected at"))

    class Meta:
        verbose_name = _("disconnect")
        verbose_name_plural = _("disconnects")
        ordering = ["-started_at"]
        constraints = [
            # The idempotency of detection: overlapping passes, replays and
            # retried tasks all land on this one row.
            models.UniqueConstraint(
                fields=["node", "member", "session_id", "started_at"], name="disconnect_once"
            ),
        ]
        indexes = [
            models.Index(fields=["member", "-started_at"]),
            models.Index(fields=["status", "node"]),
            models.Index(fields=["started_at"]),  # the operators' dashboard
        ]

    def __str__(self) -> str:
        return f"{self.member_id}@{self.node_id} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration(self):
        return (self.ended_at - self.started_at) if self.ended_at else None
