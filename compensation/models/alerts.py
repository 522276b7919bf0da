"""Alerts from the operators' monitoring (Prometheus Alertmanager) and the
incidents they opened. Part of ``compensation.models``; written only by
``compensation.services.incidents``."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class AlertLink(models.Model):
    """One firing of one Alertmanager alert (its fingerprint, the hash of its
    label set, and when it started) and the incident it opened or joined.
    Unique per firing: a repeated notification changes nothing."""

    fingerprint = models.CharField(_("alert fingerprint"), max_length=64)
    starts_at = models.DateTimeField(_("alert started at"))
    alertname = models.CharField(_("alert name"), max_length=200, blank=True)
    node = models.ForeignKey(
        "compensation.Node", on_delete=models.PROTECT, related_name="+", verbose_name=_("node")
    )
    incident = models.ForeignKey(
        "compensation.Incident",
        on_delete=models.PROTECT,
        related_name="alerts",
        verbose_name=_("incident"),
    )
    received_at = models.DateTimeField(_("received at"))
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("monitoring alert")
        verbose_name_plural = _("monitoring alerts")
        constraints = [
            models.UniqueConstraint(fields=["fingerprint", "starts_at"], name="alert_firing_once")
        ]
        indexes = [models.Index(fields=["fingerprint"])]

    def __str__(self) -> str:
        return f"{self.alertname or self.fingerprint} @ {self.starts_at:%Y-%m-%d %H:%M}"
