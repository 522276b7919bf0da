"""The agent as a node installs it, on the oldest and newest Python it
supports (pyproject: >=3.9; checked on 3.9 and 3.13): the built wheel in a
fresh venv, and the single-file zipapp, each deliver heartbeats to a tiny
fake portal through an outage (503s) and log that delivery resumed.

Interpreters are looked up as pythonX.Y on PATH or under pyenv. A missing one
skips locally; with CI=true it fails, so CI cannot pass without testing it.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("3.9", "3.13")  # oldest and newest supported


def _interpreter(version: str) -> str | None:
    # pyenv's own directories first: its shims on PATH answer only for the
    # version currently selected.
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(f"{pyenv}/versions/{version}.*/bin/python"))
    if candidates:
        return candidates[-1]
    found = shutil.which(f"python{version}")
    return found if found and "/shims/" not in found else None


def _require(version: str) -> str:
    python = _interpreter(version)
    if python is None:
        message = (
            f"Python {version} not found (python{version} on PATH or ~/.pyenv/versions/"
            f"{version}.*): the node agent must be tested on it"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return python


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [str(ROOT / "scripts" / "node_agent_dist.sh"), str(out)],
        env={**os.environ, "PYTHON": sys.executable},
        check=True,
        capture_output=True,
        timeout=300,
    )
    return {"wheel": next(out.glob("kamen_node_agent-*.whl")), "pyz": out / "kamen-node-agent.pyz"}


class FakePortal:
    """POST /api/v1/heartbeats/: 503 for the first `outage` requests, then 202."""

    def __init__(self, outage: int = 2):
        self.outage = outage
        self.answers: list[int] = []
        self.accepted: list[dict] = []
        portal = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = 503 if len(portal.answers) < portal.outage else 202
                portal.answers.append(status)
                if status == 202:
                    portal.accepted.extend(body["heartbeats"])
                raw = json.dumps({"accepted": len(body["heartbeats"]), "rejected": []}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _run_agent(command: list[str], tmp_path: Path) -> tuple[FakePortal, str]:
    portal = FakePortal()
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(
            json.dumps({"member": f"KM{i:08d}", "session": "s", "at": "2026-11-26T10:00:00+08:00"})
            + "\n"
            for i in range(3)
        )
    )
    agent = subprocess.Popen(
        [
            *command,
            "--portal",
            portal.url,
            "--buffer",
            str(tmp_path / "buffer.sqlite3"),
            "--input",
            str(events),
            "--max-backoff",
            "0.2",
        ],
        env={**os.environ, "KAMEN_NODE_TOKEN": "node-token"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(portal.accepted) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)  # the resumed line follows the accepted batch
    finally:
        agent.terminate()
        _, stderr = agent.communicate(timeout=30)
        portal.close()
    return portal, stderr


def _check(portal: FakePortal, stderr: str) -> None:
    assert portal.answers[:2] == [503, 503], stderr
    assert sorted(h["member"] for h in portal.accepted) == [f"KM{i:08d}" for i in range(3)]
    assert "delivery resumed after" in stderr and "3 events replayed" in stderr, stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_the_wheel_in_a_fresh_venv_delivers_through_an_outage(version, dist, tmp_path):
    python = _require(version)
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            str(dist["wheel"]),
        ],
        check=True,
        timeout=300,
    )
    version_out = subprocess.run(
        [str(venv / "bin" / "python"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert version_out.startswith(f"Python {version}.")
    _check(*_run_agent([str(venv / "bin" / "kamen-node-agent")], tmp_path))


@pytest.mark.parametrize("version", VERSIONS)
def test_the_zipapp_delivers_through_an_outage(version, dist, tmp_path):
    python = _require(version)
    help_text = subprocess.run(
        [python, str(dist["pyz"]), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--portal" in help_text
    _check(*_run_agent([python, str(dist["pyz"])], tmp_path))
