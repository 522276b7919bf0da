"""Appeals: server time of filing with three 2 MB screenshots, and the admin
appeal list over 100,000 appeals.

Both go through real HTTP to gunicorn (2 sync workers, DEBUG=false) on
PostgreSQL and Redis. Requests are sent one at a time, so the round trip on
loopback is the server's time (no queueing behind our own requests). The
screenshots are random-noise PNGs: noise does not compress, so each really is
about 2 MB on the wire and the server decodes and re-encodes all of it.
"""

from __future__ import annotations

import http.client
import io
import os
import secrets
import subprocess
import sys
import time
import uuid
from datetime import timedelta

from .harness import (
    BIN,
    ROOT,
    Context,
    free_port,
    log,
    percentile,
    start_process,
    stop_process,
    tail,
    target,
)

TARGET_SUBMIT_P95_MS = 500
TARGET_ADMIN_P95_MS = 500
BENCH_MARK = "[bench]"


def params_for(args) -> dict:
    quick = args.quick
    return {
        "members": args.members or (2_000 if quick else 100_000),
        "appeals": 2_000 if quick else 100_000,
        "submissions": 5 if quick else 30,
        "screenshot_bytes": 2 * 1024 * 1024,
        "admin_requests_per_view": 3 if quick else 10,
        "gunicorn_workers": 2,
    }


def _noise_png(target_bytes: int) -> bytes:
    from PIL import Image

    side = int((target_bytes / 3) ** 0.5)
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = "----kamenbench" + secrets.token_hex(8)
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, filename, data in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: image/png\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _session_cookie(user, extra: dict | None = None) -> str:
    """A logged-in session for ``user``, made directly in the session store
    (the benchmark measures filing and listing, not the login form); ``extra``
    adds further session entries (the staff's two-factor sign-in records)."""
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    store["_auth_user_hash"] = user.get_session_auth_hash()
    store.update(extra or {})
    store.save()
    return store.session_key


def _request(
    port: int, method: str, path: str, *, body: bytes | None = None, headers: dict
) -> tuple[int, float, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        started = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, (time.perf_counter() - started) * 1000, data
    finally:
        conn.close()


def _wait_until_serving(port: int, proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited during start-up")
        try:
            status, _ms, _body = _request(port, "GET", "/policy/", headers={"Host": "127.0.0.1"})
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("gunicorn did not answer in time")


def _ensure_appeals(count: int, members, *, now) -> int:
    """``count`` benchmark appeals (bulk-created once, reused afterwards)."""
    from appeals.models import Appeal, AppealStatus

    existing = Appeal.objects.filter(description__startswith=BENCH_MARK).count()
    if existing >= count:
        return existing
    log(f"appeals: creating {count - existing:,} appeals")
    statuses = [s for s, _label in AppealStatus.choices]
    batch = []
    for i in range(existing, count):
        member = members[i % len(members)]
        start = now - timedelta(days=30) + timedelta(minutes=i % 40_000)
        batch.append(
            Appeal(
                member_id=member.pk,
                claimed_start=start,
                claimed_end=start + timedelta(minutes=20),
                description=f"{BENCH_MARK} appeal {i}",
                status=statuses[i % len(statuses)],
                deadline=start + timedelta(hours=24, minutes=20),
                submission_token=uuid.uuid4(),
                sla_due_at=start + timedelta(hours=24),
                created_at=start + timedelta(minutes=25),
            )
        )
        if len(batch) == 5000:
            Appeal.objects.bulk_create(batch)
            batch = []
    if batch:
        Appeal.objects.bulk_create(batch)
    return count


def run(ctx: Context, params: dict, members) -> dict:
    from django.db import connections
    from django.utils import timezone

    from appeals.models import Appeal
    from members.models import MemberProfile, User

    now = timezone.now()
    members = members[: params["members"]]
    # Filers: members with no open appeal overlapping the last two hours.
    filers = [
        MemberProfile.objects.select_related("user").get(pk=m.pk)
        for m in members[-params["submissions"] :]
    ]
    Appeal.objects.filter(
        member_id__in=[f.pk for f in filers], description__startswith="Bench filing"
    ).delete()
    _ensure_appeals(params["appeals"], members, now=now)
    staff, _ = User.objects.get_or_create(
        email="bench-supervisor@bench.invalid", defaults={"is_staff": True, "is_superuser": True}
    )
    # The admin opens only for a session that passed the second factor
    # (kamen_portal.staff_gate): the benchmark supervisor has TOTP, and its
    # session carries the records allauth's password + TOTP sign-in writes.
    from members.tests.mfa import mfa_session_records

    staff_cookie = _session_cookie(staff, mfa_session_records(staff))
    shots = [_noise_png(params["screenshot_bytes"]) for _ in range(3)]
    csrf = secrets.token_hex(16)  # 32 characters: a valid unmasked CSRF secret

    # Pages render with DEBUG=false here: the hashed static manifest must exist.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    port = free_port()
    log_path = ctx.workdir / "gunicorn-appeals.log"
    server = start_process(
        [
            str(BIN / "gunicorn"),
            "kamen_portal.wsgi",
            "-w",
            str(params["gunicorn_workers"]),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--timeout",
            "120",
        ],
        log_path,
    )
    try:
        connections.close_all()
        _wait_until_serving(port, server)
        submit_ms, submit_errors = [], []
        for i, filer in enumerate(filers):
            cookie = _session_cookie(filer.user)
            body, content_type = _multipart(
                {
                    "claimed_start": (now - timedelta(minutes=90)).isoformat(),
                    "claimed_end": (now - timedelta(minutes=60)).isoformat(),
                    "description": f"Bench filing {i}: dropped during a match.",
                },
                [("screenshots", f"shot{n}.png", data) for n, data in enumerate(shots)],
            )
            status, ms, answer = _request(
                port,
                "POST",
                "/api/v1/appeals/",
                body=body,
                headers={
                    "Host": "127.0.0.1",
                    "Content-Type": content_type,
                    "Cookie": f"sessionid={cookie}; csrftoken={csrf}",
                    "X-CSRFToken": csrf,
                },
            )
            if status != 201:
                submit_errors.append(f"{status}: {answer[:200]!r}")
                continue
            submit_ms.append(ms)

        views = {
            "default": "/admin/appeals/appeal/",
            "filter_status": "/admin/appeals/appeal/?status__exact=submitted",
            "filter_overdue": "/admin/appeals/appeal/?overdue=yes",
            "search_member": f"/admin/appeals/appeal/?q={members[7].member_no}",
            "deep_page": "/admin/appeals/appeal/?p=500",
        }
        admin_ms: dict[str, list[float]] = {name: [] for name in views}
        admin_errors = []
        for _round in range(params["admin_requests_per_view"]):
            for name, path in views.items():
                status, ms, answer = _request(
                    port,
                    "GET",
                    path,
                    headers={"Host": "127.0.0.1", "Cookie": f"sessionid={staff_cookie}"},
                )
                if status != 200:
                    admin_errors.append(f"{name} {status}: {answer[:200]!r}")
                    continue
                admin_ms[name].append(ms)
    except Exception:
        log(tail(log_path))
        raise
    finally:
        stop_process(server)

    def pct(values, p):
        value = percentile(values, p)
        return round(value, 1) if value is not None else None

    all_admin = [ms for values in admin_ms.values() for ms in values]
    submit_p95 = pct(submit_ms, 95)
    admin_p95 = pct(all_admin, 95)
    return {
        "parameters": params,
        "results": {
            "appeals_in_database": Appeal.objects.count(),
            "screenshot_sizes_bytes": [len(s) for s in shots],
            "submit_ms": {
                "p50": pct(submit_ms, 50),
                "p95": submit_p95,
                "max": pct(submit_ms, 100),
                "count": len(submit_ms),
            },
            "submit_errors": submit_errors[:5],
            "admin_list_ms": {
                name: {"p50": pct(v, 50), "p95": pct(v, 95), "count": len(v)}
                for name, v in admin_ms.items()
            },
            "admin_list_p95_ms_all_views": admin_p95,
            "admin_errors": admin_errors[:5],
        },
        "targets": [
            target("appeal_submit_p95_ms", submit_p95, below=TARGET_SUBMIT_P95_MS),
            target("admin_appeal_list_p95_ms", admin_p95, below=TARGET_ADMIN_P95_MS),
        ],
    }


def summary(result: dict) -> str:
    r = result["results"]
    return (
        f"appeals: submit with 3 x 2 MB screenshots p50 {r['submit_ms']['p50']} ms, p95 {r['submit_ms']['p95']} ms; "
        f"admin list over {r['appeals_in_database']:,} appeals p95 {r['admin_list_p95_ms_all_views']} ms"
    )
