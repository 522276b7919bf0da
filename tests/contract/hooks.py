"""Schemathesis hooks for the contract run (loaded through SCHEMATHESIS_HOOKS).

1. CSRF: Django wants, on every write from a session, the csrftoken cookie
   and the same value in X-CSRFToken. The session itself is the cookieAuth
   scheme (configured as auth, so schemathesis knows it and can take it away
   to test that auth is enforced); the CSRF pair rides along here.

2. Realistic positive data where JSON Schema cannot say what is valid: a
   screenshot must be a real image, a log real text, and a claimed span must
   end inside the appeal window, which is relative to now. Positive cases of
   the two upload operations get such contents; every other part of them
   stays generated, and negative cases are left alone. Without this,
   positive_data_acceptance could never pass there (random bytes are not a
   PNG), and the success paths would go untested. For the same reason half
   the positive cases name one of the member's real appeals or disconnects
   instead of a random UUID (which can only be a 404).
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta

import schemathesis
from PIL import Image

CSRF = os.environ.get("KAMEN_CONTRACT_CSRF", "")
CSRF_COOKIE = os.environ.get("KAMEN_CONTRACT_CSRF_COOKIE", "csrftoken")
# The member's recorded disconnects (closed, open, unresolved), for appeals.
DISCONNECTS = [d for d in os.environ.get("KAMEN_CONTRACT_DISCONNECTS", "").split(",") if d]
# Two of the member's appeals: one to reply to, one to withdraw.
APPEALS = dict(
    item.split("=", 1) for item in os.environ.get("KAMEN_CONTRACT_APPEALS", "").split(",") if item
)
_UPLOADS = {("POST", "/api/v1/appeals/"), ("POST", "/api/v1/appeals/{public_id}/replies/")}


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


PNG = _png()
LOG = b"2026-11-30 12:00:01 connection lost (timeout)\n"


@schemathesis.hook
def before_call(context, case, kwargs):
    if not CSRF:
        return
    case.cookies = {**(case.cookies or {}), CSRF_COOKIE: CSRF}
    case.headers["X-CSRFToken"] = CSRF


def _is_positive(case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


def _half(case) -> bool:
    return case.id.encode()[-1] % 2 == 0


@schemathesis.hook
def map_case(context, case):
    if not _is_positive(case):
        return case
    if "public_id" in (case.path_parameters or {}) and APPEALS and _half(case):
        # Half the time one of the member's real appeals (else a random id, 404).
        which = "withdraw" if case.path.endswith("/withdraw/") else "reply"
        case.path_parameters["public_id"] = APPEALS[which]
    if (case.method.upper(), case.path) not in _UPLOADS:
        return case
    body = case.body
    if not isinstance(body, dict):
        return case
    if body.get("screenshots"):
        body["screenshots"] = [PNG for _ in body["screenshots"]]
    if body.get("logs"):
        body["logs"] = [LOG for _ in body["logs"]]
    if "claimed_start" in body and "claimed_end" in body:
        # Inside the window (ended 10 minutes to 23 hours ago, lasted 5
        # minutes), spread by the case so not every claim is a duplicate.
        slot = int.from_bytes(case.id.encode()[-4:], "big") % 270
        end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10 + 5 * slot)
        body["claimed_end"] = end.isoformat()
        body["claimed_start"] = (end - timedelta(minutes=5)).isoformat()
    if body.get("disconnect") and DISCONNECTS and case.path == "/api/v1/appeals/":
        # Half the time one of the member's real disconnects, else a random id (404).
        pick = int.from_bytes(case.id.encode()[-2:], "big") % (2 * len(DISCONNECTS))
        if pick < len(DISCONNECTS):
            body["disconnect"] = DISCONNECTS[pick]
    return case
