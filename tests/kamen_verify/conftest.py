"""The verifier is a separate, installable package (kamen_verify/); the root
conftest puts its source tree on the path. These tests build what it checks
with the portal's own log code, so the two must agree."""

from pathlib import Path

VERIFY_SRC = Path(__file__).resolve().parents[2] / "kamen_verify" / "src"
