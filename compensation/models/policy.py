"""Versions of the published compensation policy."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Policy(models.Model):
    """One published version of the compensation policy. Rows are never
    changed: editing the policy publishes a new version, and every
    compensation records the version it was computed with."""

    version = models.PositiveIntegerField(_("version"), unique=True, editable=False)
    threshold_minutes = models.PositiveIntegerField(
        _("disconnect threshold (minutes)"),
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
    )
    ratio_own = models.DecimalField(
        _("ratio for own disconnects"),
        max_digits=4,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("10"))],
    )
    ratio_incident = models.DecimalField(
        _("default ratio for incidents"),
        max_digits=4,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("10"))],
    )
    cap_per_event_minutes = models.PositiveIntegerField(
        _("cap per event (minutes)"), default=24 * 60, validators=[MinValueValidator(1)]
    )
    cap_window_days = models.PositiveIntegerField(
        _("rolling cap window (days)"), default=30, validators=[MinValueValidator(1)]
    )
    cap_window_minutes = models.PositiveIntegerField(
        _("cap per rolling window (minutes)"),
        default=7 * 24 * 60,
        validators=[MinValueValidator(1)],
    )
    appeal_window_hours = models.PositiveIntegerField(
        _("appeal window (hours after the disconnect ends)"),
        default=24,
        validators=[MinValueValidator(1)],
    )
    coupon_min_disconnects = models.PositiveIntegerField(
        _("compensated disconnects that earn a coupon"),
        default=3,
        validators=[MinValueValidator(1)],
    )
    coupon_window_days = models.PositiveIntegerField(
        _("coupon window (days)"), default=7, validators=[MinValueValidator(1)]
    )
    coupon_value = models.DecimalField(
        _("coupon value (CNY)"), max_digits=8, decimal_places=2, default=Decimal("10.00")
    )
    coupon_valid_days = models.PositiveIntegerField(
        _("coupon validity (days)"), default=30, validators=[MinValueValidator(1)]
    )
    lapsed_extends_from_credit_time = models.BooleanField(
        _("lapsed memberships are extended from the time of crediting"),
        default=True,
        help_text=_(
            "When the membership already expired at crediting time, start the credited time "
            "from that moment instead of the old expiry."
        ),
    )
    sla_first_response_hours = models.PositiveIntegerField(
        _("first staff response SLA (hours)"), default=24, validators=[MinValueValidator(1)]
    )
    # Personalised compensation (DESIGN section 4 "personalisation only adds"):
    # a lost minute in the member's habitual hours weighs more, between 1.0
    # and the ceiling; see compensation/usage_weighting.py.
    usage_weighting = models.BooleanField(
        _("weight lost minutes by the member's usual hours"),
        default=False,
        help_text=_(
            "A lost minute counts up to the ceiling times more in the hours of the week the "
            "member usually uses the service; never less than the base ratio."
        ),
    )
    usage_weight_ceiling = models.DecimalField(
        _("usage weighting ceiling"),
        max_digits=3,
        decimal_places=2,
        default=Decimal("2.00"),
        validators=[MinValueValidator(Decimal("1")), MaxValueValidator(Decimal("5"))],
    )
    usage_window_days = models.PositiveIntegerField(
        _("usage profile window (days)"),
        default=28,
        validators=[MinValueValidator(7), MaxValueValidator(90)],
    )
    change_note = models.CharField(_("what changed and why"), max_length=300, blank=True)
    published_at = models.DateTimeField(_("published at"), editable=False)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name=_("published by"),
    )

    class Meta:
        verbose_name = _("compensation policy")
        verbose_name_plural = _("compensation policies")
        ordering = ["-version"]

    def __str__(self) -> str:
        return _("Policy v%(version)s") % {"version": self.version}

    def appeal_deadline(self, end: datetime) -> datetime:
        """The one home of the rule: appeals are open until the window after
        the disconnect (or claimed span) ends."""
        return end + timedelta(hours=self.appeal_window_hours)
