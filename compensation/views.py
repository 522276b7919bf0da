import json
import uuid

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from members.security import client_ip
from members.selectors import member_profile_or_404

from .forms import CalculatorForm, RedeemForm
from .models import Incident, IncidentStatus, LedgerEntry, LedgerHead, LedgerKind, Policy
from .receipts import receipt_for
from .selectors import (
    appeal_deadline,
    member_coupons,
    member_disconnects,
    member_ledger,
    public_incidents,
    published_heads,
)
from .services.card_keys import CardKeyError, card_key_redeem
from .services.policy import policy_current, policy_quote, policy_ratio

MAX_CHAIN_SPAN = 10_000


@require_GET
def policy_page(request: HttpRequest) -> HttpResponse:
    policy = policy_current()
    form = CalculatorForm(request.GET or None)
    quote = None
    if form.is_bound and form.is_valid():
        source = form.cleaned_data["source"]
        quote = policy_quote(
            policy,
            lost_seconds=form.cleaned_data["minutes"] * 60,
            ratio=policy_ratio(policy, source),
            already_credited_in_window=form.cleaned_data.get("already") or 0,
        )
    history = Policy.objects.order_by("-version")[:20]
    return render(
        request,
        "compensation/policy.html",
        {"policy": policy, "form": form, "quote": quote, "history": history},
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
        {"ongoing": ongoing, "past": past, "now": timezone.now()},
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


@login_required
@require_http_methods(["GET", "POST"])
def my_redeem(request: HttpRequest) -> HttpResponse:
    """Redeem a card key; on success the member lands back here (POST,
    redirect, GET) and sees the new expiry and the entry's receipt."""
    member = member_profile_or_404(user=request.user)
    form = RedeemForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            redemption = card_key_redeem(
                member=member,
                key=form.cleaned_data["key"],
                client_ip=client_ip(request) or "",
                now=timezone.now(),
            )
        except CardKeyError as exc:
            form.add_error("key", exc.message)
            status = 429 if exc.code in ("locked_out", "try_later") else 400
        else:
            return redirect(f"{reverse('compensation:redeem')}?done={redemption.entry.public_id}")
    elif request.method == "POST":
        status = 400
    done = None
    raw = request.GET.get("done", "")
    if raw and request.method == "GET":
        # Only the member's own card-key entry: ids reveal nothing.
        done = (
            LedgerEntry.objects.filter(
                member=member, kind=LedgerKind.CARD_KEY, public_id=raw
            ).first()
            if _is_uuid(raw)
            else None
        )
    return render(
        request,
        "compensation/redeem.html",
        {
            "form": form,
            "done": done,
            "done_days": done.minutes // (24 * 60) if done else 0,
            "member": member,
        },
        status=status,
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
