"""`kamen-verify receipt` as a member runs it: a process, a receipt file, a
key file; exit 0 or a one-line reason."""

import json
import os
import subprocess
import sys

from .conftest import VERIFY_SRC
from .portal_log import PortalLog


def _run(*args):
    env = {**os.environ, "PYTHONPATH": str(VERIFY_SRC)}
    return subprocess.run(
        [sys.executable, "-m", "kamen_verify", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_the_receipt_command_passes_a_good_receipt_and_names_a_bad_ones_fault(tmp_path):
    log = PortalLog()
    log.append(9)
    (tmp_path / "log.key").write_text(log.vkey + "\n")
    receipt = log.receipt(4)
    (tmp_path / "good.json").write_text(json.dumps(receipt, ensure_ascii=False, indent=2))
    receipt["entry"]["minutes"] += 60
    (tmp_path / "bad.json").write_text(json.dumps(receipt))

    good = _run("receipt", str(tmp_path / "good.json"), "--key", str(tmp_path / "log.key"))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("OK: entry #4 (credit, 30 minutes, member KM00000001)")

    bad = _run("receipt", str(tmp_path / "bad.json"), "--key", log.vkey)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("kamen-verify: FAIL entry_mismatch:")
    assert bad.stderr.count("\n") == 1

    missing = _run("receipt", str(tmp_path / "nope.json"), "--key", log.vkey)
    assert missing.returncode == 2 and "cannot read the receipt" in missing.stderr
    bad_key = _run("receipt", str(tmp_path / "good.json"), "--key", "not-a-key")
    assert bad_key.returncode == 2 and "--key:" in bad_key.stderr
