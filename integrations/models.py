"""The event outbox, outbound webhooks and integration tokens.

Every event is written in the transaction of its cause (a ledger entry, an
appeal decision, an incident opening or resolving), so there is an event if
and only if the cause committed. The feed reads events in ``id`` order; ids
are allocated under the event head lock (``EventHead``) and so commit in
order too: a pull consumer never skips an event that commits late.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    MEMBERSHIP_CREDITED = "membership.credited", "membership.credited"
    MEMBERSHIP_PURCHASED = "membership.purchased", "membership.purchased"
    MEMBERSHIP_DEBITED = "membership.debited", "membership.debited"
    APPEAL_DECIDED = "appeal.decided", "appeal.decided"
    INCIDENT_OPENED = "incident.opened", "incident.opened"
    INCIDENT_RESOLVED = "incident.resolved", "incident.resolved"
    LEDGER_CHECKPOINT = "ledger.checkpoint", "ledger.checkpoint"


class EventHead(models.Model):
    """Singleton row locked by every transaction that records events, so
    event ids commit in the order they were allocated."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)

    class Meta:
        verbose_name = _("event sequence")
        verbose_name_plural = _("event sequence")


class Event(models.Model):
    """One thing that happened, as integrators see it (docs/integration.md)."""

    id = models.BigAutoField(primary_key=True)
    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    type = models.CharField(_("type"), max_length=32, choices=EventType.choices)
    # What caused it, unique: a cause is recorded once whatever repeats.
    cause = models.CharField(_("cause"), max_length=100, unique=True)
    member_no = models.CharField(_("member number"), max_length=10, blank=True)
    data = models.JSONField(_("data"))
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("integration event")
        verbose_name_plural = _("integration events")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"#{self.id} {self.type}"


class WebhookEndpoint(models.Model):
    """A receiver registered by an operator. The signing secret is stored (HMAC
    needs it) but shown only once, when it is issued."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = models.JSONField(_("events wanted"), default=list)
    secret = models.CharField(max_length=100, editable=False, verbose_name=_("secret"))
    secret_prefix = models.CharField(_("secret prefix"), max_length=16, editable=False)
    enabled = models.BooleanField(_("enabled"), default=True, editable=False)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True, editable=False)
    disabled_reason = models.CharField(
        _("why disabled"), max_length=200, blank=True, editable=False
    )
    # Since the first failure after the last success; cleared by a success.
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True, editable=False)
    consecutive_failures = models.PositiveIntegerField(
        _("failed attempts in a row"), default=0, editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), editable=False)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["url"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SENDING = "sending", _("Being sent")
    SUCCEEDED = "succeeded", _("Delivered")
    FAILED = "failed", _("Failed (retries used up)")


class WebhookDelivery(models.Model):
    """One event for one endpoint: sent until it succeeds or its attempts run
    out. Unique per (endpoint, event): an event is never queued twice."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("endpoint"),
    )
    event = models.ForeignKey(
        Event, on_delete=models.PROTECT, related_name="deliveries", verbose_name=_("event")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("claimed at"))
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    last_status_code = models.PositiveIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        permissions = [("redeliver_webhookdelivery", _("Can send webhook deliveries again"))]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="one_delivery_per_event")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id}"


class DeliveryAttempt(models.Model):
    """The log: one row per HTTP attempt, kept whatever its outcome."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="log", verbose_name=_("delivery")
    )
    number = models.PositiveIntegerField(_("attempt"))
    started_at = models.DateTimeField(_("started at"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    status_code = models.PositiveIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    response_excerpt = models.CharField(_("response (start)"), max_length=500, blank=True)
    succeeded = models.BooleanField(_("succeeded"))

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["delivery_id", "number"]


class IntegrationToken(models.Model):
    """A read credential for the event feed (billing, CRM, data warehouse).
    Issued by operators, shown once, stored as a SHA-256 hash."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    name = models.CharField(_("name"), max_length=64, unique=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    token_hash = models.CharField(
        max_length=64, unique=True, editable=False, verbose_name=_("token hash")
    )
    token_prefix = models.CharField(_("token prefix"), max_length=16, editable=False)
    created_at = models.DateTimeField(_("created at"), editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("integration token")
        verbose_name_plural = _("integration tokens")
        ordering = ["name"]
        permissions = [("revoke_integrationtoken", _("Can revoke integration tokens"))]

    def __str__(self) -> str:
        return self.name
