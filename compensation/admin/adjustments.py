"""Staff adjustments of membership time (through the ledger)."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.forms import MemberNumberField

from ..models import (
    AdjustmentKind,
    AdjustmentStatus,
    MembershipAdjustment,
)
from ..services.adjustments import (
    APPROVE_PERMISSION,
    REQUEST_PERMISSION,
    AdjustmentError,
    membership_adjust,
    membership_adjustment_approve,
    membership_adjustment_reject,
)


class AdjustmentForm(forms.ModelForm):
    """A supervisor asks for a change of a member's time, with a reason.

    The adjustment is made by ``membership_adjust`` while the form is
    cleaned (inside the admin's transaction), so whatever the service
    refuses comes back as a form error with the typed input kept; the row
    lives on this form, never on the shared ModelAdmin."""

    actor = None  # the staff user, bound by MembershipAdjustmentAdmin.get_form
    adjustment: MembershipAdjustment | None = None

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

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            self.adjustment = membership_adjust(
                member=self.member,
                kind=data["kind"],
                minutes=data["minutes"],
                reason=data.get("reason", ""),
                actor=self.actor,
                now=timezone.now(),
            )
        except AdjustmentError as exc:
            field = {"reason_required": "reason", "nothing_to_debit": "kind"}.get(exc.code)
            self.add_error(field, exc.message)
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
            form = super().get_form(request, obj, **kwargs)
            # Bind the acting staff user to this request's form class only.
            return type(form.__name__, (form,), {"actor": request.user})
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
        # Made by membership_adjust while the form was cleaned.
        adjustment = form.adjustment
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
