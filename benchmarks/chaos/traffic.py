"""The campaign's moving parts while it runs: the heartbeat load generator,
the appeal filer and decider, and the fault injector."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis

from ..harness import log
from .plan import APPEAL_MINUTES, DROP_NODE, ROUND_EVENT_S, ROUND_WALL_S, Plan
from .procs import Stack

PATH = "/api/v1/heartbeats/"


@dataclass
class Shared:
    t0: float  # monotonic start of traffic
    e0: datetime  # event time of round 0
    stop: threading.Event = field(default_factory=threading.Event)
    in_flight: threading.Event = field(default_factory=threading.Event)
    request_errors: int = 0
    interrupted_requests: int = 0
    accepted: int = 0
    rounds_sent: int = 0
    problems: list[str] = field(default_factory=list)

    def event_time(self, r: int) -> datetime:
        return self.e0 + timedelta(seconds=r * ROUND_EVENT_S)


class LoadGenerator(threading.Thread):
    """Every round, each live node posts one batch with a beat of each of its
    sessions that is not in a planned drop, all at the round's event time,
    and re-sends it until it gets a 202 (crashes, restarts, a killed web
    worker): what a real node's agent does."""

    def __init__(self, plan: Plan, shared: Shared, port: int, nodes, numbers):
        super().__init__(daemon=True, name="load")
        self.plan, self.shared, self.port = plan, shared, port
        self.nodes, self.numbers = nodes, numbers  # [(node, token)], [[member_no per node]]

    def post(self, token: str, body: bytes) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.shared.in_flight.set()
        try:
            conn.request(
                "POST",
                PATH,
                body=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            data = response.read()
            return response.status, (json.loads(data) if response.status == 202 else {})
        except (OSError, http.client.HTTPException):
            self.shared.interrupted_requests += 1
            return 0, {}
        finally:
            self.shared.in_flight.clear()
            conn.close()

    def run(self) -> None:
        for r in range(self.plan.rounds):
            delay = self.shared.t0 + r * ROUND_WALL_S - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            at = self.shared.event_time(r).isoformat()
            for n, (_node, token) in enumerate(self.nodes):
                if self.plan.node_silent(n, r):
                    continue
                items = [
                    {"member": no, "session": f"s-{no}", "at": at, "state": "alive"}
                    for i, no in enumerate(self.numbers[n])
                    if not (n == DROP_NODE and self.plan.member_silent(i, r))
                ]
                body = json.dumps({"heartbeats": items}).encode()
                for _attempt in range(600):
                    status, answer = self.post(token, body)
                    if status == 202:
                        self.shared.accepted += answer["accepted"]
                        if answer["rejected"]:
                            self.shared.problems.append(
                                f"round {r} node {n}: {answer['rejected'][:2]}"
                            )
                        break
                    self.shared.request_errors += 1
                    time.sleep(0.5)
                else:
                    self.shared.problems.append(f"round {r} node {n}: never accepted")
            self.shared.rounds_sent = r + 1
        log(f"chaos: load generator done, {self.shared.accepted:,} heartbeats accepted")


def retrying(fn, what: str, attempts: int = 120):
    """Run a Django call until the database is back (a PostgreSQL restart)."""
    from django.db import close_old_connections
    from django.db.utils import InterfaceError, OperationalError

    for _ in range(attempts):
        try:
            return fn()
        except (OperationalError, InterfaceError):
            close_old_connections()
            time.sleep(1.0)
    raise RuntimeError(f"{what}: the database never came back")


def _png():
    """A real screenshot upload (what the appeal form requires)."""
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (640, 360), (40, 90, 160)).save(buffer, format="PNG")
    return SimpleUploadedFile("screen.png", buffer.getvalue(), content_type="image/png")


class Appeals(threading.Thread):
    """Members of the drop node appeal a minute that detection did not see;
    a supervisor approves the 4 minutes. Filing and deciding are retried
    across database restarts (a resubmission with the same token returns the
    first appeal; a decided appeal is not decided again)."""

    def __init__(self, plan: Plan, shared: Shared, members, node, staff):
        super().__init__(daemon=True, name="appeals")
        self.plan, self.shared, self.members, self.node, self.staff = (
            plan,
            shared,
            members,
            node,
            staff,
        )
        self.decided = 0

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - a discrepancy, not a silent thread death
            self.shared.problems.append(f"appeals stopped: {exc!r}")
            raise

    def _run(self) -> None:
        from django.utils import timezone

        from appeals.evidence import clean_screenshot
        from appeals.models import Appeal, AppealStatus
        from appeals.services import AppealError, appeal_approve, appeal_submit

        screenshot = clean_screenshot(_png())

        due = sorted((r + APPEAL_MINUTES + 2, i, r) for i, r in self.plan.appeals.items())
        for ready_round, i, r in due:
            while self.shared.rounds_sent < ready_round and not self.shared.stop.is_set():
                time.sleep(0.5)
            member = self.members[i]
            start = self.shared.event_time(r)
            token = uuid.uuid5(uuid.NAMESPACE_URL, f"chaos-appeal-{self.plan.seed}-{i}")

            def file(member=member, start=start, token=token):
                return appeal_submit(
                    member=member,
                    actor=member.user,
                    claimed_start=start,
                    claimed_end=start + timedelta(minutes=APPEAL_MINUTES),
                    description="Chaos campaign: a short drop the node did not report.",
                    files=[screenshot],
                    submission_token=token,
                    now=timezone.now(),
                    node=self.node,
                )

            appeal = retrying(file, f"appeal of member {i}")

            def decide(appeal=appeal, i=i):
                fresh = Appeal.objects.get(pk=appeal.pk)
                if fresh.status == AppealStatus.APPROVED:
                    return fresh
                try:
                    return appeal_approve(
                        appeal=fresh,
                        staff=self.staff,
                        minutes=APPEAL_MINUTES,
                        reason="Chaos traffic: approved.",
                        now=timezone.now(),
                    )
                except AppealError as exc:
                    self.shared.problems.append(f"appeal of member {i}: {exc}")
                    return fresh

            retrying(decide, f"decision on member {i}")
            self.decided += 1
        log(f"chaos: {self.decided} appeals filed and approved")


def _socket_owner(client_port: int, server_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the server side of our loopback connection
    (from /proc/net/tcp and each process's open sockets)."""
    wanted = f"0100007F:{server_port:04X} 0100007F:{client_port:04X}"
    inode = None
    with contextlib.suppress(OSError), open("/proc/net/tcp") as table:
        for line in table:
            fields = line.split()
            if len(fields) > 9 and f"{fields[1]} {fields[2]}" == wanted:
                inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return pid
    return None


class Supervisor(threading.Thread):
    def __init__(self, shared: Shared, stack: Stack):
        super().__init__(daemon=True, name="supervisor")
        self.shared, self.stack = shared, stack

    def run(self) -> None:
        while not self.shared.stop.is_set():
            try:
                self.stack.supervise()
            except Exception as exc:  # noqa: BLE001 - keep supervising
                log(f"chaos: supervisor: {exc!r}")
            time.sleep(1.0)


class Faults(threading.Thread):
    """At the planned moments: kill -9 the bulk worker while it holds a
    payout message, kill -9 a gunicorn worker while a request is in flight,
    crash-restart Redis and PostgreSQL, take the SMTP sink down."""

    def __init__(self, plan: Plan, shared: Shared, stack: Stack, token: str):
        super().__init__(daemon=True, name="faults")
        self.plan, self.shared, self.stack, self.token = plan, shared, stack, token
        self.rng = random.Random(plan.seed + 1)
        self.done: dict[str, int] = {}
        self.notes: dict[str, int] = {"mid_payout": 0, "mid_request": 0}
        self.smtp_outages: list[float] = []  # seconds each outage lasted
        # The sink and the tallies, touched from the SMTP outage timers too.
        self.lock = threading.Lock()

    def run(self) -> None:
        # SMTP outages run on their own timers: a fault that takes a while
        # (waiting for a payout in hand) must not push one outage into the next.
        timers = [
            threading.Timer(max(0.0, self.shared.t0 + at - time.monotonic()), self._inject, (kind,))
            for at, kind in self.plan.faults
            if kind == "smtp_down"
        ]
        for timer in timers:
            timer.start()
        for at, kind in self.plan.faults:
            if kind == "smtp_down":
                continue
            delay = self.shared.t0 + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._inject(kind)
        for timer in timers:
            timer.join()
        log(f"chaos: faults injected {self.done} ({self.notes})")

    def _inject(self, kind: str) -> None:
        try:
            getattr(self, kind)()
            with self.lock:
                self.done[kind] = self.done.get(kind, 0) + 1
        except Exception as exc:  # noqa: BLE001 - reported, never silently lost
            self.shared.problems.append(f"fault {kind} failed: {exc!r}")

    def _payout_in_hand(self) -> bool:
        try:
            client = redis.Redis.from_url(self.stack.redis_url, socket_timeout=2)
            try:
                return any(
                    b'"payouts"' in raw or b"pay_incident" in raw or b"compensate_disconnect" in raw
                    for raw in client.hvals("unacked")
                )
            finally:
                client.close()
        except redis.RedisError:
            return False

    def kill_worker_mid_payout(self) -> None:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not self._payout_in_hand():
            time.sleep(0.1)
        if self._payout_in_hand():
            self.notes["mid_payout"] += 1
        worker = self.stack.workers["bulk"]
        with self.stack.lock:
            worker.kill()
            time.sleep(1.0)
            worker.start()

    def kill_web_worker(self) -> None:
        """Open a request and send half its body, so a sync worker sits inside
        it; kill -9 a worker at random until it is the one holding ours (our
        connection drops). A real node token, so the view is reached and
        blocks reading the body; the body never completes, so it is refused
        whole (400) if its worker survives. The load generator's own requests
        die too, and are re-sent."""
        for _attempt in range(20):
            sock = socket.create_connection(("127.0.0.1", self.stack.web_port), timeout=5)
            try:
                sock.sendall(
                    f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {self.token}\r\n"
                    "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
                )
                time.sleep(0.3)  # a worker has accepted it and waits for the rest
                workers = self.stack.web.children()
                if not workers:
                    time.sleep(1.0)
                    continue
                holder = _socket_owner(sock.getsockname()[1], self.stack.web_port, workers)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(holder or self.rng.choice(workers), signal.SIGKILL)
                sock.settimeout(2.0)
                try:
                    dropped = sock.recv(1) == b""
                except (ConnectionResetError, TimeoutError, OSError) as exc:
                    dropped = not isinstance(exc, TimeoutError)
                if dropped:
                    self.notes["mid_request"] += 1
                    return
            finally:
                sock.close()
            time.sleep(1.0)  # the master replaces the killed worker

    def restart_redis(self) -> None:
        self.stack.redis.kill()
        time.sleep(1.0)
        self.stack.redis.start()

    def restart_postgres(self) -> None:
        self.stack.pg.restart()

    def smtp_down(self) -> None:
        """The sink is killed (connections refused) and started again a full
        minute later; each outage's measured length is reported."""
        with self.lock:
            self.stack.sink.kill()
            started = time.monotonic()

        def back() -> None:
            with self.lock:
                if self.stack.stopping:
                    return
                self.stack.sink.start()
                self.smtp_outages.append(round(time.monotonic() - started, 1))

        threading.Timer(self.plan.smtp_down_s, back).start()
