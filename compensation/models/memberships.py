"""Where membership time comes from: card keys (卡密) sold in batches, and
membership events posted by the platform's billing with its own token."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models import MemberProfile, Tier

from .ledger import LedgerEntry

MAX_BATCH_QUANTITY = 5000
MAX_KEY_DAYS = 3660


class CardKeyBatch(models.Model):
    """A batch of card keys an operator generates for sale. The keys exist
    in plain text only once: in the CSV downloaded when they are generated;
    the portal keeps their keyed hashes."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    name = models.CharField(_("name"), max_length=80, help_text=_("e.g. Taobao shop, March"))
    tier = models.CharField(_("tier"), max_length=16, choices=Tier.choices)
    days = models.PositiveIntegerField(
        _("days of membership"),
        validators=[MinValueValidator(1), MaxValueValidator(MAX_KEY_DAYS)],
    )
    quantity = models.PositiveIntegerField(
        _("quantity"), validators=[MinValueValidator(1), MaxValueValidator(MAX_BATCH_QUANTITY)]
    )
    valid_until = models.DateTimeField(
        _("redeemable until"), help_text=_("Keys not redeemed by then stop working.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), editable=False)
    # Set once, by the one download that generated the keys.
    downloaded_at = models.DateTimeField(
        _("keys downloaded at"), null=True, blank=True, editable=False
    )
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("card key batch")
        verbose_name_plural = _("card key batches")
        ordering = ["-created_at"]
        permissions = [
            ("download_cardkeybatch", _("Can generate and download card keys (once)")),
            ("void_cardkeybatch", _("Can void the unredeemed keys of a batch")),
        ]

    def __str__(self) -> str:
        return self.name


class CardKey(models.Model):
    """One card key, known only by its keyed hash (HMAC-SHA256 with
    CARD_KEY_PEPPER): a leaked table redeems nothing and cannot be
    brute-forced offline without the pepper."""

    batch = models.ForeignKey(
        CardKeyBatch, on_delete=models.PROTECT, related_name="keys", verbose_name=_("batch")
    )
    key_hash = models.CharField(
        max_length=64, unique=True, editable=False, verbose_name=_("key hash")
    )
    # The last four characters, so support can tell keys apart on the phone.
    hint = models.CharField(_("ends with"), max_length=4, editable=False)
    redeemed_by = models.ForeignKey(
        MemberProfile,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="card_keys",
        editable=False,
        verbose_name=_("redeemed by"),
    )
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True, editable=False)
    entry = models.OneToOneField(
        LedgerEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="card_key",
        editable=False,
        verbose_name=_("ledger entry"),
    )

    class Meta:
        verbose_name = _("card key")
        verbose_name_plural = _("card keys")

    def __str__(self) -> str:
        return f"…{self.hint}"


class Platform(models.Model):
    """A billing platform allowed to post membership events. Its token is
    stored as a SHA-256 like a node's; a platform token is refused on node
    endpoints and a node token here."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    name = models.CharField(
        _("name"),
        max_length=64,
        unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")],
        help_text=_("Letters, digits, dot, dash and underscore, e.g. shop-billing."),
    )
    token_hash = models.CharField(
        max_length=64, unique=True, editable=False, verbose_name=_("token hash")
    )
    token_prefix = models.CharField(_("token prefix"), max_length=16, editable=False)
    token_rotated_at = models.DateTimeField(_("token issued at"), null=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("billing platform")
        verbose_name_plural = _("billing platforms")
        ordering = ["name"]
        permissions = [("rotate_platform_token", _("Can rotate or revoke platform tokens"))]

    def __str__(self) -> str:
        return self.name


class EventKind(models.TextChoices):
    PURCHASE = "purchase", _("Purchase")
    RENEWAL = "renewal", _("Renewal")
    REFUND = "refund", _("Refund")
    TIER_CHANGE = "tier_change", _("Tier change")


class EventStatus(models.TextChoices):
    APPLIED = "applied", _("Applied")
    PENDING = "pending", _("Waiting for the purchase it refunds")
    SUPERSEDED = "superseded", _("Superseded by a later event")


class MembershipEvent(models.Model):
    """One accepted event from a platform, under the platform's idempotency
    key: a repeat of the key finds this row and answers its ``result``."""

    public_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("public ID")
    )
    platform = models.ForeignKey(
        Platform, on_delete=models.PROTECT, related_name="events", verbose_name=_("platform")
    )
    key = models.CharField(_("idempotency key"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=EventKind.choices)
    member = models.ForeignKey(
        MemberProfile,
        on_delete=models.PROTECT,
        related_name="membership_events",
        verbose_name=_("member"),
    )
    occurred_at = models.DateTimeField(_("event time"))
    days = models.IntegerField(_("days"), null=True, blank=True)
    tier = models.CharField(_("tier"), max_length=16, blank=True)
    refunds = models.CharField(_("refunds event"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=EventStatus.choices)
    # SHA-256 of the item as first posted: the same key with other content
    # is refused, not silently answered with the first result.
    payload_digest = models.CharField(max_length=64, verbose_name=_("payload digest"))
    entry = models.ForeignKey(
        LedgerEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("entry"),
    )
    result = models.JSONField(default=dict, verbose_name=_("result"))
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("membership event")
        verbose_name_plural = _("membership events")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "key"], name="membership_event_key"),
        ]
        indexes = [
            models.Index(fields=["platform", "refunds"]),
            models.Index(fields=["member", "occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.platform_id}:{self.key}"
