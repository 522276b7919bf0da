import json

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from members.selectors import member_profile_or_404

from .forms import CalculatorForm, UsageCalculatorForm
from .health_selectors import node_health_states
from .models import Incident, IncidentStatus, LedgerEntry, LedgerHead, Policy
from .receipts import receipt_for
from .selectors import (
    appeal_deadline,
    member_coupons,
    member_disconnects,
    member_ledger,
    public_incidents,
    published_heads,
)
from .services.policy import policy_current, policy_quote, policy_ratio
from .services.usage import usage_quote

MAX_CHAIN_SPAN = 10_000


@require_GET
def policy_page(request: HttpRequest) -> HttpResponse:
    policy = policy_current()
    form_class = UsageCalculatorForm if policy.usage_weighting else CalculatorForm
    form = form_class(request.GET or None)
    quote = weighting = None
    if form.is_bound and form.is_valid():
        source = form.cleaned_data["source"]
        # The signed-in member's own usage profile, as the credit would use it.
        weighting = usage_quote(
            policy=policy,
            member=getattr(request.user, "member", None),
            start=form.cleaned_data.get("start"),
            minutes=form.cleaned_data["minutes"],
            now=timezone.now(),
        )
        quote = policy_quote(
            policy,
            lost_seconds=form.cleaned_data["minutes"] * 60,
            ratio=policy_ratio(policy, source) * (weighting.factor if weighting else 1),
            already_credited_in_window=form.cleaned_data.get("already") or 0,
        )
    history = Policy.objects.order_by("-version")[:20]
    return render(
        request,
        "compensation/policy.html",
        {
            "policy": policy,
            "form": form,
            "quote": quote,
            "weighting": weighting.as_json() if weighting else None,
            "history": history,
        },
    )


@require_GET
def status_page(request: HttpRequest) -> HttpResponse:
    incidents = public_incidents()
    ongoing = [i for i in incidents.filter(status=IncidentStatus.OPEN)]
    past = Paginator(incidents.filter(status=IncidentStatus.CLOSED), 20).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "compensation/status.html",
        {
            "ongoing": ongoing,
            "past": past,
            "now": timezone.now(),
            "nodes": list(node_health_states().values()),
        },
    )


@require_GET
def incident_page(request: HttpRequest, public_id) -> HttpResponse:
    incident = get_object_or_404(
        Incident.objects.exclude(status=IncidentStatus.CANCELLED).prefetch_related("nodes"),
        public_id=public_id,
    )
    return render(
        request, "compensation/incident.html", {"incident": incident, "now": timezone.now()}
    )


@require_GET
def ledger_page(request: HttpRequest) -> HttpResponse:
    head = LedgerHead.objects.filter(pk=1).first() or LedgerHead(pk=1)
    return render(
        request,
        "compensation/ledger.html",
        {"head": head, "heads": published_heads(), "count": head.seq},
    )


@require_GET
def ledger_chain(request: HttpRequest) -> JsonResponse:
    """Public links of the chain: ``(seq, body_digest, hash)`` only, no
    personal data. ``?after=N&through=M`` (at most 10,000 entries)."""
    try:
        after = int(request.GET.get("after", "0"))
        through = int(request.GET.get("through", str(after + 100)))
    except ValueError:
        return JsonResponse({"error": "after and through must be integers"}, status=400)
    if after < 0 or through < after:
        return JsonResponse({"error": "need 0 <= after <= through"}, status=400)
    through = min(through, after + MAX_CHAIN_SPAN)
    rows = (
        LedgerEntry.objects.filter(seq__gt=after, seq__lte=through)
        .order_by("seq")
        .values_list("seq", "body_digest", "hash")
    )
    heads = [
        {"seq": h.seq, "hash": h.hash, "published_at": h.published_at.isoformat()}
        for h in published_heads(10)
    ]
    return JsonResponse(
        {
            "entries": [{"seq": s, "body_digest": d, "hash": h} for s, d, h in rows],
            "published_heads": heads,
        }
    )


@login_required
def my_disconnects(request: HttpRequest) -> HttpResponse:
    member = member_profile_or_404(user=request.user)
    policy = policy_current()
    page = Paginator(member_disconnects(member=member), 25).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [
        {"d": d, "deadline": appeal_deadline(disconnect=d, policy=policy)} for d in page.object_list
    ]
    return render(
        request,
        "compensation/my_disconnects.html",
        {"page": page, "rows": rows, "now": now, "policy": policy},
    )


@login_required
def my_compensation(request: HttpRequest) -> HttpResponse:
    member = member_profile_or_404(user=request.user)
    page = Paginator(member_ledger(member=member), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "compensation/my_compensation.html",
        {"page": page, "coupons": member_coupons(member=member), "member": member},
    )


@login_required
def receipt(request: HttpRequest, public_id) -> HttpResponse:
    member = member_profile_or_404(user=request.user)
    # Someone else's entry is "not found", not "forbidden": ids reveal nothing.
    entry = get_object_or_404(
        LedgerEntry.objects.select_related("member", "reverses"), public_id=public_id, member=member
    )
    body = json.dumps(receipt_for(entry), ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="kamen-receipt-{entry.seq}.json"'
    response["Cache-Control"] = "private, no-store"
    return response
