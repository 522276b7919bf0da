import uuid

from django import forms
from django.contrib import admin, messages
from django.db.models import CharField
from django.db.models.functions import Cast
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.forms import MemberNumberField

from .evidence import EvidenceError
from .models import OPEN_STATUSES, Appeal, ReasonTemplate, overdue_q
from .selectors import appeal_context_records
from .services import (
    AppealError,
    appeal_approve,
    appeal_assign,
    appeal_file,
    appeal_reject,
    appeal_request_info,
    appeal_staff_message,
)

ACTIONS = [
    ("", _("— no action, just look —")),
    ("assign", _("Assign to me")),
    ("request_info", _("Request information (message to the member)")),
    ("message", _("Send a message")),
    ("approve", _("Approve and credit")),
    ("partly_approve", _("Partly approve and credit")),
    ("reject", _("Reject")),
]


class DecisionForm(forms.ModelForm):
    """The staff workspace on an appeal's page: one action at a time, each
    calling the same service the rest of the portal uses."""

    decision = forms.ChoiceField(label=_("Action"), choices=ACTIONS, required=False)
    minutes = forms.IntegerField(
        label=_("Minutes to credit"),
        min_value=0,
        max_value=100_000,
        required=False,
        help_text=_("Leave empty to credit the suggested amount."),
    )
    reason_template = forms.ModelChoiceField(
        label=_("Reason template"),
        queryset=ReasonTemplate.objects.filter(active=True),
        required=False,
    )
    message = forms.CharField(
        label=_("Message or reason"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )

    class Meta:
        model = Appeal
        fields = []

    def clean(self):
        data = super().clean()
        decision = data.get("decision")
        if decision == "reject" and not (data.get("message") or data.get("reason_template")):
            self.add_error(
                "message", _("A rejection needs a reason: write one or pick a template.")
            )
        if decision in ("request_info", "message", "partly_approve") and not data.get("message"):
            self.add_error("message", _("Write the message."))
        return data


class StaffFilingForm(forms.ModelForm):
    """Staff open an appeal for a member (after the deadline with a reason).

    The appeal is filed by ``appeal_file`` while the form is cleaned, so
    everything the service refuses (outside the window without a reason, a
    file that is not an image, an open disconnect) comes back as a form
    error with the typed text kept, inside the admin's transaction. The
    filed appeal lives on this form, never on the shared ModelAdmin."""

    member_no = MemberNumberField()
    screenshot = forms.FileField(label=_("Screenshot (optional)"), required=False)

    actor = None  # the staff user, bound by AppealAdmin.get_form
    filed: Appeal | None = None
    filed_message: str = ""

    class Meta:
        model = Appeal
        fields = ["claimed_start", "claimed_end", "service", "description", "late_reason"]

    def _post_clean(self):
        # The appeal is built by appeal_file (in clean); the half-made
        # instance has no member yet.
        pass

    @property
    def member(self):
        return self.cleaned_data.get("member_no")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if data["claimed_end"] <= data["claimed_start"]:
            self.add_error("claimed_end", _("The end must be after the start."))
            return data
        upload = data.get("screenshot")
        try:
            self.filed = appeal_file(
                screenshots=[upload] if upload else [],
                logs=[],
                require_screenshot=False,
                member=self.member,
                actor=self.actor,
                claimed_start=data["claimed_start"],
                claimed_end=data["claimed_end"],
                description=data["description"],
                submission_token=uuid.uuid4(),
                now=timezone.now(),
                service=data.get("service", ""),
                late_reason=data.get("late_reason", ""),
            )
        except EvidenceError as exc:
            self.add_error("screenshot", exc.message)
        except AppealError as exc:
            existing = getattr(exc, "existing", None)
            if existing is None:
                field = "late_reason" if exc.code in _LATE_CODES else None
                self.add_error(field, exc.message)
            else:
                # One open appeal per span: send staff to the one there is.
                self.filed = existing
                self.filed_message = exc.message
        return data


# AppealError codes that a late reason answers.
_LATE_CODES = {"window_closed", "late_reason_required"}


class OverdueFilter(admin.SimpleListFilter):
    title = _("first response")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Overdue")), ("no", _("On time"))]

    def queryset(self, request, queryset):
        overdue = overdue_q(timezone.now())
        if self.value() == "yes":
            return queryset.filter(overdue)
        if self.value() == "no":
            return queryset.exclude(overdue)
        return queryset


class AssignedFilter(admin.SimpleListFilter):
    title = _("assigned")
    parameter_name = "assigned"

    def lookups(self, request, model_admin):
        return [("me", _("Assigned to me")), ("none", _("Unassigned"))]

    def queryset(self, request, queryset):
        if self.value() == "me":
            return queryset.filter(assigned_to=request.user)
        if self.value() == "none":
            return queryset.filter(assigned_to__isnull=True)
        return queryset


@admin.register(Appeal)
class AppealAdmin(admin.ModelAdmin):
    list_display = (
        "short_ref",
        "member_no",
        "status",
        "age",
        "sla_due_at",
        "overdue",
        "assigned_to",
        "node",
        "created_at",
    )
    list_filter = ("status", OverdueFilter, AssignedFilter, "node")
    search_fields = ("member__member_no", "member__user__email")
    list_select_related = ("member__user", "node", "assigned_to")
    list_per_page = 50
    ordering = ("-created_at",)
    actions = ("assign_to_me",)

    def has_assign_permission(self, request) -> bool:
        return request.user.has_perm("appeals.change_appeal")

    readonly_fields = (
        "short_ref",
        "member_no",
        "status",
        "claimed_start",
        "claimed_end",
        "node",
        "service",
        "description",
        "deadline",
        "late_reason",
        "created_at",
        "sla_due_at",
        "first_response_at",
        "assigned_to",
        "suggested_minutes",
        "credited_minutes",
        "decided_at",
        "decided_by",
        "decision_reason",
        "escalated_at",
        "evidence_gallery",
        "records_around",
        "timeline",
    )
    fieldsets = (
        (
            _("Claim"),
            {
                "fields": (
                    "short_ref",
                    "member_no",
                    "status",
                    ("claimed_start", "claimed_end"),
                    ("node", "service"),
                    "description",
                    ("created_at", "deadline"),
                    "late_reason",
                )
            },
        ),
        (_("Service level"), {"fields": (("sla_due_at", "first_response_at"), "assigned_to")}),
        (_("Evidence"), {"fields": ("evidence_gallery",)}),
        (
            _("What the portal recorded around that time"),
            {"fields": ("records_around", "suggested_minutes")},
        ),
        (
            _("Decision"),
            {
                "fields": (
                    "decision",
                    "minutes",
                    "reason_template",
                    "message",
                    "credited_minutes",
                    ("decided_at", "decided_by"),
                    "decision_reason",
                    "escalated_at",
                )
            },
        ),
        (_("Timeline"), {"fields": ("timeline",)}),
    )

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = StaffFilingForm
            kwargs["fields"] = [
                "claimed_start",
                "claimed_end",
                "service",
                "description",
                "late_reason",
            ]
            form = super().get_form(request, obj, **kwargs)
            # Bind the acting staff user to this request's form class only.
            return type(form.__name__, (form,), {"actor": request.user})
        kwargs["form"] = DecisionForm
        kwargs["fields"] = []
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return (
                (
                    None,
                    {
                        "fields": (
                            "member_no",
                            "claimed_start",
                            "claimed_end",
                            "service",
                            "description",
                            "late_reason",
                            "screenshot",
                        )
                    },
                ),
            )
        return self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if 6 <= len(term) <= 36 and all(c in "0123456789abcdefABCDEF-" for c in term):
            # An appeal id (or its first characters, as shown to members).
            try:
                return queryset.filter(public_id=uuid.UUID(term)), False
            except ValueError:
                prefix = term.lower().replace("-", "")[:8]
                matches = queryset.annotate(pid=Cast("public_id", CharField()))
                return matches.filter(pid__startswith=prefix), False
        return super().get_search_results(request, queryset, search_term)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm("appeals.file_late_appeal")

    @admin.display(description=_("appeal"), ordering="created_at")
    def short_ref(self, obj: Appeal) -> str:
        return f"#{obj.short_id}"

    @admin.display(description=_("member"), ordering="member__member_no")
    def member_no(self, obj: Appeal) -> str:
        return f"{obj.member.member_no} · {obj.member.user.email}"

    @admin.display(description=_("age"))
    def age(self, obj: Appeal) -> str:
        hours = int((timezone.now() - obj.created_at).total_seconds() // 3600)
        return f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h"

    @admin.display(description=_("overdue"), boolean=True)
    def overdue(self, obj: Appeal) -> bool:
        return obj.is_overdue(timezone.now())

    @admin.display(description=_("evidence"))
    def evidence_gallery(self, obj: Appeal) -> str:
        return render_to_string(
            "admin/appeals/evidence_gallery.html", {"appeal": obj, "items": obj.evidence.all()}
        )

    @admin.display(description=_("records"))
    def records_around(self, obj: Appeal) -> str:
        disconnects, entries = appeal_context_records(appeal=obj)
        return render_to_string(
            "admin/appeals/records.html", {"disconnects": disconnects, "entries": entries}
        )

    @admin.display(description=_("timeline"))
    def timeline(self, obj: Appeal) -> str:
        events = obj.events.select_related("actor").order_by("created_at", "pk")
        return render_to_string("admin/appeals/timeline.html", {"events": events})

    def save_model(self, request, obj, form, change):
        now = timezone.now()
        if not change:
            # Filed while the form was cleaned (StaffFilingForm.clean).
            obj.pk = form.filed.pk
            if form.filed_message:
                messages.warning(request, form.filed_message)
            return
        data = form.cleaned_data
        decision = data.get("decision")
        if not decision:
            return
        if decision != "assign" and not request.user.has_perm("appeals.decide_appeal"):
            messages.error(request, _("You may not decide appeals."))
            return
        message = data.get("message") or ""
        if data.get("reason_template"):
            template_text = data["reason_template"].text(obj.member.language)
            message = f"{template_text}\n{message}".strip()
        try:
            if decision == "assign":
                appeal_assign(appeal=obj, staff=request.user, now=now)
            elif decision == "request_info":
                appeal_request_info(appeal=obj, staff=request.user, message=message, now=now)
            elif decision == "message":
                appeal_staff_message(appeal=obj, staff=request.user, message=message, now=now)
            elif decision in ("approve", "partly_approve"):
                appeal_approve(
                    appeal=obj,
                    staff=request.user,
                    minutes=data.get("minutes"),
                    reason=message,
                    now=now,
                    partly=decision == "partly_approve",
                )
            elif decision == "reject":
                appeal_reject(appeal=obj, staff=request.user, reason=message, now=now)
        except AppealError as exc:
            messages.error(request, exc.message)

    def save_related(self, request, form, formsets, change):
        return

    @admin.action(description=_("Assign to me"), permissions=["assign"])
    def assign_to_me(self, request, queryset):
        now = timezone.now()
        done = 0
        for appeal in queryset.filter(status__in=OPEN_STATUSES):
            appeal_assign(appeal=appeal, staff=request.user, now=now)
            done += 1
        messages.success(request, _("Assigned %(n)d appeal(s) to you.") % {"n": done})


@admin.register(ReasonTemplate)
class ReasonTemplateAdmin(admin.ModelAdmin):
    list_display = ("title", "active")
    list_filter = ("active",)
