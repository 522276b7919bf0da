"""The embedded heartbeat store (used when REDIS_URL is not set)."""

from django.db import models

from .nodes import Node


class SessionState(models.Model):
    """Hot state of one member session on one node (embedded mode)."""

    class State(models.TextChoices):
        LIVE = "live"
        SILENT = "silent"
        ENDED = "ended"

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=150)  # "<member_no>|<session>"
    last_seen = models.DateTimeField()
    state = models.CharField(max_length=8, choices=State.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["node", "key"], name="session_state_once")]
        indexes = [models.Index(fields=["node", "state", "last_seen"])]


class NodeState(models.Model):
    """Watermark (latest event time) and last arrival of a node (embedded mode)."""

    node = models.OneToOneField(Node, on_delete=models.CASCADE, primary_key=True, related_name="+")
    watermark = models.DateTimeField(null=True)
    last_arrival = models.DateTimeField(null=True)


class PendingGap(models.Model):
    """A closed gap found at ingest, waiting for the detection pass (embedded mode)."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=150, blank=True)  # empty for a node-wide gap
    start = models.DateTimeField()
    end = models.DateTimeField()


# Alertmanager alerts and their incidents (in their own module).
