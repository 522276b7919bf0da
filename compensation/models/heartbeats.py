"""The embedded heartbeat store (used when REDIS_URL is not set)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .nodes import Node


class SessionState(models.Model):
    """Hot state of one member session on one node (embedded mode)."""

    class State(models.TextChoices):
        LIVE = "live"
        SILENT = "silent"
        ENDED = "ended"

    node = models.ForeignKey(
        Node, on_delete=models.CASCADE, related_name="+", verbose_name=_("node")
    )
    # "<member_no>|<session>"
    key = models.CharField(max_length=150, verbose_name=_("key"))
    last_seen = models.DateTimeField(verbose_name=_("last seen"))
    state = models.CharField(max_length=8, choices=State.choices, verbose_name=_("state"))

    class Meta:
        verbose_name = _("session state")
        verbose_name_plural = _("session states")
        constraints = [models.UniqueConstraint(fields=["node", "key"], name="session_state_once")]
        indexes = [models.Index(fields=["node", "state", "last_seen"])]


class NodeState(models.Model):
    """Watermark (latest event time) and last arrival of a node (embedded mode)."""

    node = models.OneToOneField(
        Node, on_delete=models.CASCADE, primary_key=True, related_name="+", verbose_name=_("node")
    )
    watermark = models.DateTimeField(null=True, verbose_name=_("watermark"))
    last_arrival = models.DateTimeField(null=True, verbose_name=_("last arrival"))

    class Meta:
        verbose_name = _("node state")
        verbose_name_plural = _("node states")


class PendingGap(models.Model):
    """A closed gap found at ingest, waiting for the detection pass (embedded mode)."""

    node = models.ForeignKey(
        Node, on_delete=models.CASCADE, related_name="+", verbose_name=_("node")
    )
    # empty for a node-wide gap
    key = models.CharField(max_length=150, blank=True, verbose_name=_("key"))
    start = models.DateTimeField(verbose_name=_("start"))
    end = models.DateTimeField(verbose_name=_("end"))

    class Meta:
        verbose_name = _("pending gap")
        verbose_name_plural = _("pending gaps")


# Alertmanager alerts and their incidents (in their own module).
