"""Forms and list filters of the appeal admin."""

import uuid

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.forms import MemberNumberField

from ..evidence import EvidenceError
from ..models import Appeal, ReasonTemplate, overdue_q
from ..services import AppealError, appeal_file

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
