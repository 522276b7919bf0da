"""The API contract, checked against the live app by schemathesis (every
check, five identities: anonymous, member, node, integration, billing platform). See run_schemathesis.py;
reports are kept under test-output/contract/."""

import os
import subprocess
import sys
from pathlib import Path

RUNNER = Path(__file__).with_name("run_schemathesis.py")


def test_api_honours_its_openapi_schema_for_every_identity(output_dir):
    reports = Path(output_dir) / "contract"
    completed = subprocess.run(
        [sys.executable, str(RUNNER), "--max-examples", "40", "--keep-reports", str(reports)],
        capture_output=True,
        text=True,
        timeout=1500,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
    )
    summary = [line for line in completed.stdout.splitlines() if line.startswith("[contract]")]
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "summary.txt").write_text("\n".join(summary) + "\n")
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-20000:]
    for identity in ("anonymous", "member", "node", "integration", "platform"):
        line = next(
            s for s in summary if s.startswith(f"[contract] {identity}: ") and " cases" in s
        )
        assert " 0 failures, 0 errors, 0 5xx responses" in line, line
