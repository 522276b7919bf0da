"""What the benchmarks share: services, environment, child processes, /proc
sampling and the result files.

Nothing here imports Django at module level: ``__main__`` configures the
environment (database, Redis, DEBUG=false) before Django reads its settings.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
SERVICES_SH = ROOT / "scripts" / "services.sh"
# The venv's console scripts (gunicorn, celery) sit next to its python.
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


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


# --- /proc sampling ----------------------------------------------------------------


def _read_stat(pid: int) -> tuple[str, int, int] | None:
    """(command name, parent pid, utime + stime in ticks) of one process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The name is in parentheses and may itself contain spaces or parentheses.
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return name, int(fields[1]), int(fields[11]) + int(fields[12])


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (found through the parent pids)."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        stat = _read_stat(pid)
        if stat is not None:
            children.setdefault(stat[1], []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of one process in KiB; zeros once it is gone."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def pss_kb(pid: int) -> int:
    """Proportional set size in KiB: pages shared with other processes (a
    prefork child's copy-on-write pages shared with its parent) count only
    their share, so PSS adds up over a tree where RSS double-counts."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemorySampler:
    """Samples the resident memory of a process tree in a thread.

    Three views of the peak: the largest sum of VmRSS seen at one sample (to
    the sampling interval), the sum of each process's own VmHWM (its
    kernel-recorded peak; an upper bound, as the processes may not peak at
    the same moment), and the largest sum of PSS (what the tree really
    occupies: RSS counts pages shared between a prefork parent and its
    children once per process)."""

    def __init__(self, root: int, interval: float = 0.2):
        self.root = root
        self.interval = interval
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.baseline_rss_kb = 0
        self.baseline_pss_kb = 0
        self.hwm_kb: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> tuple[int, int]:
        total = proportional = 0
        for pid in process_tree(self.root):
            rss, hwm = memory_kb(pid)
            total += rss
            proportional += pss_kb(pid)
            self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm)
        self.peak_rss_kb = max(self.peak_rss_kb, total)
        self.peak_pss_kb = max(self.peak_pss_kb, proportional)
        return total, proportional

    def start(self) -> None:
        self.baseline_rss_kb, self.baseline_pss_kb = self.sample()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> dict:
        """Stop sampling (call before the processes exit: VmHWM dies with them)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()
        return {
            "idle_rss_mb": round(self.baseline_rss_kb / 1024, 1),
            "idle_pss_mb": round(self.baseline_pss_kb / 1024, 1),
            "peak_tree_rss_mb": round(self.peak_rss_kb / 1024, 1),
            "sum_of_process_hwm_mb": round(sum(self.hwm_kb.values()) / 1024, 1),
            "peak_tree_pss_mb": round(self.peak_pss_kb / 1024, 1),
            "processes": len(self.hwm_kb),
            "sample_interval_s": self.interval,
        }


def _busy_ticks() -> int:
    """CPU ticks the whole machine spent busy (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def cpu_snapshot() -> tuple[int, dict[int, tuple[str, int]]]:
    """Busy ticks of the machine, and CPU ticks used so far by every process."""
    snapshot = {}
    for pid in _all_pids():
        stat = _read_stat(pid)
        if stat is not None:
            snapshot[pid] = (stat[0], stat[2])
    return _busy_ticks(), snapshot


def cpu_by_command(
    before: tuple, after: tuple, seconds: float, labels: dict[int, str] | None = None
) -> dict[str, float]:
    """Cores used between two snapshots, by command name (e.g. "postgres":
    0.6 means six tenths of a core on average), or by the label given for a
    pid. Shows what the 2 cores were busy with, including anything else that
    ran on the machine meanwhile.

    A process that exited in between is not in the second snapshot; its time
    shows up as "exited processes" (the machine's busy time minus everything
    attributed). Those are mostly PostgreSQL backends: a Celery worker opens a
    new database connection per task."""
    labels = {os.getpid(): "benchmark process", **(labels or {})}
    (busy_before, procs_before), (busy_after, procs_after) = before, after
    used: dict[str, float] = {}
    for pid, (name, ticks) in procs_after.items():
        delta = ticks - procs_before.get(pid, (name, 0))[1]
        if delta > 0:
            key = labels.get(pid, name)
            used[key] = used.get(key, 0.0) + delta / CLK_TCK / seconds
    unattributed = (busy_after - busy_before) / CLK_TCK / seconds - sum(used.values())
    if unattributed > 0:
        used["exited processes"] = unattributed
    used["machine total"] = (busy_after - busy_before) / CLK_TCK / seconds
    return {k: round(v, 2) for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v >= 0.01}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- statistics ---------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


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
