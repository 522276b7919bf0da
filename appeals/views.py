import functools
import io
import uuid
from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from PIL import Image

from compensation.models import Disconnect, DisconnectStatus
from compensation.services.policy import policy_current
from kamen_portal.http import declared_body_size
from kamen_portal.staff_gate import staff_session_allowed
from members.selectors import member_profile_or_404

from .bundle import build_bundle
from .evidence import MAX_REQUEST_BYTES, EvidenceError
from .forms import AppealForm, ReplyForm, SpanForm
from .models import AppealStatus, EventKind
from .selectors import appeal_for_viewer, member_appeals
from .services import (
    AppealError,
    appeal_can_escalate,
    appeal_check,
    appeal_escalate,
    appeal_file,
    appeal_reply,
    appeal_withdraw,
)


def limit_body(view):
    """Refuse oversized uploads from Content-Length, before reading them."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if request.method == "POST" and declared_body_size(request) > MAX_REQUEST_BYTES:
            response = render(
                request,
                "400.html",
                {
                    "message": _("The upload is too large: at most %(n)d MB per submission.")
                    % {"n": MAX_REQUEST_BYTES // (1024 * 1024)}
                },
                status=413,
            )
            return response
        return view(request, *args, **kwargs)

    return wrapper


def _viewer_appeal_or_404(request: HttpRequest, public_id):
    appeal = appeal_for_viewer(user=request.user, public_id=public_id)
    if appeal is None:
        raise Http404
    # Staff read other members' appeals and evidence only from a session that
    # passed the two-factor sign-in, like the admin (kamen_portal.staff_gate).
    if appeal.member.user_id != request.user.pk and not staff_session_allowed(request):
        raise Http404
    return appeal


@login_required
def appeal_list(request: HttpRequest) -> HttpResponse:
    member = member_profile_or_404(user=request.user)
    return render(request, "appeals/list.html", {"appeals": member_appeals(member=member)[:100]})


def _member_disconnect(member, disconnect_id: str | None):
    if not disconnect_id:
        return None
    try:
        return Disconnect.objects.select_related("node").get(
            public_id=uuid.UUID(disconnect_id), member=member
        )
    except (ValueError, Disconnect.DoesNotExist) as exc:
        raise Http404 from exc


def _span_value(value) -> str:
    """A span bound for the hidden inputs of step two: local, to the second."""
    return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M:%S") if value else ""


@login_required
@limit_body
def appeal_new(request: HttpRequest) -> HttpResponse:
    """The guided appeal. Step one (GET): which time; the page then shows what
    the portal recorded and credited for it and what an appeal could add, or
    the refusal filing would give (appeal_check), before any upload. Step
    two (POST): details and evidence, filed through appeal_file, which runs
    the same checks again."""
    member = member_profile_or_404(user=request.user)
    now = timezone.now()
    disconnect = _member_disconnect(
        member, request.POST.get("disconnect") or request.GET.get("disconnect")
    )
    span_initial = {
        "disconnect": disconnect.public_id if disconnect else None,
        "claimed_start": disconnect.started_at if disconnect else None,
        "claimed_end": disconnect.ended_at if disconnect else None,
    }
    span = SpanForm(request.GET if "claimed_end" in request.GET else None, initial=span_initial)
    # Details the recorded disconnect gives are not asked again; its span is
    # shown in step one (extendable). One that never resumed has no end: the
    # member must give it (that is the claim).
    fixed: tuple[str, ...] = ()
    if disconnect is not None:
        fixed = ("node", "service", "claimed_start")
        if disconnect.status != DisconnectStatus.UNRESOLVED:
            fixed = (*fixed, "claimed_end")
    form = AppealForm(
        request.POST or None,
        request.FILES or None,
        fixed=fixed,
        initial={"disconnect": span_initial["disconnect"], "submission_token": uuid.uuid4()},
    )
    start = end = None
    if request.method == "POST":
        if form.is_valid():
            start, end = (
                form.cleaned_data.get("claimed_start"),
                form.cleaned_data.get("claimed_end"),
            )
    elif span.is_bound:
        if span.is_valid():
            start, end = span.cleaned_data["claimed_start"], span.cleaned_data["claimed_end"]
    elif disconnect is not None:
        start, end = disconnect.started_at, disconnect.ended_at
    check = None
    if disconnect is not None or (start and end):
        check = appeal_check(
            member=member,
            actor=request.user,
            claimed_start=start,
            claimed_end=end,
            now=now,
            disconnect=disconnect,
        )

    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            appeal = appeal_file(
                screenshots=data["screenshots"],
                logs=data["logs"],
                member=member,
                actor=request.user,
                claimed_start=start,
                claimed_end=end,
                description=data["description"],
                submission_token=data["submission_token"],
                now=now,
                disconnect=disconnect,
                node=data.get("node"),
                service=data.get("service", ""),
            )
        except EvidenceError as exc:
            form.add_error(
                "screenshots" if "screenshot" in exc.code or exc.code != "not_text" else "logs",
                exc.message,
            )
        except AppealError as exc:
            if exc.existing is not None:
                messages.warning(request, exc.message)
                return redirect("appeals:detail", public_id=exc.existing.public_id)
            form.add_error(None, exc.message)
        else:
            messages.success(
                request, _("Your appeal was filed. We will respond by the time shown below.")
            )
            return redirect("appeals:detail", public_id=appeal.public_id)
        # Everything typed stays; only files must be chosen again.
        form.data = form.data.copy()
    return render(
        request,
        "appeals/new.html",
        {
            "form": form,
            "span": span,
            "disconnect": disconnect,
            "fixed_fields": ("node", "service") if disconnect else (),
            "check": check,
            "deadline": check.deadline if check else None,
            # Step two carries the checked span; a failed POST keeps what was sent.
            "span_start": _span_value(check.start if check else start)
            or request.POST.get("claimed_start", ""),
            "span_end": _span_value(check.end if check else end)
            or request.POST.get("claimed_end", ""),
            "show_details": request.method == "POST" or (check is not None and check.ok),
            "now": now,
            "window_hours": policy_current().appeal_window_hours,
        },
    )


def _finding(events) -> dict | None:
    """The system's check of the claim as recorded at filing (the triage
    event), with its times as datetimes for the page."""
    for event in reversed(events):
        if event.kind in (EventKind.TRIAGED, EventKind.ALREADY_COMPENSATED):
            disconnects = []
            for d in event.data.get("disconnects", []):
                try:
                    start = datetime.fromisoformat(d["start"])
                    end = datetime.fromisoformat(d["end"]) if d.get("end") else None
                except (KeyError, TypeError, ValueError):
                    continue
                disconnects.append({**d, "start": start, "end": end})
            return {"disconnects": disconnects, "entries": event.data.get("entries", [])}
    return None


@login_required
@limit_body
def appeal_detail(request: HttpRequest, public_id) -> HttpResponse:
    appeal = _viewer_appeal_or_404(request, public_id)
    is_owner = appeal.member.user_id == request.user.pk
    now = timezone.now()
    form = ReplyForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if not is_owner:
            raise Http404
        if form.is_valid():
            try:
                appeal_reply(
                    screenshots=form.cleaned_data["screenshots"],
                    logs=form.cleaned_data["logs"],
                    appeal=appeal,
                    member_user=request.user,
                    message=form.cleaned_data["message"],
                    now=now,
                )
            except (EvidenceError, AppealError) as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("Added to your appeal."))
                return redirect("appeals:detail", public_id=appeal.public_id)
    events = list(appeal.events.select_related("actor").order_by("created_at", "pk"))
    return render(
        request,
        "appeals/detail.html",
        {
            "appeal": appeal,
            "events": events,
            "finding": _finding(events),
            "evidence": appeal.evidence.all(),
            "form": form,
            "is_owner": is_owner,
            "now": now,
            "can_escalate": is_owner and appeal_can_escalate(appeal, now=now),
            "can_reply": is_owner and appeal.is_open,
            "bundle_available": appeal.status == AppealStatus.MEDIATION or not is_owner,
        },
    )


@login_required
@require_POST
def appeal_withdraw_view(request: HttpRequest, public_id) -> HttpResponse:
    appeal = _viewer_appeal_or_404(request, public_id)
    try:
        appeal_withdraw(appeal=appeal, member_user=request.user, now=timezone.now())
        messages.success(request, _("Your appeal was withdrawn."))
    except AppealError as exc:
        messages.error(request, exc.message)
    return redirect("appeals:detail", public_id=appeal.public_id)


@login_required
@require_POST
def appeal_escalate_view(request: HttpRequest, public_id) -> HttpResponse:
    appeal = _viewer_appeal_or_404(request, public_id)
    try:
        appeal_escalate(appeal=appeal, member_user=request.user, now=timezone.now())
        messages.success(
            request,
            _(
                "Recorded: the case is going to third-party mediation. Download your evidence bundle below."
            ),
        )
    except AppealError as exc:
        messages.error(request, exc.message)
    return redirect("appeals:detail", public_id=appeal.public_id)


def _private(response: HttpResponse) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@login_required
@require_GET
def evidence_file(request: HttpRequest, public_id, evidence_id) -> HttpResponse:
    appeal = _viewer_appeal_or_404(request, public_id)
    item = get_object_or_404(appeal.evidence, public_id=evidence_id)
    if request.GET.get("thumb") and item.kind == "screenshot":
        with item.file.open("rb") as handle:
            image = Image.open(handle, formats=["JPEG", "PNG", "WEBP"])
            image.thumbnail((320, 320))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
        return _private(HttpResponse(out.getvalue(), content_type="image/jpeg"))
    response = FileResponse(item.file.open("rb"), content_type=item.content_type)
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=item.kind != "screenshot", filename=item.original_name
    )
    return _private(response)


@login_required
@require_GET
def bundle_download(request: HttpRequest, public_id) -> HttpResponse:
    appeal = _viewer_appeal_or_404(request, public_id)
    is_owner = appeal.member.user_id == request.user.pk
    if is_owner and appeal.status != AppealStatus.MEDIATION:
        raise Http404
    response = FileResponse(
        build_bundle(appeal),
        as_attachment=True,
        filename=f"kamen-appeal-{appeal.short_id}-bundle.zip",
        content_type="application/zip",
    )
    return _private(response)
