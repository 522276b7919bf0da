"""Real Celery worker processes for end-to-end and fault tests."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings


def start_worker(log_path: Path | str, **env_overrides: str) -> subprocess.Popen:
    """A solo-pool worker in its own process group, logging to ``log_path``.
    ``env_overrides`` (e.g. DATABASE_URL of the test database, REDIS_URL of a
    throwaway broker) replace this process's environment."""
    env = dict(os.environ)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(env_overrides)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "kamen_portal",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=Path(log_path).open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(worker: subprocess.Popen, *, kill: bool = False) -> None:
    """Warm shutdown (TERM), or SIGKILL with ``kill=True`` (a crash)."""
    if worker.poll() is not None:
        return
    os.killpg(worker.pid, signal.SIGKILL if kill else signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)


def wait_until(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False
