"""What the benchmarks share: services, environment, child processes, /proc
sampling and the result files.

Nothing here imports Django at module level: ``__main__`` configures the
environment (database, Redis, DEBUG=false) before Django reads its settings.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .measure import (  # noqa: F401  (benchmarks import them from here)
    TreeMemorySampler,
    cpu_by_command,
    cpu_snapshot,
    load_average,
    memory_kb,
    percentile,
    process_tree,
    pss_kb,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
SERVICES_SH = ROOT / "scripts" / "services.sh"
# The venv's console scripts (gunicorn, celery) sit next to its python.
BIN = Path(sys.executable).parent


_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - _STARTED:6.1f}s] {message}", flush=True)


# --- services -----------------------------------------------------------------


@dataclass
class Services:
    database_url: str
    redis_url: str
    own: bool  # started by us (throwaway) rather than given in the environment


@contextlib.contextmanager
def services() -> Iterator[Services]:
    """DATABASE_URL and REDIS_URL from the environment when both are set;
    otherwise a throwaway pair from scripts/services.sh, stopped and deleted
    on the way out whatever happens in between."""
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if database_url and redis_url:
        log("using DATABASE_URL and REDIS_URL from the environment")
        yield Services(database_url, redis_url, own=False)
        return
    if database_url or redis_url:
        log("only one of DATABASE_URL / REDIS_URL is set: starting a throwaway pair instead")
    data_dir = tempfile.mkdtemp(prefix="kamen-bench-services-")
    try:
        log(f"starting throwaway PostgreSQL and Redis in {data_dir}")
        started = subprocess.run(
            ["bash", str(SERVICES_SH), "start", data_dir],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if started.returncode != 0:
            sys.stderr.write(started.stderr)
            raise RuntimeError("scripts/services.sh start failed")
        exported = {}
        for line in started.stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                key, _, value = line.removeprefix("export ").partition("=")
                exported[key] = value
        yield Services(exported["DATABASE_URL"], exported["REDIS_URL"], own=True)
    finally:
        subprocess.run(
            ["bash", str(SERVICES_SH), "stop", data_dir],
            capture_output=True,
            timeout=180,
            check=False,
        )
        shutil.rmtree(data_dir, ignore_errors=True)
        log("throwaway services stopped")


def configure_environment(svc: Services) -> None:
    """The environment of this process and of every server it starts.

    DEBUG=false everywhere we measure: with DEBUG on, Django keeps every SQL
    query in memory and the numbers would mean nothing.
    """
    os.environ["DATABASE_URL"] = svc.database_url
    os.environ["REDIS_URL"] = svc.redis_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "kamen_portal.settings"
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1"
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    # The per-node throttle is a safety net against a runaway node; the
    # benchmark pushes a few nodes far past any real node's rate on purpose.
    os.environ["NODE_THROTTLE_RATE"] = "1000000/minute"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Members are notified of every credit by e-mail, after commit, in their
    # own tasks. The benchmark does not measure an SMTP server, and the
    # console backend would print 100,000 e-mails into the worker's log.
    os.environ["EMAIL_URL"] = "dummymail://"


def migrate(timeout: float = 900) -> None:
    log("manage.py migrate")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        check=True,
        timeout=timeout,
    )


def purge_task_queue() -> int:
    """Drop queued Celery messages, so one benchmark's enqueued work (detection
    enqueues compensation tasks) never runs inside another's measurement."""
    from kamen_portal.celery import app

    return app.control.purge() or 0


def queued_tasks(limit: int = 100_000) -> dict[str, int]:
    """Messages waiting in the Celery queues (a Redis list each), by task name."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        messages = [
            m for queue in settings.CELERY_QUEUES_ALL for m in client.lrange(queue, 0, limit - 1)
        ]
    finally:
        client.close()
    counts: dict[str, int] = {}
    for raw in messages:
        name = json.loads(raw).get("headers", {}).get("task", "?")
        counts[name] = counts.get(name, 0) + 1
    return counts


# --- child processes ------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_process(args: list[str], log_path: Path) -> subprocess.Popen:
    """Start a server in its own session (process group), so stopping it also
    reaches the workers it forked, and only them."""
    handle = open(log_path, "ab")  # noqa: SIM115 - closed by stop_process
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    proc._bench_log = handle  # type: ignore[attr-defined]
    return proc


def stop_process(proc: subprocess.Popen, *, grace: float = 30.0) -> None:
    """TERM (gunicorn and Celery then stop their workers warmly), then KILL
    the process group if it is still there after ``grace`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    handle = getattr(proc, "_bench_log", None)
    if handle is not None:
        handle.close()


def start_celery_worker(log_path: Path, hostname: str, pool_args: list[str]) -> subprocess.Popen:
    """A real Celery worker, alone on the broker (no gossip, mingle or
    heartbeats), ready when this returns."""
    worker = start_process(
        [
            str(BIN / "celery"),
            "-A",
            "kamen_portal",
            "worker",
            *pool_args,
            "--loglevel=WARNING",
            "-n",
            hostname,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        log_path,
    )
    from kamen_portal.celery import app

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError("the Celery worker exited during start-up:\n" + tail(log_path))
        if app.control.ping(destination=[hostname], timeout=1.0):
            return worker
    stop_process(worker)
    raise RuntimeError("the Celery worker did not answer in time:\n" + tail(log_path))


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- results ------------------------------------------------------------------------


@dataclass
class Context:
    """What every benchmark gets from the entry point."""

    services: Services
    quick: bool
    workdir: Path  # logs of the servers started by a benchmark
    out_dir: Path


def machine_info() -> dict:
    info = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_total_mb"] = int(line.split()[1]) // 1024
                break
    return info


def services_info(svc: Services) -> dict:
    """Versions and the settings that change the numbers (fsync above all)."""
    import redis
    from django.db import connection

    info: dict = {"started_by_benchmark": svc.own}
    with connection.cursor() as cursor:
        for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers"):
            cursor.execute(f"SHOW {name}")
            info[f"postgresql_{name}"] = cursor.fetchone()[0]
    client = redis.Redis.from_url(svc.redis_url)
    try:
        server = client.info("server")
        info["redis_version"] = server.get("redis_version")
    finally:
        client.close()
    return info


def git_revision() -> str | None:
    try:
        out = subprocess.run(
            # "-dirty" when tracked files differ from HEAD: others may be
            # editing the tree the numbers were measured on.
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_result(ctx: Context, name: str, result: dict) -> Path:
    """Write one benchmark's JSON atomically (a .tmp file, then a rename).

    Quick (smoke) runs go to ``<name>.quick.json`` so they never overwrite the
    full-size numbers that are kept in the repository."""
    payload = {
        "benchmark": name,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_revision": git_revision(),
        "quick": ctx.quick,
        "machine": machine_info(),
        "services": services_info(ctx.services),
        "load_average_after": load_average(),
        **result,
    }
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.out_dir / (f"{name}.quick.json" if ctx.quick else f"{name}.json")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def target(metric: str, value: float | None, *, at_least=None, below=None) -> dict:
    """One target of the issue and whether this run met it."""
    if value is None:
        met = False
    elif at_least is not None:
        met = value >= at_least
    else:
        met = value < below
    bound = f">= {at_least}" if at_least is not None else f"< {below}"
    return {"metric": metric, "target": bound, "value": value, "met": met}
