"""The append-only, hash-chained ledger, the claims behind it, coupons and
staff adjustments of membership time."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import MemberProfile, Tier

from .disconnects import Outcome
from .policy import Policy

GENESIS_HASH = "0" * 64


class SourceKind(models.TextChoices):
    DISCONNECT = "disconnect", _("Own disconnect")
    INCIDENT = "incident", _("Incident")
    APPEAL = "appeal", _("Approved appeal")
    MANUAL = "manual", _("Staff adjustment")
    PLATFORM = "platform", _("Platform event")
    CARD_KEY = "card_key", _("Card key")
    OPENING = "opening", _("Opening balance")


class LedgerKind(models.TextChoices):
    CREDIT = "credit", _("Credit")
    REVERSAL = "reversal", _("Reversal")
    ADJUSTMENT = "adjustment", _("Staff adjustment")
    OPENING = "opening", _("Opening balance")
    PURCHASE = "purchase", _("Purchase")
    RENEWAL = "renewal", _("Renewal")
    CARD_KEY = "card_key", _("Card key redeemed")
    REFUND = "refund", _("Refund")
    TIER_CHANGE = "tier_change", _("Tier change")


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Ledger rows are append-only: write a reversal entry instead.")

    def delete(self):
        raise TypeError("Ledger rows are append-only: write a reversal entry instead.")


class LedgerEntry(models.Model):
    """One line of the append-only, hash-chained compensation ledger.

    ``hash = sha256(prev_hash + ":" + body_digest)`` where ``body_digest`` is
    the SHA-256 of the entry's canonical JSON; see compensation/ledger.py.
    """

    seq = models.PositiveBigIntegerField(_("sequence"), unique=True, editable=False)
    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    member = models.ForeignKey(
        MemberProfile, on_delete=models.PROTECT, related_name="ledger", verbose_name=_("member")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=LedgerKind.choices)
    minutes = models.IntegerField(_("minutes"))
    source_kind = models.CharField(_("source"), max_length=16, choices=SourceKind.choices)
    source_ref = models.CharField(_("source reference"), max_length=64)
    covered_start = models.DateTimeField(_("covered from"), null=True, blank=True)
    covered_end = models.DateTimeField(_("covered until"), null=True, blank=True)
    policy_version = models.PositiveIntegerField(_("policy version"))
    reverses = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversed_by",
        verbose_name=_("reverses"),
    )
    expires_before = models.DateTimeField(_("expiry before"), null=True)
    expires_after = models.DateTimeField(_("expiry after"), null=True)
    # The tier the entry leaves the member on (purchases, card keys, tier
    # changes); empty for entries that do not touch the tier. Hashed only
    # when set, so entries written before the field existed stay verifiable.
    tier = models.CharField(_("tier"), max_length=16, choices=Tier.choices, blank=True, default="")
    note = models.CharField(_("note"), max_length=300, blank=True)
    # Usage weighting applied (policy option): factor and the habitual hours
    # that explain it; hashed only when set, so older entries verify as before.
    weighting = models.JSONField(_("usage weighting"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"))
    body_digest = models.CharField(max_length=64, verbose_name=_("body digest"))
    prev_hash = models.CharField(max_length=64, verbose_name=_("previous hash"))
    hash = models.CharField(max_length=64, unique=True, verbose_name=_("hash"))

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-seq"]
        permissions = [("reverse_ledgerentry", _("Can reverse ledger entries"))]
        indexes = [models.Index(fields=["member", "-seq"])]

    def __str__(self) -> str:
        return _("#%(seq)s %(minutes)s min") % {"seq": self.seq, "minutes": f"{self.minutes:+d}"}

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Ledger rows are append-only: write a reversal entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Ledger rows are append-only: write a reversal entry instead.")


class CoveredSpan(models.Model):
    """Lost time already accounted for a member: the union rule reads these."""

    member = models.ForeignKey(
        MemberProfile, on_delete=models.CASCADE, related_name="+", verbose_name=_("member")
    )
    entry = models.ForeignKey(
        LedgerEntry,
        on_delete=models.PROTECT,
        null=True,
        related_name="spans",
        verbose_name=_("entry"),
    )
    claim = models.ForeignKey(
        "Claim", on_delete=models.PROTECT, related_name="spans", verbose_name=_("claim")
    )
    start = models.DateTimeField(verbose_name=_("start"))
    end = models.DateTimeField(verbose_name=_("end"))

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("covered span")
        verbose_name_plural = _("covered spans")
        indexes = [models.Index(fields=["member", "start"])]


class LedgerHead(models.Model):
    """Singleton row locked to extend the chain one writer at a time."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0, verbose_name=_("sequence"))
    hash = models.CharField(max_length=64, default=GENESIS_HASH, verbose_name=_("hash"))

    class Meta:
        verbose_name = _("ledger head")
        verbose_name_plural = _("ledger heads")


class LedgerCheckpoint(models.Model):
    """A published chain head: once public, a rewrite below it is detectable."""

    seq = models.PositiveBigIntegerField(_("sequence"))
    hash = models.CharField(_("head hash"), max_length=64)
    published_at = models.DateTimeField(_("published at"), unique=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("published ledger head")
        verbose_name_plural = _("published ledger heads")
        ordering = ["-published_at"]


class Claim(models.Model):
    """The idempotent record of one compensation decision (credited or not).

    Its unique key is what makes retried tasks, double clicks and concurrent
    approvals harmless: the second caller finds the first one's decision.
    """

    idempotency_key = models.CharField(
        max_length=200, unique=True, verbose_name=_("idempotency key")
    )
    member = models.ForeignKey(
        MemberProfile, on_delete=models.CASCADE, related_name="claims", verbose_name=_("member")
    )
    source_kind = models.CharField(_("source"), max_length=16, choices=SourceKind.choices)
    source_ref = models.CharField(_("source reference"), max_length=64)
    requested = models.JSONField(_("claimed intervals"), default=list)
    paid = models.JSONField(_("newly covered intervals"), default=list)
    lost_seconds = models.PositiveIntegerField(default=0, verbose_name=_("lost seconds"))
    raw_minutes = models.PositiveIntegerField(default=0, verbose_name=_("raw minutes"))
    event_capped_minutes = models.PositiveIntegerField(
        default=0, verbose_name=_("event capped minutes")
    )
    window_capped_minutes = models.PositiveIntegerField(
        default=0, verbose_name=_("window capped minutes")
    )
    credited_minutes = models.PositiveIntegerField(default=0, verbose_name=_("credited minutes"))
    ratio = models.DecimalField(max_digits=4, decimal_places=2, verbose_name=_("ratio"))
    outcome = models.CharField(max_length=16, choices=Outcome.choices, verbose_name=_("outcome"))
    reason = models.CharField(max_length=200, blank=True, verbose_name=_("reason"))
    policy = models.ForeignKey(
        Policy, on_delete=models.PROTECT, related_name="+", verbose_name=_("policy")
    )
    entry = models.OneToOneField(
        LedgerEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="claim",
        verbose_name=_("entry"),
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("compensation decision")
        verbose_name_plural = _("compensation decisions")
        indexes = [
            models.Index(fields=["member", "created_at"]),
            models.Index(fields=["source_kind", "source_ref", "member"]),
        ]

    def __str__(self) -> str:
        return _("compensation decision #%(id)s") % {"id": self.pk}

    @property
    def withheld_minutes(self) -> int:
        return self.event_capped_minutes + self.window_capped_minutes


class Coupon(models.Model):
    """Granted for frequent disconnects under the policy's coupon rule."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    member = models.ForeignKey(
        MemberProfile, on_delete=models.CASCADE, related_name="coupons", verbose_name=_("member")
    )
    code = models.CharField(_("code"), max_length=24, unique=True)
    value = models.DecimalField(_("value (CNY)"), max_digits=8, decimal_places=2)
    issued_at = models.DateTimeField(_("issued at"))
    expires_at = models.DateTimeField(_("expires at"))
    policy_version = models.PositiveIntegerField(_("policy version"))
    reason = models.CharField(_("reason"), max_length=200)
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return self.code


class AdjustmentKind(models.TextChoices):
    GOODWILL = "goodwill", _("Goodwill credit")
    CORRECTION = "correction", _("Correction")
    DEBIT = "debit", _("Debit of a mistaken credit")


class AdjustmentStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for a second supervisor")
    APPLIED = "applied", _("Applied")
    REJECTED = "rejected", _("Rejected")


class MembershipAdjustment(models.Model):
    """A staff change of a member's time: the only way staff move
    ``expires_at``. Applied through a ledger entry of kind ``adjustment``;
    above the reviewer limit it waits for a second supervisor."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    member = models.ForeignKey(
        MemberProfile,
        on_delete=models.PROTECT,
        related_name="adjustments",
        verbose_name=_("member"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=AdjustmentKind.choices)
    # Signed: positive adds time, negative takes it away (debits).
    minutes = models.IntegerField(_("minutes"))
    reason = models.CharField(_("reason"), max_length=300)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=AdjustmentStatus.choices,
        default=AdjustmentStatus.PENDING,
        editable=False,
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested at"), editable=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("approved or rejected by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True, editable=False)
    decision_note = models.CharField(_("decision note"), max_length=300, blank=True)
    entry = models.OneToOneField(
        LedgerEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="adjustment",
        editable=False,
        verbose_name=_("ledger entry"),
    )

    class Meta:
        verbose_name = _("membership time adjustment")
        verbose_name_plural = _("membership time adjustments")
        ordering = ["-requested_at"]
        permissions = [
            (
                "approve_membershipadjustment",
                _("Can approve adjustments above the reviewer limit (second person)"),
            )
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(minutes=0), name="adjustment_moves_time"),
        ]

    def __str__(self) -> str:
        return f"{self.minutes:+d} min · {self.member_id}"
