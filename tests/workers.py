"""Real Celery worker processes for end-to-end and fault tests."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from kamen_portal.celery import app as celery_app


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


def broker_drained(url: str, *, count_unacked: bool = True) -> bool:
    """Every queue of the broker is empty and no message is still being
    worked on (late-acked messages stay in Redis's "unacked" hash until the
    task finishes): what "the duplicate ran too" means, without a sleep.
    After a worker was killed its message stays unacked until the visibility
    timeout: then pass ``count_unacked=False`` and stop the worker warmly,
    which finishes what it took."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        waiting = sum(client.llen(q) for q in settings.CELERY_QUEUES_ALL)
        return waiting == 0 and (not count_unacked or client.hlen("unacked") == 0)
    finally:
        client.close()


ROOT = Path(__file__).resolve().parents[1]


def embedded_portal_env(workdir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a portal process of its own (gunicorn, manage.py)
    in production mode on the embedded default: its own SQLite database and
    heartbeat store under ``workdir/portal``, never the test run's services."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(
        DATA_DIR=str(workdir / "portal"),
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        NODE_THROTTLE_RATE="100000/minute",
        LOG_LEVEL="WARNING",
        EMAIL_URL="dummymail://",
        DJANGO_SETTINGS_MODULE="kamen_portal.settings",
    )
    env.update(overrides)
    return env


def run_manage(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    """``manage.py *args`` in ``env``; its stdout, or the test fails with its output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayRedis:
    def __init__(self, workdir: Path):
        self.port = _free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("needs redis-server (apt-get install redis-server)")
        subprocess.run(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--daemonize",
                "yes",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--pidfile",
                str(self.workdir / "redis.pid"),
            ],
            check=True,
        )
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        pid_file = self.workdir / "redis.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    time.sleep(0.05)
                except OSError:
                    return


def reset_broker_connections():
    # Drop pooled connections so the next publish dials the (new) broker.
    from kombu import pools

    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    celery_app.amqp._producer_pool = None
    pools.reset()


@pytest.fixture
def broker(tmp_path, monkeypatch):
    """Point this process's Celery at a throwaway Redis (not eager)."""
    redis = ThrowawayRedis(tmp_path)
    redis.start()
    old = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    celery_app.conf.broker_url = redis.url
    celery_app.conf.task_always_eager = False
    reset_broker_connections()
    yield redis
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = old
    reset_broker_connections()
    redis.stop()
