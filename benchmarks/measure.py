"""Measuring the processes a benchmark starts: /proc sampling of memory
(RSS and PSS over a process tree) and CPU, and percentiles.

Standard library only, like the rest of the harness."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


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
