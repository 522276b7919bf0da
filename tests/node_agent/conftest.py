"""The agent is a separate, installable package (node_agent/, `pip install
./node_agent`); the tests import it from its source tree."""

import sys
from pathlib import Path

AGENT_SRC = Path(__file__).resolve().parents[2] / "node_agent" / "src"
if str(AGENT_SRC) not in sys.path:
    sys.path.insert(0, str(AGENT_SRC))
