"""Members' usage profiles and the health of service nodes."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models import MemberProfile

from .nodes import Node


class UsageProfile(models.Model):
    """Active minutes per hour-of-week, per calendar week, over the policy's
    rolling window (see compensation/usage_weighting.py). Counts only, no
    trail of sessions; deleted with the member, included in their export.
    Written only by compensation.services.usage."""

    member = models.OneToOneField(
        MemberProfile,
        on_delete=models.CASCADE,
        related_name="usage_profile",
        verbose_name=_("member"),
    )
    weeks = models.JSONField(_("active minutes per hour-of-week, by week"), default=dict)
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        verbose_name = _("usage profile")
        verbose_name_plural = _("usage profiles")


class HealthState(models.TextChoices):
    LEARNING = "learning", _("Learning")
    HEALTHY = "healthy", _("Healthy")
    DEGRADED = "degraded", _("Degraded performance")
    FAILING = "failing", _("Failing")


class NodeHealth(models.Model):
    """The online health model of one node (compensation/health_model.py):
    its learned seasonal baselines, its current state and score, and the
    episode counter that makes notices go out once per degradation.
    Written only by compensation.services.health."""

    node = models.OneToOneField(
        Node,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="health",
        verbose_name=_("node"),
    )
    state = models.CharField(
        _("state"), max_length=16, choices=HealthState.choices, default=HealthState.LEARNING
    )
    score = models.FloatField(_("health score (0-100)"), default=100.0)
    since = models.DateTimeField(_("in this state since"), null=True)
    episode = models.PositiveIntegerField(_("degradation episodes"), default=0)
    notified_episode = models.PositiveIntegerField(default=0, verbose_name=_("notified episode"))
    model = models.JSONField(default=dict, verbose_name=_("model"))
    observed_at = models.DateTimeField(_("last observed at"), null=True)
    usage_sampled_until = models.DateTimeField(null=True, verbose_name=_("usage sampled until"))

    class Meta:
        verbose_name = _("node health")
        verbose_name_plural = _("node health")
