"""The assistant's page: a plain form that works without JavaScript (the
chat panel on every page posts here when scripts are off). The conversation
lives in the visitor's session; answers are shown after a redirect, so a
reload never asks twice."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from members.security import client_ip
from members.selectors import member_profile_for_user

from .nlu import MAX_QUESTION_LENGTH, visible
from .selectors import member_support_requests
from .services import (
    assistant_ask,
    assistant_rate_check,
    question_rate,
    support_request_create,
)

SESSION_KEY = "assistant_conversation"
# The member's support requests page shows this many, newest first.
SUPPORT_REQUESTS_SHOWN = 50


def conversation_of(request: HttpRequest) -> list[dict]:
    value = request.session.get(SESSION_KEY, [])
    return value if isinstance(value, list) else []


def member_of(request: HttpRequest):
    if not request.user.is_authenticated:
        return None
    return member_profile_for_user(user=request.user)


@require_http_methods(["GET", "HEAD", "POST"])
def assistant_page(request: HttpRequest) -> HttpResponse:
    error = ""
    question = ""
    status = 200
    if request.method == "POST":
        question = " ".join(visible(str(request.POST.get("question", ""))).split())
        member = member_of(request)
        now = timezone.now()
        if not question:
            error, status = _("Type a question first."), 400
        elif len(question) > MAX_QUESTION_LENGTH:
            error = _("Questions can be at most %(n)d characters long.") % {
                "n": MAX_QUESTION_LENGTH
            }
            status = 400
        else:
            decision = assistant_rate_check(member=member, client_ip=client_ip(request), now=now)
            if not decision.allowed:
                error = _("Too many questions in a row. Try again in %(s)d seconds.") % {
                    "s": decision.retry_after
                }
                status = 429
            else:
                _answer, _logged, conversation = assistant_ask(
                    question=question,
                    member=member,
                    conversation=conversation_of(request),
                    now=now,
                )
                request.session[SESSION_KEY] = conversation
                return redirect(request.path + "#latest")
    return render(
        request,
        "portal/assistant.html",
        {
            "conversation": conversation_of(request),
            "error": error,
            "question": question if error else "",
            "max_length": MAX_QUESTION_LENGTH,
            "is_member": member_of(request) is not None,
        },
        status=status,
    )


@login_required
@require_POST
def support_request(request: HttpRequest) -> HttpResponse:
    member = member_of(request)
    if member is None:
        raise Http404
    conversation = conversation_of(request)
    message = " ".join(visible(str(request.POST.get("message", ""))).split())[:2000]
    if not message:
        last = conversation[-1]["question"] if conversation else ""
        message = last or _("(no message)")
    created = support_request_create(
        member=member,
        message=message,
        conversation=conversation,
        language=request.LANGUAGE_CODE,
        now=timezone.now(),
    )
    messages.success(
        request,
        _("Sent to staff (reference %(ref)s). They will get back to you.")
        % {"ref": created.reference},
    )
    return redirect("portal:support-requests")


@login_required
@require_http_methods(["GET", "HEAD"])
def support_requests_page(request: HttpRequest) -> HttpResponse:
    """The member's requests to staff: status and the staff reply."""
    member = member_of(request)
    requests = (
        list(member_support_requests(member=member)[:SUPPORT_REQUESTS_SHOWN]) if member else []
    )
    return render(request, "portal/support_requests.html", {"requests": requests})


@require_POST
def feedback(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    helpful = request.POST.get("helpful")
    if helpful not in ("1", "0"):
        return HttpResponse(status=400)
    if question_rate(public_id=public_id, helpful=helpful == "1", now=timezone.now()) is None:
        raise Http404
    messages.success(request, _("Thank you for the feedback."))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = ""
    return redirect(target or "portal:assistant")
