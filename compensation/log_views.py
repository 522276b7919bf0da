"""The transparency log's public endpoints (DESIGN §6): plain GETs with no
session, cacheable, in the formats other people's tools read (C2SP
tlog-checkpoint, signed-note, tlog-tiles; RFC 9162 proofs). A malformed
path or size is a 404 or a 400 that says why, never a 500."""

import base64

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from kamen_portal.cache import counter_hit
from members.security import client_ip

from . import tlog
from .log_keys import log_verifier
from .log_selectors import (
    checkpoint_with_cosignatures,
    consistency_proof,
    latest_log_checkpoint,
    tile_bytes,
)
from .services.witnesses import CosignatureError, ledger_log_cosignature_add
from .tlog_notes import MAX_NOTE_SIZE

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=30"
MAX_SIZE = 2**63 - 1


def _text(body: str, *, cache: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(body, content_type="text/plain; charset=utf-8", status=status)
    response["Cache-Control"] = cache
    response["Access-Control-Allow-Origin"] = "*"  # mirrors and witnesses fetch these
    return response


@require_GET
def checkpoint(request: HttpRequest) -> HttpResponse:
    """The latest signed checkpoint."""
    latest = latest_log_checkpoint()
    if latest is None:
        return _text(
            _("No checkpoint has been published yet.") + "\n", cache="no-store", status=404
        )
    # With the cosignatures of the witnesses that have seen it: a reader
    # who knows a witness's key checks that line too, others skip it.
    return _text(checkpoint_with_cosignatures(latest), cache="public, max-age=10")


@require_GET
def key(request: HttpRequest) -> HttpResponse:
    """The verifier key in note format: ``<name>+<key ID>+<base64 key>``."""
    return _text(log_verifier().vkey + "\n", cache="public, max-age=3600")


@require_GET
def tile(request: HttpRequest, path: str) -> HttpResponse:
    """``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``: a full tile
    never changes (immutable); a partial one is superseded as the log grows."""
    try:
        parsed = tlog.parse_tile_path("tile/" + path)
        data = tile_bytes(parsed)
    except tlog.TileError:
        # A path that names no tile, or one the log does not have yet. A
        # storage fault (a stored hash missing) is not that: it propagates.
        raise Http404("no such tile") from None
    response = HttpResponse(data, content_type="application/octet-stream")
    response["Cache-Control"] = IMMUTABLE if parsed.is_full else SHORT
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _size(request: HttpRequest, name: str) -> int | None:
    text = request.GET.get(name, "")
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_SIZE:
        return None
    return int(text)


@require_GET
def consistency(request: HttpRequest) -> JsonResponse:
    """``?old=<size>&new=<size>``: the RFC 9162 proof that the tree of ``new``
    leaves extends the tree of ``old`` leaves."""
    old, new = _size(request, "old"), _size(request, "new")
    if old is None or new is None:
        return JsonResponse(
            {
                "error": "bad_size",
                "detail": _("old and new must be tree sizes: whole numbers from 0."),
            },
            status=400,
        )
    try:
        proof = consistency_proof(old=old, new=new)
    except tlog.ProofError as exc:
        return JsonResponse(
            {
                "error": exc.code,
                "detail": _(
                    "No consistency proof from size %(old)s to size %(new)s: old must not "
                    "exceed new, and new must not exceed the log's size."
                )
                % {"old": old, "new": new},
            },
            status=400,
        )
    response = JsonResponse(
        {"old": old, "new": new, "proof": [base64.b64encode(h).decode() for h in proof]}
    )
    # A proof between two sizes of this log never changes.
    response["Cache-Control"] = "public, max-age=86400"
    response["Access-Control-Allow-Origin"] = "*"
    return response


# Witnesses post once per new checkpoint (about one a minute); this leaves
# room for several behind one address and refuses a flood.
COSIGNATURES_PER_HOUR = 600


def _cosignature_refused(code: str, detail: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"accepted": False, "error": code, "detail": detail}, status=status)


@csrf_exempt  # no session or cookie is involved: the cosignature is the credential
@require_POST
def cosignature(request: HttpRequest) -> JsonResponse:
    """A witness sends a checkpoint it cosigned (the whole note, text/plain);
    the portal keeps the cosignatures of the witnesses it knows."""
    if counter_hit(f"log-cosign:ip:{client_ip(request) or 'unknown'}", ttl=3600) > (
        COSIGNATURES_PER_HOUR
    ):
        response = _cosignature_refused(
            "rate_limited", _("Too many cosignatures from this address; try again later."), 429
        )
        response["Retry-After"] = "3600"
        return response
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_NOTE_SIZE:
        return _cosignature_refused(
            "note_too_long",
            _("A cosigned checkpoint is at most %(size)s bytes.") % {"size": MAX_NOTE_SIZE},
            413,
        )
    messages = {
        "no_witnesses": _("This portal does not take witness cosignatures."),
        "unknown_checkpoint": _("This log never published that checkpoint."),
        "unknown_witness": _(
            "No witness this portal knows cosigned the checkpoint: ask the operator to add "
            "your witness key to LEDGER_LOG_WITNESS_KEYS."
        ),
        "future_timestamp": _("The cosignature is dated in the future: check the witness's clock."),
    }
    try:
        kept = ledger_log_cosignature_add(note=request.body, now=timezone.now())
    except CosignatureError as exc:
        detail = messages.get(exc.code) or _(
            "The body is not a checkpoint this log signed, as a signed note (%(reason)s)."
        ) % {"reason": exc.code}
        return _cosignature_refused(exc.code, detail, 404 if exc.code == "no_witnesses" else 400)
    first = kept[0].checkpoint
    return JsonResponse(
        {
            "accepted": True,
            "size": first.size,
            "witnesses": [
                {"name": c.witness, "cosigned_at": c.cosigned_at.isoformat()} for c in kept
            ],
        }
    )
