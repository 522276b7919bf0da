"""Schemathesis against the real app, as every identity the API serves.

``python tests/contract/run_schemathesis.py [--max-examples 40] [--identity member ...]``

1. A throwaway database: a sibling ``<name>_contract`` database on the
   PostgreSQL server of DATABASE_URL when that is PostgreSQL (CI), otherwise
   SQLite in a temporary directory. Migrated, ``seed_demo``, a node from
   ``create_node``, and a few disconnects and an appeal for member1, so lists
   and details answer with real rows. No Redis: the heartbeat store lives in
   the database and Celery runs eagerly, so the run leaves nothing behind.
2. gunicorn on 127.0.0.1 and a free port, production settings (DEBUG off)
   except TLS, which loopback does not have.
3. ``schemathesis run`` with every check over /api/schema/, once per
   identity: anonymous; a member (session cookie made in-process, plus the
   csrftoken cookie and the X-CSRFToken header); a node (Bearer token);
   an integration (feed token).
4. Stops gunicorn and deletes the database and the directory, whatever
   happened. Prints one summary line per identity; exit status 1 on any
   failure or error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# Schemathesis's own list of refusals, so a new release's additions carry over.
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
IDENTITIES = ("anonymous", "member", "node", "integration", "platform")

# Made inside the app's own process: Django's session for member1 (the
# same thing a login stores), a node, and rows to read.
FIXTURE = r"""
import json, secrets
from datetime import timedelta
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from appeals.evidence import clean_uploads
from appeals.services import appeal_submit
from compensation.models import Disconnect, DisconnectStatus
from compensation.services.nodes import node_create
from integrations.services.tokens import integration_token_create
from compensation.services.platforms import platform_create
from members.models import User

now = timezone.now()
user = User.objects.get(email="member1@example.com")
member = user.member
node, token = node_create(name="contract-node", now=now)
_feed, feed_token = integration_token_create(name="contract-feed", now=now)
_platform, platform_token = platform_create(name="contract-platform", now=now)
disconnects = []
for minutes, status in ((50, "closed"), (400, "closed"), (30, "open"), (2000, "unresolved")):
    disconnects.append(Disconnect.objects.create(
        member=member, node=node, session_id=f"contract-{minutes}",
        started_at=now - timedelta(minutes=minutes),
        ended_at=now - timedelta(minutes=minutes - 20) if status == "closed" else None,
        status=status, detected_at=now,
    ))
import io
from PIL import Image
from django.core.files.uploadedfile import SimpleUploadedFile
out = io.BytesIO(); Image.new("RGB", (32, 24), (200, 60, 30)).save(out, "PNG")
shot = SimpleUploadedFile("shot.png", out.getvalue(), content_type="image/png")
appeals = {}
for which, minutes in (("reply", 300), ("withdraw", 600)):
    shot.seek(0)
    appeals[which] = str(appeal_submit(
        member=member, actor=user, claimed_start=now - timedelta(minutes=minutes),
        claimed_end=now - timedelta(minutes=minutes - 20), description="Contract fixture",
        files=clean_uploads(screenshots=[shot], logs=[], require_screenshot=True),
        submission_token=__import__("uuid").uuid4(), now=now,
    ).public_id)
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(json.dumps({
    "node_token": token, "integration_token": feed_token, "platform_token": platform_token,
    "session_key": session.session_key,
    "session_cookie": settings.SESSION_COOKIE_NAME, "csrf_cookie": settings.CSRF_COOKIE_NAME,
    "appeals": appeals,
    "disconnects": [str(d.public_id) for d in disconnects],
}))
"""


def log(message: str) -> None:
    print(f"[contract] {message}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Result:
    identity: str
    returncode: int
    cases: int = 0
    failures: int = 0
    errors: int = 0
    server_errors: int = 0
    output: str = ""
    operations: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.returncode == 0
            and not self.failures
            and not self.errors
            and not self.server_errors
            and self.cases > 0
        )


@contextlib.contextmanager
def database(base_env: dict[str, str], workdir: Path):
    """A fresh database for the run, dropped afterwards."""
    url = base_env.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        base_env.pop("DATABASE_URL", None)
        yield "sqlite (" + str(workdir) + ")"
        return
    import psycopg

    parts = urlsplit(url)
    name = (parts.path.lstrip("/") or "kamen") + "_contract"
    admin_url = urlunsplit(parts._replace(path="/postgres"))

    def run(sql: str) -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql)

    run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    run(f'CREATE DATABASE "{name}"')
    base_env["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + name))
    try:
        yield f"postgresql ({name})"
    finally:
        with contextlib.suppress(Exception):
            run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    completed = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{completed.stderr[-4000:]}")
    return completed.stdout


@contextlib.contextmanager
def server(env: dict[str, str], port: int, logfile: Path):
    """gunicorn on loopback; stopped (TERM, then KILL) on the way out."""
    handle = logfile.open("w")
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "kamen_portal.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--timeout",
            "60",
            "--access-logfile",
            "-",
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{logfile.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not answer within 60 s") from None
                time.sleep(0.3)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        handle.close()


def _summarise(result: Result, report: Path) -> None:
    """Counts from schemathesis's NDJSON event stream."""
    if not report.exists():
        result.notes.append("no report written")
        return
    for line in report.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        for kind, body in event.items():
            if kind == "ScenarioFinished":
                recorder = body.get("recorder", {})
                cases = recorder.get("cases", {})
                result.cases += len(cases)
                for interaction in recorder.get("interactions", {}).values():
                    response = interaction.get("response") or {}
                    if (response.get("status_code") or 0) >= 500:
                        result.server_errors += 1
            elif kind == "NonFatalError":
                result.errors += 1
            elif kind == "EngineFinished":
                pass


def run_identity(
    identity: str,
    schema_url: str,
    auth: dict,
    csrf: tuple[str, str] | None,
    disconnects: list[str],
    appeals: dict[str, str],
    args,
    workdir: Path,
) -> Result:
    report_dir = workdir / f"report-{identity}"
    config = workdir / f"schemathesis-{identity}.toml"
    # negative_data_rejection's default list of refusals lacks 413, which
    # is how the API refuses a batch over 1,000 heartbeats (maxItems).
    lines = [
        "[checks.negative_data_rejection]",
        "expected-statuses = " + json.dumps([*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]),
    ]
    for scheme, settings in auth.items():
        lines.append(f"[auth.openapi.{scheme}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    config.write_text("\n".join(lines) + "\n")
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(Path(__file__).with_name("hooks.py")),
    }
    if csrf:
        env["KAMEN_CONTRACT_CSRF_COOKIE"], env["KAMEN_CONTRACT_CSRF"] = csrf
        env["KAMEN_CONTRACT_DISCONNECTS"] = ",".join(disconnects)
        env["KAMEN_CONTRACT_APPEALS"] = ",".join(f"{k}={v}" for k, v in appeals.items())
    command = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        schema_url,
        "--checks",
        "all",
        "--max-examples",
        str(args.max_examples),
        "--seed",
        str(args.seed),
        # One worker: schemathesis's own generation is not thread-safe
        # enough here (internal errors with two).
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--report",
        "ndjson,junit",
        "--report-ndjson-path",
        str(report_dir / "events.ndjson"),
        "--report-junit-path",
        str(report_dir / "junit.xml"),
        "--no-color",
        "--continue-on-failure",
    ]
    log(f"{identity}: schemathesis run (max {args.max_examples} examples per operation)")
    completed = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=args.timeout
    )
    result = Result(identity=identity, returncode=completed.returncode, output=completed.stdout)
    _summarise(result, report_dir / "events.ndjson")
    result.failures = _count_failures(report_dir)
    if args.keep_reports:
        target = Path(args.keep_reports) / identity
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(report_dir, target)
        (target / "output.txt").write_text(completed.stdout + completed.stderr)
    return result


def _count_failures(report_dir: Path) -> int:
    junit = report_dir / "junit.xml"
    if not junit.exists():
        return 0
    import xml.etree.ElementTree as ET

    root = ET.parse(junit).getroot()  # noqa: S314 - our own report
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    return sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--identity", action="append", choices=IDENTITIES)
    parser.add_argument("--timeout", type=int, default=900, help="per identity, seconds")
    parser.add_argument("--keep-reports", help="copy each identity's reports to this directory")
    parser.add_argument("--show-output", action="store_true", help="print schemathesis output")
    args = parser.parse_args(argv)
    identities = args.identity or list(IDENTITIES)

    workdir = Path(tempfile.mkdtemp(prefix="kamen-contract."))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "DJANGO_SETTINGS")) and k != "REDIS_URL"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="kamen_portal.settings",
        DATA_DIR=str(workdir / "data"),
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        # Loopback has no TLS; everything else is production.
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_HSTS_SECONDS="0",
        ADMIN_REQUIRE_MFA="false",
        CELERY_TASK_ALWAYS_EAGER="true",
        LOG_LEVEL="WARNING",
        # Throttling is documented (429) and tested elsewhere; here it would
        # only cut the run short.
        API_THROTTLE_RATE="100000/minute",
        NODE_THROTTLE_RATE="100000/minute",
        ENTITLEMENT_THROTTLE_RATE="100000/minute",
        INTEGRATION_THROTTLE_RATE="100000/minute",
        PLATFORM_THROTTLE_RATE="100000/minute",
    )
    results: list[Result] = []
    try:
        with database(env, workdir) as where:
            log(f"database: {where}")
            manage(env, "migrate", "--noinput")
            manage(env, "collectstatic", "--noinput")  # as production: DEBUG off needs it
            manage(env, "seed_demo")
            fixture = json.loads(manage(env, "shell", "-c", FIXTURE).strip().splitlines()[-1])
            port = free_port()
            with server(env, port, workdir / "gunicorn.log"):
                base = f"http://127.0.0.1:{port}"
                log(f"gunicorn on {base}")
                auth = {
                    "anonymous": {},
                    "member": {"cookieAuth": {"api_key": fixture["session_key"]}},
                    "node": {"nodeToken": {"bearer": fixture["node_token"]}},
                    "integration": {"integrationToken": {"bearer": fixture["integration_token"]}},
                    "platform": {"platformToken": {"bearer": fixture["platform_token"]}},
                }
                # Writes from a session also need the CSRF cookie and header.
                csrf = (fixture["csrf_cookie"], secrets.token_hex(16))
                for identity in identities:
                    results.append(
                        run_identity(
                            identity,
                            f"{base}/api/schema/",
                            auth[identity],
                            csrf if identity == "member" else None,
                            fixture["disconnects"],
                            fixture["appeals"],
                            args,
                            workdir,
                        )
                    )
            server_log = (workdir / "gunicorn.log").read_text()
            if args.keep_reports:
                Path(args.keep_reports).mkdir(parents=True, exist_ok=True)
                (Path(args.keep_reports) / "gunicorn.log").write_text(server_log)
            errors = [line for line in server_log.splitlines() if '"level": "ERROR"' in line]
            if errors:
                log(f"the server logged {len(errors)} errors; the last:\n" + errors[-1][:6000])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    failed = False
    for result in results:
        if args.show_output or not result.ok:
            print(result.output)
        log(
            f"{result.identity}: {result.cases} cases, {result.failures} failures, "
            f"{result.errors} errors, {result.server_errors} 5xx responses, "
            f"schemathesis exit {result.returncode}"
            + (f" ({'; '.join(result.notes)})" if result.notes else "")
        )
        failed |= not result.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
