"""The reviewer's decision panel, the one place an appeal is decided: approve
with the suggested or an edited credit, reject, or ask the member for more,
each with a reason the member reads. ``apply_decision`` only translates
into the appeal workflow services (which refuse a decision without a reason
and pay once, whatever the clicks)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import Appeal, ReasonTemplate
from ..services import (
    AppealError,
    appeal_approve,
    appeal_credit_bound,
    appeal_reject,
    appeal_request_info,
    appeal_staff_message,
    appeal_suggestion,
)

DECIDE_PERMISSION = "appeals.decide_appeal"


def apply_decision(
    request: HttpRequest,
    appeal: Appeal,
    *,
    decision: str,
    minutes: int | None = None,
    message: str = "",
    reason_template: ReasonTemplate | None = None,
) -> bool:
    """Run one staff action on ``appeal``; report the outcome as a message."""
    if not request.user.has_perm(DECIDE_PERMISSION):
        messages.error(request, _("You may not decide appeals."))
        return False
    if reason_template is not None:
        message = f"{reason_template.text(appeal.member.language)}\n{message}".strip()
    now = timezone.now()
    staff = request.user
    try:
        if decision == "request_info":
            appeal_request_info(appeal=appeal, staff=staff, message=message, now=now)
        elif decision == "message":
            appeal_staff_message(appeal=appeal, staff=staff, message=message, now=now)
        elif decision == "approve":
            # Less than the unpaid claim is "partly approved": the service decides.
            appeal = appeal_approve(
                appeal=appeal, staff=staff, minutes=minutes, reason=message, now=now
            )
        elif decision == "reject":
            appeal_reject(appeal=appeal, staff=staff, reason=message, now=now)
        else:
            return False
    except AppealError as exc:
        messages.error(request, exc.message)
        return False
    return True


DECISIONS = [
    ("approve", gettext_lazy("Approve and credit")),
    ("reject", gettext_lazy("Reject")),
    ("request_info", gettext_lazy("Ask the member for more")),
    # Not a decision: a note on the member's timeline, the appeal stays open.
    ("message", gettext_lazy("Send the member a message")),
]


class PanelForm(forms.Form):
    decision = forms.ChoiceField(choices=DECISIONS)
    minutes = forms.IntegerField(min_value=0, max_value=100_000, required=False)
    reason_template = forms.ModelChoiceField(
        queryset=ReasonTemplate.objects.filter(active=True), required=False
    )
    message = forms.CharField(max_length=5000, required=False)

    def clean(self):
        data = super().clean()
        if not (data.get("message") or "").strip() and not data.get("reason_template"):
            # The services refuse it too; said here before anything is tried.
            self.add_error("message", _("Every decision needs a reason the member can read."))
        return data


def decide_view(request: HttpRequest, object_id: str) -> HttpResponse:
    """POST from the panel (CSRF-checked by the middleware; wrapped by the
    admin site: staff with two-factor). Deciding needs decide_appeal."""
    if not request.user.has_perm(DECIDE_PERMISSION):
        raise PermissionDenied
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    appeal = get_object_or_404(Appeal.objects.select_related("member"), pk=object_id)
    form = PanelForm(request.POST)
    if not form.is_valid():
        errors = form.errors.get("message") or [
            _("The decision could not be read; nothing was changed.")
        ]
        for error in errors:
            messages.error(request, error)
    else:
        data = form.cleaned_data
        done = apply_decision(
            request,
            appeal,
            decision=data["decision"],
            minutes=data["minutes"],
            message=data["message"],
            reason_template=data["reason_template"],
        )
        if done:
            appeal.refresh_from_db()
            messages.success(
                request,
                _("Appeal #%(id)s: %(status)s.")
                % {"id": appeal.short_id, "status": appeal.get_status_display()},
            )
    return redirect("admin:appeals_appeal_change", object_id=appeal.pk)


def panel_context(request: HttpRequest, appeal: Appeal) -> dict:
    """What the panel shows: the claim, the suggestion with what it rests
    on, and the bound."""
    now = timezone.now()
    claimed = int((appeal.claimed_end - appeal.claimed_start).total_seconds() + 59) // 60
    can_decide = appeal.is_open and request.user.has_perm(DECIDE_PERMISSION)
    suggestion = appeal_suggestion(appeal=appeal, now=now) if appeal.is_open else None
    return {
        "panel_appeal": appeal,
        "claimed_minutes": claimed,
        "can_decide": can_decide,
        "suggestion": suggestion,
        "decisions": DECISIONS,
        "bound_minutes": appeal_credit_bound(appeal=appeal, now=now) if can_decide else None,
        "reason_templates": ReasonTemplate.objects.filter(active=True),
        # One way to decide: the panel. The form below only shows the record.
        "show_save": False,
        "show_save_and_continue": False,
        "show_save_and_add_another": False,
        "show_delete": False,
    }
