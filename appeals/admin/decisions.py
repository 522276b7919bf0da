"""The reviewer's decision panel: approve / partly approve / reject at the
top of an appeal's page, one click for the suggested credit. The panel and
the form at the bottom of the page both go through ``apply_decision``, which
only translates into the appeal workflow services."""

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
    appeal_assign,
    appeal_credit_bound,
    appeal_reject,
    appeal_request_info,
    appeal_staff_message,
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
    if decision != "assign" and not request.user.has_perm(DECIDE_PERMISSION):
        messages.error(request, _("You may not decide appeals."))
        return False
    if reason_template is not None:
        message = f"{reason_template.text(appeal.member.language)}\n{message}".strip()
    now = timezone.now()
    staff = request.user
    try:
        if decision == "assign":
            appeal_assign(appeal=appeal, staff=staff, now=now)
        elif decision == "request_info":
            appeal_request_info(appeal=appeal, staff=staff, message=message, now=now)
        elif decision == "message":
            appeal_staff_message(appeal=appeal, staff=staff, message=message, now=now)
        elif decision in ("approve", "partly_approve"):
            appeal = appeal_approve(
                appeal=appeal,
                staff=staff,
                minutes=minutes,
                reason=message,
                now=now,
                partly=decision == "partly_approve",
            )
        elif decision == "reject":
            appeal_reject(appeal=appeal, staff=staff, reason=message, now=now)
        else:
            return False
    except AppealError as exc:
        messages.error(request, exc.message)
        return False
    return True


class PanelForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            ("approve", gettext_lazy("Approve")),
            ("partly_approve", gettext_lazy("Partly approve")),
            ("reject", gettext_lazy("Reject")),
        ]
    )
    minutes = forms.IntegerField(min_value=0, max_value=100_000, required=False)
    reason_template = forms.ModelChoiceField(
        queryset=ReasonTemplate.objects.filter(active=True), required=False
    )
    message = forms.CharField(max_length=5000, required=False)


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
        messages.error(request, _("The decision could not be read; nothing was changed."))
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
    """What the panel shows: the claim, the suggestion and the bound."""
    claimed = int((appeal.claimed_end - appeal.claimed_start).total_seconds() + 59) // 60
    can_decide = appeal.is_open and request.user.has_perm(DECIDE_PERMISSION)
    return {
        "panel_appeal": appeal,
        "claimed_minutes": claimed,
        "can_decide": can_decide,
        "bound_minutes": appeal_credit_bound(appeal=appeal, now=timezone.now())
        if can_decide
        else None,
        "reason_templates": ReasonTemplate.objects.filter(active=True),
    }
