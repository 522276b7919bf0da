"""Real processes for the monitoring end-to-end test: the portal (gunicorn over
a throwaway SQLite database), Debian's ``prometheus`` and
``prometheus-alertmanager`` with the shipped rules and route, and a service
node that beats for its members and answers Prometheus's scrapes.

Every process gets free loopback ports and its own files under the test's
temporary directory; nothing listens beyond 127.0.0.1 (Alertmanager's gossip
is off)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from tests.workers import embedded_portal_env, run_manage

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NODE_RULES = ROOT / "deploy" / "prometheus" / "kamen-node-alerts.example.yml"
ROUTE = ROOT / "deploy" / "alertmanager" / "kamen-receiver.yml"
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def binary(name: str, default: str) -> str | None:
    """The Debian binary, or the one on PATH; None when neither exists."""
    if os.access(default, os.X_OK):
        return default
    return shutil.which(name)


def wait_until(predicate, *, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except OSError:
        return False


class Process:
    """One child process in its own process group, logging to a file."""

    def __init__(self, name: str, args: list[str], *, workdir: Path, env=None, cwd=None):
        self.name, self.args, self.env, self.cwd = name, args, env, cwd
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def wait_ready(self, url: str, timeout: float = 60) -> None:
        def ready():
            assert self.alive(), f"{self.name} exited:\n{self.log_tail()}"
            return http_ok(url)

        wait_until(ready, timeout=timeout, what=f"{self.name} at {url}")

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class Portal:
    """gunicorn over a throwaway SQLite database (the embedded heartbeat
    store), payouts run in the request (eager Celery), plus ``manage.py``
    with the same environment for setup and read-outs."""

    def __init__(self, workdir: Path, *, alertmanager_token: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = embedded_portal_env(
            workdir,
            CELERY_TASK_ALWAYS_EAGER="true",
            ALERTMANAGER_TOKEN=alertmanager_token,
        )
        self.web = Process(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                "kamen_portal.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--threads",
                "4",
                "--timeout",
                "60",
                "--no-control-socket",  # not one shared ~/.gunicorn socket
            ],
            workdir=workdir,
            env=self.env,
            cwd=ROOT,
        )

    def manage(self, *args: str, timeout: float = 180) -> str:
        return run_manage(self.env, *args, timeout=timeout)

    def shell_json(self, code: str):
        """Run ``code`` in ``manage.py shell``; it prints one JSON line last."""
        return json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])

    def start(self) -> None:
        self.web.start()
        self.web.wait_ready(f"{self.url}/healthz")

    def stop(self) -> None:
        self.web.stop()


class ServiceNode:
    """A service node: beats for its members' sessions to the portal every
    ``every`` seconds (event time = now) and serves ``/metrics`` for
    Prometheus's ``service-nodes`` job. ``stop()`` is the node going down:
    no more beats and its scrape port refuses connections; ``start()``
    brings both back on the same port."""

    def __init__(self, portal_url: str, token: str, members: list[str], *, every: float = 2.0):
        self.portal_url, self.token, self.members, self.every = portal_url, token, members, every
        self.port = free_port()
        self.accepted: list[datetime] = []  # event times of batches the portal accepted
        self.errors: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _serve_metrics(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"# TYPE kamen_test_node_sessions gauge\nkamen_test_node_sessions 4\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _beat_once(self) -> None:
        at = datetime.now(UTC).replace(microsecond=0)
        body = json.dumps(
            {
                "heartbeats": [
                    {"member": m, "session": f"s-{m}", "at": at.isoformat(), "state": "alive"}
                    for m in self.members
                ]
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback http
            f"{self.portal_url}/api/v1/heartbeats/",
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                answer = json.loads(response.read())
            if response.status == 202 and answer["accepted"] == len(self.members):
                self.accepted.append(at)
            else:
                self.errors.append(f"{response.status} {answer}")
        except (OSError, urllib.error.HTTPError) as exc:
            self.errors.append(repr(exc))

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            self._beat_once()

    def start(self) -> None:
        # The first beat is stamped before the scrape port opens: the node
        # serves members no later than Prometheus can see it up again.
        self._stop.clear()
        self._beat_once()
        self._serve_metrics()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class Alertmanager:
    """``prometheus-alertmanager`` with the shipped route and receiver
    (deploy/alertmanager/kamen-receiver.yml) as is, except where the portal
    is: the webhook URL and the token file."""

    def __init__(self, workdir: Path, *, portal_url: str, token: str, executable: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        token_file = workdir / "kamen-portal-token"
        token_file.write_text(token)
        config = yaml.safe_load(ROUTE.read_text())
        (receiver,) = [r for r in config["receivers"] if r["name"] == "kamen-portal"]
        (webhook,) = receiver["webhook_configs"]
        webhook["url"] = f"{portal_url}/api/v1/alerts/alertmanager/"
        webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
        self.config = config
        config_file = workdir / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        (workdir / "alertmanager-data").mkdir()
        self.process = Process(
            "alertmanager",
            [
                executable,
                f"--config.file={config_file}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # no gossip port
            ],
            workdir=workdir,
        )

    def start(self) -> None:
        self.process.start()
        self.process.wait_ready(f"{self.url}/-/ready")

    def stop(self) -> None:
        self.process.stop()


class Prometheus:
    """``prometheus`` evaluating the shipped node rules
    (deploy/prometheus/kamen-node-alerts.example.yml, unchanged) every
    second, scraping the node every second as job ``service-nodes`` with its
    instance relabelled to ``<portal name>:<port>`` (the rule derives
    ``kamen_node`` from it), and alerting the Alertmanager."""

    def __init__(
        self,
        workdir: Path,
        *,
        node_name: str,
        node_port: int,
        alertmanager_port: int,
        executable: str,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(NODE_RULES)],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}
                ]
            },
            "scrape_configs": [
                {
                    "job_name": "service-nodes",
                    "static_configs": [{"targets": [f"127.0.0.1:{node_port}"]}],
                    "relabel_configs": [
                        {"target_label": "instance", "replacement": f"{node_name}:{node_port}"}
                    ],
                }
            ],
        }
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        self.process = Process(
            "prometheus",
            [
                executable,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            workdir=workdir,
        )

    def start(self) -> None:
        self.process.start()
        self.process.wait_ready(f"{self.url}/-/ready")

    def query(self, expr: str) -> list[dict]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return json.loads(response.read())["data"]["result"]

    def alerts(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/api/v1/alerts", timeout=5) as response:  # noqa: S310
            return json.loads(response.read())["data"]["alerts"]

    def stop(self) -> None:
        self.process.stop()
