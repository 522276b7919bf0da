import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from members.models import MemberProfile

GENESIS_HASH = "0" * 64


class Node(models.Model):
    """A service node members connect to; it reports heartbeats with its token."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(
        _("name"),
        max_length=64,
        unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")],
        help_text=_("Letters, digits, dot, dash and underscore, e.g. sh-node-01."),
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    # Only a SHA-256 of the token is stored: a database leak reveals no token.
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(_("token prefix"), max_length=16, editable=False)
    token_rotated_at = models.DateTimeField(_("token issued at"), null=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("service node")
        verbose_name_plural = _("service nodes")
        ordering = ["name"]
        # A token is the node's identity: whoever can issue one can forge
        # heartbeats (and so credits). Operators only.
        permissions = [("rotate_node_token", _("Can rotate or revoke node tokens"))]

    def __str__(self) -> str:
        return self.name

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


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
    change_note = models.CharField(_("what changed and why"), max_length=300, blank=True)
    published_at = models.DateTimeField(_("published at"), editable=False)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        verbose_name = _("compensation policy")
        verbose_name_plural = _("compensation policies")
        ordering = ["-version"]

    def __str__(self) -> str:
        return _("Policy v%(version)s") % {"version": self.version}


class IncidentKind(models.TextChoices):
    NODE_SILENT = "node_silent", _("Node outage (detected)")
    MASS_DROP = "mass_drop", _("Mass disconnect (detected)")
    OUTAGE = "outage", _("Outage (declared)")
    MAINTENANCE = "maintenance", _("Maintenance (declared)")


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

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
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
        Node, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
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
        return self.kind in (IncidentKind.OUTAGE, IncidentKind.MAINTENANCE)

    @property
    def title(self) -> str:
        return self.title_en if translation.get_language() == "en" else self.title_zh

    @property
    def description(self) -> str:
        return self.description_en if translation.get_language() == "en" else self.description_zh


class IncidentMember(models.Model):
    """A member affected by an incident (snapshot taken when it was detected,
    or computed at payout for declared ones)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="affected")
    member = models.ForeignKey(MemberProfile, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["incident", "member"], name="incident_member_once")
        ]


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

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    member = models.ForeignKey(MemberProfile, on_delete=models.CASCADE, related_name="disconnects")
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="disconnects")
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


class SourceKind(models.TextChoices):
    DISCONNECT = "disconnect", _("Own disconnect")
    INCIDENT = "incident", _("Incident")
    APPEAL = "appeal", _("Approved appeal")
    MANUAL = "manual", _("Staff adjustment")


class LedgerKind(models.TextChoices):
    CREDIT = "credit", _("Credit")
    REVERSAL = "reversal", _("Reversal")
    ADJUSTMENT = "adjustment", _("Staff adjustment")


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
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    member = models.ForeignKey(MemberProfile, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(_("kind"), max_length=16, choices=LedgerKind.choices)
    minutes = models.IntegerField(_("minutes"))
    source_kind = models.CharField(_("source"), max_length=16, choices=SourceKind.choices)
    source_ref = models.CharField(_("source reference"), max_length=64)
    covered_start = models.DateTimeField(_("covered from"), null=True, blank=True)
    covered_end = models.DateTimeField(_("covered until"), null=True, blank=True)
    policy_version = models.PositiveIntegerField(_("policy version"))
    reverses = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by"
    )
    expires_before = models.DateTimeField(_("expiry before"), null=True)
    expires_after = models.DateTimeField(_("expiry after"), null=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"))
    body_digest = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-seq"]
        permissions = [("reverse_ledgerentry", _("Can reverse ledger entries"))]
        indexes = [models.Index(fields=["member", "-seq"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.minutes:+d} min"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Ledger rows are append-only: write a reversal entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Ledger rows are append-only: write a reversal entry instead.")


class CoveredSpan(models.Model):
    """Lost time already accounted for a member: the union rule reads these."""

    member = models.ForeignKey(MemberProfile, on_delete=models.CASCADE, related_name="+")
    entry = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, null=True, related_name="spans"
    )
    claim = models.ForeignKey("Claim", on_delete=models.PROTECT, related_name="spans")
    start = models.DateTimeField()
    end = models.DateTimeField()

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["member", "start"])]


class LedgerHead(models.Model):
    """Singleton row locked to extend the chain one writer at a time."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)


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

    idempotency_key = models.CharField(max_length=200, unique=True)
    member = models.ForeignKey(MemberProfile, on_delete=models.CASCADE, related_name="claims")
    source_kind = models.CharField(_("source"), max_length=16, choices=SourceKind.choices)
    source_ref = models.CharField(_("source reference"), max_length=64)
    requested = models.JSONField(_("claimed intervals"), default=list)
    paid = models.JSONField(_("newly covered intervals"), default=list)
    lost_seconds = models.PositiveIntegerField(default=0)
    raw_minutes = models.PositiveIntegerField(default=0)
    event_capped_minutes = models.PositiveIntegerField(default=0)
    window_capped_minutes = models.PositiveIntegerField(default=0)
    credited_minutes = models.PositiveIntegerField(default=0)
    ratio = models.DecimalField(max_digits=4, decimal_places=2)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.CharField(max_length=200, blank=True)
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="+")
    entry = models.OneToOneField(
        LedgerEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="claim"
    )
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("compensation decision")
        verbose_name_plural = _("compensation decisions")
        indexes = [
            models.Index(fields=["member", "created_at"]),
            models.Index(fields=["source_kind", "source_ref", "member"]),
        ]

    @property
    def withheld_minutes(self) -> int:
        return self.event_capped_minutes + self.window_capped_minutes


class Coupon(models.Model):
    """Granted for frequent disconnects under the policy's coupon rule."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    member = models.ForeignKey(MemberProfile, on_delete=models.CASCADE, related_name="coupons")
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

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
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


# --- Embedded heartbeat store (used when REDIS_URL is not set) --------------


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
from .alert_models import AlertLink  # noqa: E402, F401
