from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from members.security import client_ip
from members.selectors import member_profile_or_404

from .forms import CalculatorForm, RedeemForm, UsageCalculatorForm
from .log_keys import log_verifier, log_verifiers
from .log_selectors import checkpoint_with_cosignatures, latest_log_checkpoint, witnesses_seen
from .models import (
    LedgerHead,
    Policy,
    SourceKind,
)
from .receipts import next_checkpoint_due, next_head_due
from .selectors import (
    appeal_deadline,
    chain_links,
    heads_published_in,
    incidents_by_ref,
    member_card_key_entry,
    member_coupons,
    member_disconnects,
    member_ledger,
    published_heads,
)
from .services.card_keys import CardKeyError, card_key_redeem
from .services.policy import policy_current, policy_quote, policy_ratio
from .services.usage import usage_quote
from .status import source_label

MAX_CHAIN_SPAN = 10_000
# seq is a bigint: larger numbers are a 400, not a database error.
MAX_SEQ = 2**63 - 1


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
def ledger_page(request: HttpRequest) -> HttpResponse:
    head = LedgerHead.objects.filter(pk=1).first() or LedgerHead(pk=1)
    heads = list(published_heads())
    latest = heads[0] if heads else None
    now = timezone.now()
    log_checkpoint = latest_log_checkpoint()
    return render(
        request,
        "compensation/ledger.html",
        {
            "head": head,
            "heads": heads,
            "count": head.seq,
            "latest": latest,
            # Entries after the last published head: the next head covers them.
            "unpublished": head.seq - (latest.seq if latest else 0),
            "next_head_due": next_head_due(now=now),
            "now": now,
            # The transparency log: its verifier key and latest signed checkpoint.
            "log_key": log_verifier().vkey,
            "log_keys": [v.vkey for v in log_verifiers()],
            "log_checkpoint": log_checkpoint,
            "log_checkpoint_note": (
                checkpoint_with_cosignatures(log_checkpoint) if log_checkpoint else ""
            ),
            "next_checkpoint_due": next_checkpoint_due(now=now),
            # Who has checked the log from outside, and up to which tree.
            "witnesses": witnesses_seen(),
        },
    )


@require_GET
def ledger_chain(request: HttpRequest) -> JsonResponse:
    """Public links of the chain: ``(seq, body_digest, hash)`` only, no
    personal data. ``?after=N&through=M`` (at most 10,000 entries)."""
    try:
        after = int(request.GET.get("after", "0"))
        through = int(request.GET.get("through", str(min(after + 100, MAX_SEQ))))
    except ValueError:
        return JsonResponse({"error": "after and through must be integers"}, status=400)
    if after < 0 or through < after or through > MAX_SEQ:
        return JsonResponse({"error": f"need 0 <= after <= through <= {MAX_SEQ}"}, status=400)
    through = min(through, after + MAX_CHAIN_SPAN)
    rows = chain_links(after=after, through=through)
    # The latest heads, and every head published inside the asked range: a
    # browser checking an old receipt finds the head it names.
    in_range = heads_published_in(after=after, through=through)
    chosen = {h.pk: h for h in [*published_heads(10), *in_range]}
    heads = [
        {"seq": h.seq, "hash": h.hash, "published_at": h.published_at.isoformat()}
        for h in sorted(chosen.values(), key=lambda h: h.published_at, reverse=True)
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
    # Each row says whether it is under appeal: the appeals layer's reverse
    # relation, prefetched by name (no import upward).
    disconnects = member_disconnects(member=member).prefetch_related("appeals")
    page = Paginator(disconnects, 25).get_page(request.GET.get("page"))
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
    incidents = incidents_by_ref(
        e.source_ref for e in page.object_list if e.source_kind == SourceKind.INCIDENT
    )
    kinds = {ref: incident.kind for ref, incident in incidents.items()}
    # Newest first: the member's own numbering runs 1..n oldest to newest;
    # the global seq (shared by all members, hence its gaps) stays secondary.
    first = page.paginator.count - page.start_index() + 1
    rows = []
    for index, entry in enumerate(page.object_list):
        incident = incidents.get(entry.source_ref)
        rows.append(
            {
                "e": entry,
                "number": first - index,
                "source": source_label(entry, kinds),
                "incident": incident,
            }
        )
    return render(
        request,
        "compensation/my_compensation.html",
        {"page": page, "rows": rows, "coupons": member_coupons(member=member), "member": member},
    )


@login_required
@require_http_methods(["GET", "POST"])
def my_redeem(request: HttpRequest) -> HttpResponse:
    """Redeem a card key; on success the member lands back here (POST,
    redirect, GET) and sees the new expiry and the entry's receipt."""
    member = member_profile_or_404(user=request.user)
    form = RedeemForm(request.POST or None)
    status = 200
    already = None
    if request.method == "POST" and form.is_valid():
        try:
            redemption = card_key_redeem(
                member=member,
                key=form.cleaned_data["key"],
                client_ip=client_ip(request) or "",
                now=timezone.now(),
            )
        except CardKeyError as exc:
            already = exc.own_entry
            if already is None:
                form.add_error("key", exc.message)
                status = 429 if exc.code in ("locked_out", "try_later") else 400
        else:
            return redirect(f"{reverse('compensation:redeem')}?done={redemption.entry.public_id}")
    elif request.method == "POST":
        status = 400
    done = None
    raw = request.GET.get("done", "")
    if raw and request.method == "GET":
        done = member_card_key_entry(member=member, public_id=raw)
    return render(
        request,
        "compensation/redeem.html",
        {
            "form": form,
            "done": done,
            "done_days": done.minutes // (24 * 60) if done else 0,
            # The member's own key entered again (a double submit, a second
            # look): when it was redeemed and where its entry is.
            "already": already,
            "member": member,
        },
        status=status,
    )
