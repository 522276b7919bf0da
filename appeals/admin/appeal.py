"""The appeal's admin: the list reviewers work from and the appeal page
with the decision panel on top (decisions.py)."""

import uuid

from django.contrib import admin, messages
from django.db.models import CharField
from django.db.models.functions import Cast
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from compensation.templatetags.kamen import minutes_human
from members.deadlines import DUE, WINDOW, deadline_text

from ..models import OPEN_STATUSES, Appeal
from ..selectors import appeal_context_records
from ..services import appeal_assign
from .decisions import decide_view, panel_context
from .forms import AssignedFilter, OverdueFilter, StaffFilingForm


@admin.register(Appeal)
class AppealAdmin(admin.ModelAdmin):
    # Readable at 1366 px: short columns, the reply deadline as one cell
    # that says in words whether it is overdue.
    list_display = (
        "short_ref",
        "member_no",
        "status",
        "claimed",
        "suggested",
        "reply_due",
        "assigned_to",
        "age",
    )
    list_filter = ("status", OverdueFilter, AssignedFilter, "node")
    search_fields = ("member__member_no", "member__user__email")
    list_select_related = ("member__user", "assigned_to")
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
        "filing_deadline",
        "late_reason",
        "created_at",
        "reply_deadline",
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
                    ("created_at", "filing_deadline"),
                    "late_reason",
                )
            },
        ),
        (_("Service level"), {"fields": (("reply_deadline", "first_response_at"), "assigned_to")}),
        (_("Evidence"), {"fields": ("evidence_gallery",)}),
        (
            _("What the portal recorded around that time"),
            {"fields": ("records_around", "suggested_minutes")},
        ),
        (
            _("Decision"),
            {
                "fields": (
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
        # Everything on the page is read-only: decisions go through the panel.
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
        return format_html(
            '{}<br><small class="quiet">{}</small>', obj.member.member_no, obj.member.user.email
        )

    @admin.display(description=_("claimed"))
    def claimed(self, obj: Appeal) -> str:
        minutes = int((obj.claimed_end - obj.claimed_start).total_seconds() + 59) // 60
        return _("%(n)d min") % {"n": minutes}

    @admin.display(description=_("suggested"), ordering="suggested_minutes")
    def suggested(self, obj: Appeal) -> str:
        if obj.credited_minutes:
            return _("%(n)d min (credited %(c)d)") % {
                "n": obj.suggested_minutes,
                "c": obj.credited_minutes,
            }
        return _("%(n)d min") % {"n": obj.suggested_minutes}

    @admin.display(description=_("filing deadline"))
    def filing_deadline(self, obj: Appeal) -> str:
        return deadline_text(obj.deadline, kind=WINDOW).full

    @admin.display(description=_("first response due"))
    def reply_deadline(self, obj: Appeal) -> str:
        return self.reply_due(obj)

    @admin.display(description=_("reply due"), ordering="sla_due_at")
    def reply_due(self, obj: Appeal) -> str:
        """Words first; the icon (alt="") only repeats them: a tick for
        answered, an alert for overdue, a clock for still running."""
        now = timezone.now()
        if obj.first_response_at is not None:
            return format_html(
                '<span class="kamen-ok"><img src="{}" alt=""> {}</span>',
                static("admin/img/icon-yes.svg"),
                _("answered"),
            )
        if not obj.is_open:
            return "—"
        text = deadline_text(obj.sla_due_at, kind=DUE, now=now)
        if obj.is_overdue(now):
            return format_html(
                '<strong class="kamen-overdue"><img src="{}" alt=""> {}</strong>',
                static("admin/img/icon-alert.svg"),
                text.full,
            )
        return format_html(
            '<span class="kamen-due"><img src="{}" alt=""> {}</span>',
            static("admin/img/icon-clock.svg"),
            text.full,
        )

    @admin.display(description=_("age"), ordering="created_at")
    def age(self, obj: Appeal) -> str:
        return minutes_human(int((timezone.now() - obj.created_at).total_seconds() // 60))

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
        if not change:
            # Filed while the form was cleaned (StaffFilingForm.clean).
            obj.pk = form.filed.pk
            if form.filed_message:
                messages.warning(request, form.filed_message)
            return
        # A change form post decides nothing (the panel does); nothing to save.

    def get_urls(self):
        decide = self.admin_site.admin_view(decide_view)
        return [
            path("<path:object_id>/decide/", decide, name="appeals_appeal_decide"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if obj is not None:
            extra.update(panel_context(request, obj))
        return super().change_view(request, object_id, form_url, extra_context=extra)

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
