"""The layers of DESIGN §3 hold: import-linter's contracts (.importlinter)
pass on the real tree and fail on a copy with one upward import added."""

import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings

PACKAGES = ("kamen_portal", "members", "compensation", "appeals", "portal", "integrations")
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


def test_the_layers_and_no_cycles_contracts_hold():
    result = _lint(Path(settings.BASE_DIR))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    base = Path(settings.BASE_DIR)
    for package in PACKAGES:
        shutil.copytree(
            base / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "migrations"),
        )
    shutil.copy(base / ".importlinter", tmp_path / ".importlinter")
    # members (layer 1) reaching up into appeals (layer 3).
    (tmp_path / "members" / "probe.py").write_text("from appeals.models import Appeal\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "members.probe -> appeals.models" in result.stdout
