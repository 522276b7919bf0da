"""Operators' admin: nodes and their tokens, policy versions, incidents."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..models import (
    Incident,
    IncidentKind,
    IncidentStatus,
    Node,
    Policy,
)
from ..services.incidents import (
    INCIDENT_EDITABLE,
    incident_close,
    incident_declare,
    incident_update,
)
from ..services.nodes import node_create, node_revoke, node_rotate_token, node_update
from ..services.policy import POLICY_RULE_FIELDS, policy_current, policy_publish
from .status import post_update_link, updates_summary


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
            node_update(
                node=obj,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
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
            (IncidentKind.DEGRADED, IncidentKind.DEGRADED.label),
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
    list_display = (
        "title_zh",
        "kind",
        "status",
        "scope",
        "started_at",
        "ended_at",
        "payout_state",
        "updates_link",
    )
    list_filter = ("status", "kind", "scope", "payout_state")
    search_fields = ("title_zh", "title_en", "nodes__name")
    date_hierarchy = "started_at"
    filter_horizontal = ("nodes",)
    actions = ("close_now",)
    readonly_fields = ("public_updates",)

    @admin.display(description=_("public updates"))
    def updates_link(self, obj):
        return post_update_link(obj)

    @admin.display(description=_("public updates"))
    def public_updates(self, obj):
        return updates_summary(obj)

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
        incident_update(
            incident=obj,
            changes={field: data.get(field) for field in INCIDENT_EDITABLE if field in data},
            node_ids=[n.pk for n in data.get("nodes") or []],
            now=now,
        )

    def save_related(self, request, form, formsets, change):
        return  # nodes are set by the services above

    @admin.action(description=_("End now and compensate everyone affected"), permissions=["close"])
    def close_now(self, request, queryset):
        now = timezone.now()
        closed = 0
        for incident in queryset.filter(status=IncidentStatus.OPEN):
            incident_close(incident=incident, ended_at=incident.ended_at or now, now=now)
            closed += 1
        messages.success(request, _("Closed %(n)d incident(s); payouts started.") % {"n": closed})
