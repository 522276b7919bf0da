"""The processes of the fault campaign, each on its own loopback port in the
chosen range, each restartable: PostgreSQL (fsync on: it is crash-restarted),
Redis with an always-fsynced AOF, the SMTP sink, gunicorn, two Celery workers
(split along the queue routing) and beat."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from ..harness import BIN, ROOT, log, process_tree
from ..measure import _read_stat

PGBIN = Path(
    os.environ.get("PGBIN")
    or sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)[-1]
)

# Worker "fast": the detection pass, the default queue and e-mail. Worker
# "bulk": payouts and exports (the one killed mid-payout).
WORKER_QUEUES = {
    "fast": "detection,celery,notifications",
    "bulk": "payouts,exports",
}


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class Postgres:
    def __init__(self, workdir: Path, port: int):
        self.dir = workdir / "pg"
        self.port = port
        self.url = f"postgres://postgres@127.0.0.1:{port}/kamen"

    def _ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            _as_postgres([str(PGBIN / "pg_ctl"), "-D", str(self.dir), *args]),
            check=check,
            capture_output=True,
            timeout=120,
        )

    def init(self) -> None:
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.dir.parent, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                [str(PGBIN / "initdb"), "-D", str(self.dir), "-U", "postgres", "--auth=trust"]
                + ["-E", "UTF8", "--locale=C.UTF-8"]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        # Schema and seed data without fsync (minutes of migrations on a busy
        # machine); ``durable`` switches it on before any fault.
        self.start(fsync=False)
        subprocess.run(
            _as_postgres([str(PGBIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port)])
            + ["-U", "postgres", "kamen"],
            check=True,
            capture_output=True,
        )

    def start(self, *, fsync: bool = True) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
            f"-c max_connections=100 -c fsync={'on' if fsync else 'off'} -c synchronous_commit=on"
        )
        self._ctl("-l", str(self.dir / "server.log"), "-w", "-o", options, "start")

    def durable(self) -> None:
        """A clean stop (everything written out), then fsync on for good."""
        self._ctl("-m", "fast", "-w", "stop")
        subprocess.run(["sync"], check=False)
        self.start()

    def restart(self) -> None:
        """A crash (immediate stop: no checkpoint, WAL recovery at start)."""
        self._ctl("-m", "immediate", "-w", "stop", check=False)
        self.start()

    def stop(self) -> None:
        self._ctl("-m", "immediate", "-w", "stop", check=False)


class Daemon:
    """One restartable child process in its own process group."""

    def __init__(self, name: str, args: list[str], log_path: Path, port: int | None = None):
        self.name, self.args, self.log_path, self.port = name, args, log_path, port
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> None:
        """Start and, for a server, wait until it listens. A server that exits
        at once is started again: our ports lie in Linux's ephemeral range, so
        a short-lived client connection may hold the port for a moment."""
        deadline = time.monotonic() + timeout
        while True:
            self.proc = subprocess.Popen(
                self.args,
                cwd=ROOT,
                stdout=self.log_path.open("a"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            if not self.port:
                return
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return
                except OSError:
                    time.sleep(0.1)
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{self.name} is not listening on {self.port}")
            time.sleep(1.0)  # it exited: try again

    def kill(self) -> None:
        """SIGKILL to the whole group: a crash, nothing cleaned up."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def children(self) -> list[int]:
        """Direct children (gunicorn's workers), from /proc."""
        if not self.proc:
            return []
        return [
            p for p in process_tree(self.proc.pid) if (_read_stat(p) or ("", 0))[1] == self.proc.pid
        ]


def free_ports(base: int, count: int) -> list[int]:
    """``count`` ports from ``base`` up that nothing holds now."""
    found: list[int] = []
    port = base
    while len(found) < count:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                found.append(port)
            except OSError:
                pass
        port += 1
    return found


class Stack:
    def __init__(self, workdir: Path, base_port: int):
        pg_port, self.redis_port, self.smtp_port, self.web_port = free_ports(base_port, 4)
        self.workdir = workdir
        # Held by whoever kills or restarts an application process (faults,
        # the supervisor), so they never both start one.
        self.lock = threading.RLock()
        self.restarts: Counter = Counter()
        self.stopping = False
        self.pg = Postgres(workdir, pg_port)
        redis_dir = workdir / "redis"
        redis_dir.mkdir()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.redis = Daemon(
            "redis",
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port)]
            + ["--dir", str(redis_dir), "--save", "", "--appendonly", "yes"]
            + ["--appendfsync", "always"],
            workdir / "redis.log",
            self.redis_port,
        )
        self.sink_file = workdir / "sink.jsonl"
        self.sink = Daemon(
            "sink",
            [
                sys.executable,
                "-m",
                "benchmarks.chaos.sink",
                str(self.smtp_port),
                str(self.sink_file),
            ],
            workdir / "sink.log",
            self.smtp_port,
        )
        self.web = Daemon(
            "gunicorn",
            [str(BIN / "gunicorn"), "kamen_portal.wsgi", "-w", "2", "-b"]
            + [f"127.0.0.1:{self.web_port}", "--log-level", "warning", "--timeout", "60"],
            workdir / "gunicorn.log",
            self.web_port,
        )
        celery = [str(BIN / "celery"), "-A", "kamen_portal"]
        self.workers = {
            name: Daemon(
                f"worker-{name}",
                celery
                + ["worker", "-Q", queues, "-n", f"{name}@chaos", "--loglevel=WARNING"]
                + ["--without-gossip", "--without-mingle"]
                + (["--pool=prefork", "-c", "2"] if name == "bulk" else ["--pool=solo"]),
                workdir / f"worker-{name}.log",
            )
            for name, queues in WORKER_QUEUES.items()
        }
        self.beat = Daemon(
            "beat",
            celery + ["beat", "--loglevel=WARNING", "-s", str(workdir / "beat-schedule")],
            workdir / "beat.log",
        )

    def environment(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis_url,
            "EMAIL_URL": f"smtp://127.0.0.1:{self.smtp_port}",
            # Event time runs 20 times faster than the wall clock here; the
            # e-mail back-off is capped at a minute of wall time to match
            # (the production default, 15 minutes, is its own setting).
            "EMAIL_RETRY_MAX_DELAY": "60",
            "MEDIA_ROOT": str(self.workdir / "media"),
        }

    def start_data(self) -> None:
        log(f"chaos: PostgreSQL on {self.pg.port}, Redis (AOF, fsync always) on {self.redis_port}")
        self.pg.init()
        self.redis.start()
        self.sink.start()

    def start_app(self) -> None:
        log(f"chaos: gunicorn on {self.web_port}, workers {WORKER_QUEUES}, beat")
        self.web.start()
        for worker in self.workers.values():
            worker.start()
        self.beat.start()

    def supervised(self) -> list[Daemon]:
        return [self.web, *self.workers.values(), self.beat]

    def supervise(self) -> None:
        """What systemd's Restart= does in production (docs/deployment.md
        section 6): start again any application process that exited."""
        with self.lock:
            if self.stopping:
                return
            for daemon in self.supervised():
                if daemon.proc is not None and daemon.proc.poll() is not None:
                    self.restarts[daemon.name] += 1
                    log(f"chaos: {daemon.name} exited ({daemon.proc.returncode}); restarting it")
                    daemon.start()

    def stop_all(self) -> None:
        with self.lock:
            self.stopping = True
        for daemon in [self.beat, *self.workers.values(), self.web, self.sink, self.redis]:
            try:
                daemon.stop()
            except Exception as exc:  # noqa: BLE001 - shut down as much as we can
                log(f"chaos: stopping {daemon.name}: {exc!r}")
        self.pg.stop()
