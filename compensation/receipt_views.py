"""A receipt per ledger entry: the page, its PDF and the JSON download.

Each shows one entry to its own member, or to staff allowed to view ledger
entries; everybody else gets a 404 (selectors.receipt_entry)."""

import json
import logging

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from kamen_portal.http import portal_url

from .log_keys import log_verifiers
from .models import SourceKind
from .pdf_font import CJKFontMissing
from .receipt_pdf import head_status, receipt_pdf, receipt_rows
from .receipts import receipt_facts, receipt_for
from .selectors import receipt_entry

logger = logging.getLogger(__name__)


def _source_link(entry) -> dict | None:
    """Where the member can read about the cause (incidents link on their
    own, for everybody). Appeals are a higher layer: reached by URL name."""
    try:
        if entry.source_kind == SourceKind.APPEAL:
            url = reverse("appeals:detail", kwargs={"public_id": entry.source_ref})
            return {"url": url, "text": _("Your appeal")}
    except NoReverseMatch:
        return None
    if entry.source_kind == SourceKind.DISCONNECT:
        return {"url": reverse("compensation:my-disconnects"), "text": _("Your disconnects")}
    return None


@require_GET
@login_required
def receipt_page(request: HttpRequest, public_id) -> HttpResponse:
    entry = receipt_entry(user=request.user, public_id=public_id)
    facts = receipt_facts(entry, now=timezone.now())
    is_own = entry.member.user_id == request.user.pk
    response = render(
        request,
        "compensation/receipt.html",
        {
            "facts": facts,
            "entry": entry,
            "rows": receipt_rows(facts),
            "head_status": head_status(facts),
            "is_own": is_own,
            "source_link": _source_link(entry) if is_own else None,
            "log_keys": [v.vkey for v in log_verifiers()],
        },
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@login_required
def receipt_pdf_view(request: HttpRequest, public_id) -> HttpResponse:
    entry = receipt_entry(user=request.user, public_id=public_id)
    facts = receipt_facts(entry, now=timezone.now())
    try:
        pdf = receipt_pdf(
            facts,
            page_url=portal_url(reverse("compensation:receipt-page", args=[entry.public_id])),
            ledger_url=portal_url(reverse("compensation:ledger")),
        )
    except CJKFontMissing as exc:
        # An operator's fix, said plainly in the log; the member gets a page
        # in their language pointing at the JSON receipt that still works.
        logger.error("receipt PDF unavailable: %s", exc)
        return render(
            request, "compensation/receipt_pdf_unavailable.html", {"entry": entry}, status=503
        )
    response = HttpResponse(pdf, content_type="application/pdf")
    name = f"kamen-receipt-{entry.seq}-{get_language() or 'zh-hans'}.pdf"
    response["Content-Disposition"] = f'inline; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@login_required
def receipt_json(request: HttpRequest, public_id) -> HttpResponse:
    version = request.GET.get("version", "2")
    if version not in ("1", "2"):
        # Before the entry lookup: says nothing about whether the receipt exists.
        return JsonResponse(
            {"error": "bad_version", "detail": _("Receipt versions are 1 and 2.")}, status=400
        )
    entry = receipt_entry(user=request.user, public_id=public_id)
    receipt = receipt_for(entry, now=timezone.now(), version=int(version))
    body = json.dumps(receipt, ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="kamen-receipt-{entry.seq}.json"'
    response["Cache-Control"] = "private, no-store"
    return response
