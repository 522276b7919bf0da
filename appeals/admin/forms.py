"""Forms and list filters of the appeal admin."""

import uuid

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.forms import MemberNumberField

from ..evidence import EvidenceError
from ..models import Appeal, overdue_q
from ..services import AppealError, appeal_file


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
