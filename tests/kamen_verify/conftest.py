"""The verifier is a separate, installable package (kamen_verify/, `pip
install ./kamen_verify`); the tests import it from its source tree and build
what it checks with the portal's own log code, so the two must agree."""

import sys
from pathlib import Path

VERIFY_SRC = Path(__file__).resolve().parents[2] / "kamen_verify" / "src"
if str(VERIFY_SRC) not in sys.path:
    sys.path.insert(0, str(VERIFY_SRC))
