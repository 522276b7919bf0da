"""Logs a shipper can read (issue 24, item 2): a short real run of gunicorn
(with kamen_portal.gunicorn_conf) and a Celery worker under LOG_FORMAT=json.
Every line either process writes parses as one JSON object; the access line
keeps the incoming X-Request-ID, a malformed one is replaced by a generated
id, and the task a request queued logs under that request's id."""

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from django.conf import settings

from tests.workers import ROOT, _free_port, embedded_portal_env, run_manage, wait_until

BIN = Path(sys.executable).parent


def _start(args, env, log):
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _lines(path: Path) -> list[dict]:
    parsed = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"{path.name} line {number} is not JSON: {line[:300]!r}") from None
        assert isinstance(record, dict), f"{path.name} line {number}: {line[:300]!r}"
        assert {"time", "level", "logger", "message", "request_id"} <= record.keys(), record
        parsed.append(record)
    return parsed


def test_every_line_of_a_web_and_worker_run_is_json_with_the_request_id(tmp_path):
    # Plain HTTP on loopback: the CSRF cookie must travel without TLS here.
    env = embedded_portal_env(
        tmp_path, LOG_FORMAT="json", LOG_LEVEL="INFO", CSRF_COOKIE_SECURE="false"
    )
    run_manage(env, "migrate", "--noinput")
    run_manage(env, "collectstatic", "--noinput")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    queues = ",".join(settings.CELERY_QUEUES_ALL)
    worker_log, web_log = tmp_path / "worker.log", tmp_path / "web.log"
    worker = _start(
        [str(BIN / "celery"), "-A", "kamen_portal", "--quiet", "worker", "--pool=solo",
         "--loglevel=INFO", "-Q", queues, "--without-gossip", "--without-mingle",
         "--without-heartbeat"],
        env, worker_log,
    )  # fmt: skip
    web = _start(
        [str(BIN / "gunicorn"), "-c", "python:kamen_portal.gunicorn_conf",
         "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env, web_log,
    )  # fmt: skip
    try:

        def up():
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                    return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        assert wait_until(up, timeout=60), web_log.read_text()[-3000:]
        assert wait_until(lambda: "worker ready" in worker_log.read_text(), timeout=60)

        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

        def get(path, request_id=None):
            headers = {"X-Request-ID": request_id} if request_id else {}
            request = urllib.request.Request(base + path, headers=headers)
            try:
                with opener.open(request, timeout=10) as response:
                    return response.status, response.headers, response.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.headers, exc.read().decode()

        status, headers, _ = get("/healthz", "eco-req-42")
        assert (status, headers["X-Request-ID"]) == (200, "eco-req-42")
        status, headers, _ = get("/ledger/", "bad id!")
        generated = headers["X-Request-ID"]
        assert status == 200 and re.fullmatch(r"[0-9a-f]{32}", generated)
        assert get("/no-such-page/", "eco-req-404")[0] == 404
        # A request that queues a task: an anonymous status subscription
        # e-mails a confirmation link from the worker.
        _, _, page = get("/status/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "email": "log@example.com"})
        request = urllib.request.Request(
            f"{base}/status/subscribe/",
            data=form.encode(),
            headers={"X-Request-ID": "eco-req-43", "Referer": f"{base}/status/"},
        )
        with opener.open(request, timeout=10) as response:
            assert response.status == 200
        assert wait_until(lambda: "eco-req-43" in worker_log.read_text(), timeout=90), (
            worker_log.read_text()[-3000:]
        )
    finally:
        _stop(web)
        _stop(worker)

    web_lines, worker_lines = _lines(web_log), _lines(worker_log)
    access = {r["request_id"]: r for r in web_lines if r["logger"] == "gunicorn.access"}
    assert access["eco-req-42"]["path"] == "/healthz" and access["eco-req-42"]["status"] == "200"
    assert access[generated]["path"] == "/ledger/"
    assert access["eco-req-404"]["status"] == "404"
    assert any(
        r["logger"] == "django.request" and r["request_id"] == "eco-req-404" for r in web_lines
    )
    assert any(r["message"] == "Starting gunicorn " + r["message"].split()[-1] for r in web_lines)
    task_lines = [r for r in worker_lines if r["request_id"] == "eco-req-43"]
    assert task_lines, worker_lines[-5:]
    assert any(r["message"] == "worker ready" for r in worker_lines)
    # Lines outside any request carry none.
    assert any(r["request_id"] == "-" for r in worker_lines)
