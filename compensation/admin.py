from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.forms import MemberNumberField

from .models import (
    AdjustmentKind,
    AdjustmentStatus,
    Claim,
    Coupon,
    Disconnect,
    Incident,
    IncidentKind,
    IncidentStatus,
    LedgerCheckpoint,
    LedgerEntry,
    MembershipAdjustment,
    Node,
    Policy,
)
from .services.adjustments import (
    APPROVE_PERMISSION,
    REQUEST_PERMISSION,
    AdjustmentError,
    membership_adjust,
    membership_adjustment_approve,
    membership_adjustment_reject,
)
from .services.credit import ledger_reverse
from .services.incidents import incident_close, incident_declare
from .services.nodes import node_create, node_revoke, node_rotate_token
from .services.policy import POLICY_RULE_FIELDS, policy_current, policy_publish


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class NodeForm(forms.ModelForm):
    class Meta:
        model = Node
        fields = ["name", "description"]


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    form = NodeForm
    list_display = (
        "name",
        "description",
        "token_prefix",
        "token_rotated_at",
        "revoked_at",
        "created_at",
    )
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "description", "token_prefix")
    readonly_fields = ("token_prefix", "token_rotated_at", "revoked_at", "created_at")
    actions = ("rotate_tokens", "revoke_tokens")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # disconnects and incidents refer to nodes: revoke instead

    def has_token_permission(self, request) -> bool:
        # A token is the node's identity: issuing one lets its holder forge
        # heartbeats, so only operators rotate or revoke.
        return request.user.has_perm("compensation.rotate_node_token")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        node, token = node_create(
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            now=timezone.now(),
        )
        obj.pk = node.pk
        obj.refresh_from_db()
        messages.warning(
            request,
            _("Token for %(node)s (shown only now, store it on the node): %(token)s")
            % {"node": node.name, "token": token},
        )

    @admin.action(description=_("Rotate token (the old one stops working)"), permissions=["token"])
    def rotate_tokens(self, request, queryset):
        now = timezone.now()
        for node in queryset:
            token = node_rotate_token(node=node, now=now)
            messages.warning(
                request,
                _("New token for %(node)s (shown only now): %(token)s")
                % {"node": node.name, "token": token},
            )

    @admin.action(description=_("Revoke token"), permissions=["token"])
    def revoke_tokens(self, request, queryset):
        now = timezone.now()
        for node in queryset:
            node_revoke(node=node, now=now)
        messages.success(request, _("Revoked %(n)d node token(s).") % {"n": queryset.count()})


class PolicyForm(forms.ModelForm):
    class Meta:
        model = Policy
        fields = [*POLICY_RULE_FIELDS, "change_note"]


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    """Versions are immutable: "adding" publishes a new version that starts
    from the rules in force."""

    form = PolicyForm
    list_display = (
        "version",
        "threshold_minutes",
        "ratio_own",
        "ratio_incident",
        "cap_per_event_minutes",
        "cap_window_minutes",
        "appeal_window_hours",
        "published_at",
        "published_by",
        "change_note",
    )
    ordering = ("-version",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_changeform_initial_data(self, request):
        current = policy_current()
        return {field: getattr(current, field) for field in POLICY_RULE_FIELDS}

    def save_model(self, request, obj, form, change):
        changes = {field: form.cleaned_data[field] for field in POLICY_RULE_FIELDS}
        published = policy_publish(
            changes=changes,
            actor=request.user,
            note=form.cleaned_data.get("change_note", ""),
            now=timezone.now(),
        )
        obj.pk = published.pk
        obj.refresh_from_db()


class IncidentForm(forms.ModelForm):
    kind = forms.ChoiceField(
        choices=[
            (IncidentKind.OUTAGE, IncidentKind.OUTAGE.label),
            (IncidentKind.MAINTENANCE, IncidentKind.MAINTENANCE.label),
        ]
    )

    class Meta:
        model = Incident
        fields = [
            "kind",
            "scope",
            "nodes",
            "started_at",
            "ended_at",
            "ratio",
            "title_zh",
            "title_en",
            "description_zh",
            "description_en",
        ]

    def clean(self):
        data = super().clean()
        if data.get("scope") == "nodes" and not data.get("nodes"):
            self.add_error(
                "nodes", _("Choose the affected nodes, or set the scope to all members.")
            )
        return data


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    form = IncidentForm
    list_display = ("title_zh", "kind", "status", "scope", "started_at", "ended_at", "payout_state")
    list_filter = ("status", "kind", "scope", "payout_state")
    search_fields = ("title_zh", "title_en", "nodes__name")
    date_hierarchy = "started_at"
    filter_horizontal = ("nodes",)
    actions = ("close_now",)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_close_permission(self, request) -> bool:
        return request.user.has_perm("compensation.close_incident")

    def has_change_permission(self, request, obj=None) -> bool:
        # Detected incidents are facts; declared ones can be edited while open.
        if obj is not None and (not obj.is_declared or obj.status != IncidentStatus.OPEN):
            return False
        return super().has_change_permission(request, obj)

    @transaction.atomic
    def save_model(self, request, obj, form, change):
        now = timezone.now()
        data = form.cleaned_data
        if not change:
            incident = incident_declare(
                kind=data["kind"],
                scope=data["scope"],
                node_ids=[n.pk for n in data.get("nodes") or []],
                started_at=data["started_at"],
                ended_at=data.get("ended_at"),
                ratio=data.get("ratio"),
                title_zh=data["title_zh"],
                title_en=data["title_en"],
                description_zh=data.get("description_zh", ""),
                description_en=data.get("description_en", ""),
                actor=request.user,
                now=now,
            )
            obj.pk = incident.pk
            obj.refresh_from_db()
            return
        super().save_model(request, obj, form, change)
        if obj.ended_at is not None and obj.ended_at <= now:
            incident_close(incident=obj, ended_at=obj.ended_at, now=now)

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    @admin.action(description=_("End now and compensate everyone affected"), permissions=["close"])
    def close_now(self, request, queryset):
        now = timezone.now()
        closed = 0
        for incident in queryset.filter(status=IncidentStatus.OPEN):
            incident_close(incident=incident, ended_at=incident.ended_at or now, now=now)
            closed += 1
        messages.success(request, _("Closed %(n)d incident(s); payouts started.") % {"n": closed})


@admin.register(Disconnect)
class DisconnectAdmin(ReadOnlyAdmin):
    list_display = (
        "member",
        "node",
        "started_at",
        "ended_at",
        "status",
        "incident",
        "outcome",
        "credited_minutes",
        "withheld_minutes",
    )
    list_filter = ("status", "outcome", "node")
    search_fields = ("member__member_no", "member__user__email", "session_id")
    list_select_related = ("member", "node", "incident")
    date_hierarchy = "started_at"


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "seq",
        "member",
        "kind",
        "minutes",
        "source_kind",
        "policy_version",
        "created_at",
        "short_hash",
    )
    list_filter = ("kind", "source_kind", "policy_version")
    search_fields = ("member__member_no", "member__user__email", "source_ref", "hash")
    list_select_related = ("member",)
    actions = ("reverse_entries",)

    @admin.display(description=_("hash"))
    def short_hash(self, obj: LedgerEntry) -> str:
        return obj.hash[:12] + "…"

    def has_reverse_permission(self, request) -> bool:
        return request.user.has_perm("compensation.reverse_ledgerentry")

    @admin.action(description=_("Reverse (write a correcting entry)"), permissions=["reverse"])
    def reverse_entries(self, request, queryset):
        now = timezone.now()
        done = 0
        for entry in queryset.order_by("seq"):
            try:
                ledger_reverse(entry=entry, note=f"Reversed by {request.user.email}", now=now)
                done += 1
            except ValueError as exc:
                messages.error(request, f"#{entry.seq}: {exc}")
                continue
        if done:
            messages.success(request, _("Wrote %(n)d reversal entr(ies).") % {"n": done})


@admin.register(Claim)
class ClaimAdmin(ReadOnlyAdmin):
    list_display = (
        "idempotency_key",
        "member",
        "source_kind",
        "outcome",
        "credited_minutes",
        "created_at",
    )
    list_filter = ("outcome", "source_kind")
    search_fields = ("idempotency_key", "member__member_no", "source_ref")
    list_select_related = ("member",)


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = ("code", "member", "value", "issued_at", "expires_at", "redeemed_at")
    search_fields = ("code", "member__member_no")
    list_select_related = ("member",)


@admin.register(LedgerCheckpoint)
class LedgerCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("published_at", "seq", "hash")


class AdjustmentForm(forms.ModelForm):
    """A supervisor asks for a change of a member's time, with a reason."""

    member_no = MemberNumberField()
    minutes = forms.IntegerField(
        label=_("Minutes"),
        min_value=1,
        max_value=366 * 24 * 60,
        help_text=_(
            "How many minutes to add (goodwill, correction) or take away (debit). Above the "
            "reviewer limit a second supervisor must approve before the time moves."
        ),
    )

    class Meta:
        model = MembershipAdjustment
        fields = ["kind", "reason"]
        widgets = {"reason": forms.Textarea(attrs={"rows": 3})}

    @property
    def member(self):
        return self.cleaned_data.get("member_no")

    def clean_reason(self):
        reason = (self.cleaned_data.get("reason") or "").strip()
        if not reason:
            raise forms.ValidationError(_("Write why the time is adjusted."))
        return reason

    def clean(self):
        data = super().clean()
        member = self.member
        if data.get("kind") == AdjustmentKind.DEBIT and member and member.expires_at is None:
            self.add_error("kind", _("This member has no membership time to take away."))
        return data

    def _post_clean(self):
        # The row is built by membership_adjust, which applies the rules.
        pass


@admin.register(MembershipAdjustment)
class MembershipAdjustmentAdmin(admin.ModelAdmin):
    """Staff adjustments of membership time: requested here, applied through
    the ledger by the service; entries are never edited, only approved or
    rejected while pending."""

    list_display = (
        "requested_at",
        "member",
        "kind",
        "minutes",
        "status",
        "requested_by",
        "decided_by",
        "entry_seq",
        "reason",
    )
    list_filter = ("status", "kind")
    search_fields = ("member__member_no", "member__user__email", "reason")
    list_select_related = ("member", "requested_by", "decided_by", "entry")
    actions = ("approve_selected", "reject_selected")
    readonly_fields = (
        "member",
        "kind",
        "minutes",
        "reason",
        "status",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
        "decision_note",
        "entry_seq",
    )

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = AdjustmentForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["member_no", "kind", "minutes", "reason"]
        return list(self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("kind", AdjustmentKind.GOODWILL)
        return initial

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm(REQUEST_PERMISSION)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

    @admin.display(description=_("ledger entry"), ordering="entry__seq")
    def entry_seq(self, obj: MembershipAdjustment) -> str:
        return f"#{obj.entry.seq}" if obj.entry_id else "—"

    def save_model(self, request, obj, form, change):
        if change:
            return
        data = form.cleaned_data
        try:
            adjustment = membership_adjust(
                member=form.member,
                kind=data["kind"],
                minutes=data["minutes"],
                reason=data["reason"],
                actor=request.user,
                now=timezone.now(),
            )
        except AdjustmentError as exc:
            # Rules the form could not know (e.g. no time left to debit):
            # nothing was written; say why.
            request._adjustment_error = exc.message
            return
        obj.pk = adjustment.pk
        obj.refresh_from_db()
        if adjustment.status == AdjustmentStatus.PENDING:
            messages.warning(
                request,
                _(
                    "%(minutes)d minutes is above the reviewer limit: a second supervisor must "
                    "approve this adjustment before the time moves."
                )
                % {"minutes": abs(adjustment.minutes)},
            )

    def save_related(self, request, form, formsets, change):
        return

    def response_add(self, request, obj, post_url_continue=None):
        error = getattr(request, "_adjustment_error", None)
        if error:
            messages.error(request, error)

            return HttpResponseRedirect(request.path)
        return super().response_add(request, obj, post_url_continue)

    @admin.action(description=_("Approve (second supervisor)"), permissions=["approve"])
    def approve_selected(self, request, queryset):
        now = timezone.now()
        done = 0
        for adjustment in queryset.filter(status=AdjustmentStatus.PENDING).order_by("pk"):
            try:
                membership_adjustment_approve(adjustment=adjustment, approver=request.user, now=now)
                done += 1
            except AdjustmentError as exc:
                messages.error(request, f"{adjustment}: {exc.message}")
        if done:
            messages.success(request, _("Applied %(n)d adjustment(s).") % {"n": done})

    @admin.action(description=_("Reject (second supervisor)"), permissions=["approve"])
    def reject_selected(self, request, queryset):
        now = timezone.now()
        done = 0
        for adjustment in queryset.filter(status=AdjustmentStatus.PENDING).order_by("pk"):
            try:
                membership_adjustment_reject(
                    adjustment=adjustment,
                    approver=request.user,
                    now=now,
                    note=_("Rejected by %(email)s") % {"email": request.user.email},
                )
                done += 1
            except AdjustmentError as exc:
                messages.error(request, f"{adjustment}: {exc.message}")
        if done:
            messages.success(request, _("Rejected %(n)d adjustment(s).") % {"n": done})
