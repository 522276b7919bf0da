"""End to end: the reference agent against the real portal (gunicorn on a free
loopback port, its own throwaway SQLite database), through an outage.

40 members beat every 10 s of event time for 25 minutes (6,000 heartbeats,
event times compressed: the run takes seconds). The portal is up for the
first 8 minutes of events, **down for the next 10** (gunicorn stopped; a
detection pass runs meanwhile, as workers keep running when the web is down),
and the agent is killed with SIGKILL and restarted in the middle of the
outage; then the portal comes back and the rest flows.

A recording proxy between agent and portal sees every request and answer.
Afterwards: every heartbeat the node produced was accepted exactly once, in
event-time order across all requests, and a detection pass finds no
disconnect and no incident.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kamen_node_agent.sources import send_lines

from tests.workers import embedded_portal_env, run_manage

ROOT = Path(__file__).resolve().parents[2]
AGENT_SRC = ROOT / "node_agent" / "src"
BIN = Path(sys.executable).parent
MEMBERS = 40
TICK = timedelta(seconds=10)
TICKS = 150  # 25 minutes of event time
PORTAL_DOWN = range(50, 110)  # ticks 50..109: ten minutes of event time
AGENT_CRASH_AT = 80


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RecordingProxy:
    """Forwards to the portal and records each request's heartbeats with the
    portal's status. When the portal is down it drops the connection, as a
    dead upstream would, so the agent sees a network failure."""

    def __init__(self, upstream_port: int):
        self.upstream = f"http://127.0.0.1:{upstream_port}"
        self.exchanges: list[tuple[int, list[dict]]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = urllib.request.Request(  # noqa: S310 - loopback http
                    proxy.upstream + self.path,
                    data=body,
                    method="POST",
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                        status, raw, headers = response.status, response.read(), response.headers
                except urllib.error.HTTPError as error:
                    status, raw, headers = error.code, error.read(), error.headers
                except OSError:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                with proxy.lock:
                    proxy.exchanges.append((status, json.loads(body)["heartbeats"]))
                self.send_response(status)
                for key in ("Content-Type", "Retry-After"):
                    if headers.get(key):
                        self.send_header(key, headers[key])
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[dict]:
        with self.lock:
            return [h for status, batch in self.exchanges if status == 202 for h in batch]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Portal:
    """The real portal: gunicorn over a throwaway SQLite database, plus
    manage.py for setup and detection, all with the same environment."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = _free_port()
        self.env = embedded_portal_env(workdir)
        self.web: subprocess.Popen | None = None

    def manage(self, *args: str, timeout: float = 180) -> str:
        return run_manage(self.env, *args, timeout=timeout)

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code)

    def start(self) -> None:
        log = (self.workdir / "gunicorn.log").open("ab")
        self.web = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "kamen_portal.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--timeout",
                "60",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.web.poll() is None, (self.workdir / "gunicorn.log").read_text()[-2000:]
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2)  # noqa: S310
                return
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer")

    def stop(self) -> None:
        if self.web is not None and self.web.poll() is None:
            os.killpg(self.web.pid, signal.SIGTERM)
            try:
                self.web.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.web.pid, signal.SIGKILL)
                self.web.wait(timeout=10)
        self.web = None


class Agent:
    def __init__(self, workdir: Path, proxy_port: int, token: str):
        self.workdir = workdir
        self.socket = str(workdir / "agent.sock")
        self.args = [
            sys.executable,
            "-m",
            "kamen_node_agent",
            "--portal",
            f"http://127.0.0.1:{proxy_port}",
            "--buffer",
            str(workdir / "agent-buffer.sqlite3"),
            "--socket",
            self.socket,
            "--max-backoff",
            "1",
            "--timeout",
            "10",
        ]
        self.env = {**os.environ, "PYTHONPATH": str(AGENT_SRC), "KAMEN_NODE_TOKEN": token}
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = (self.workdir / "agent.log").open("ab")
        self.proc = subprocess.Popen(
            self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 30
        while not os.path.exists(self.socket):
            assert self.proc.poll() is None, (self.workdir / "agent.log").read_text()
            assert time.monotonic() < deadline, "the agent did not open its socket"
            time.sleep(0.05)

    def kill(self) -> None:
        """A crash: no chance to clean up."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)  # the crashed agent's stale socket

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)


def _wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def stack(tmp_path):
    portal = Portal(tmp_path)
    portal.manage("migrate", "--noinput", "--verbosity", "0")
    numbers = json.loads(
        portal.shell(
            "import json; from django.utils import timezone; "
            "from benchmarks.data import ensure_members; "
            f"print(json.dumps([m.member_no for m in ensure_members({MEMBERS}, now=timezone.now())]))"
        )
        .strip()
        .splitlines()[-1]
    )
    token = portal.manage("create_node", "agent-e2e-node").strip().splitlines()[-1]
    portal.start()
    proxy = RecordingProxy(portal.port)
    agent = Agent(tmp_path, proxy.port, token)
    try:
        yield portal, proxy, agent, numbers
    finally:
        agent.stop()
        proxy.close()
        portal.stop()


def _detect_and_count(portal: Portal) -> dict:
    out = portal.shell(
        "import json; from django.utils import timezone; "
        "from compensation.services.detection import detection_run; "
        "from compensation.models import Disconnect, Incident; "
        "detection_run(now=timezone.now()); "
        "print(json.dumps({'disconnects': Disconnect.objects.count(), "
        "'incidents': Incident.objects.count()}))"
    )
    return json.loads(out.strip().splitlines()[-1])


def test_agent_replays_a_ten_minute_outage_and_a_crash_in_order_without_loss(stack):
    portal, proxy, agent, numbers = stack
    start = datetime.now(UTC).replace(microsecond=0) - TICK * TICKS - timedelta(minutes=1)
    produced: list[str] = []

    def feed(ticks):
        lines = []
        for tick in ticks:
            at = (start + TICK * tick).isoformat()
            for member in numbers:
                lines.append(json.dumps({"member": member, "session": f"s-{member}", "at": at}))
                produced.append(f"{member}|{at}")
        send_lines(agent.socket, lines)  # returns once the agent has them on disk

    agent.start()
    # Up: the first 8 minutes of events flow.
    feed(range(0, PORTAL_DOWN.start))
    _wait_until(lambda: len(proxy.accepted()) == len(produced), 60, "the first events")

    # Down for 10 minutes of event time; the agent crashes half-way and restarts.
    portal.stop()
    feed(range(PORTAL_DOWN.start, AGENT_CRASH_AT))
    during_outage = _detect_and_count(portal)  # workers keep running
    agent.kill()
    agent.start()
    feed(range(AGENT_CRASH_AT, PORTAL_DOWN.stop))
    time.sleep(1.5)  # the agent retries meanwhile (back-off capped at 1 s)
    accepted_while_down = len(proxy.accepted())

    # Back up: the buffer replays, then live events follow.
    portal.start()
    feed(range(PORTAL_DOWN.stop, TICKS))
    _wait_until(lambda: len(proxy.accepted()) >= len(produced), 90, "the replay")
    after = _detect_and_count(portal)

    accepted = proxy.accepted()
    sent_keys = [f"{h['member']}|{datetime.fromisoformat(h['at']).isoformat()}" for h in accepted]
    times = [datetime.fromisoformat(h["at"]) for h in accepted]
    assert accepted_while_down == PORTAL_DOWN.start * MEMBERS  # nothing got through the outage
    assert len(sent_keys) == len(set(sent_keys)) == MEMBERS * TICKS  # none lost, none twice
    assert set(sent_keys) == set(produced)
    assert times == sorted(times)  # event-time order across every request
    assert all(len(batch) <= 1000 for _, batch in proxy.exchanges)
    assert all(status in (202,) for status, _ in proxy.exchanges)
    assert during_outage == {"disconnects": 0, "incidents": 0}
    assert after == {"disconnects": 0, "incidents": 0}  # no false disconnect
