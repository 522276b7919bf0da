#!/usr/bin/env bash
# Build the node agent as a wheel and as a single-file zipapp into DIST
# (default dist/): `make node-agent-dist`. Standard library only, so the
# zipapp runs with any python3 >= 3.9 on the node: `python3 kamen-node-agent.pyz --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
DIST=${1:-dist}
mkdir -p "$DIST"
"$PYTHON" -m pip wheel --quiet --no-deps ./node_agent -w "$DIST"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -r node_agent/src/kamen_node_agent "$stage/"
find "$stage" -name __pycache__ -prune -exec rm -rf {} +
# zipapp's own -m template drops main()'s return code; this keeps it.
printf 'import sys\n\nfrom kamen_node_agent.__main__ import main\n\nsys.exit(main())\n' >"$stage/__main__.py"
"$PYTHON" -m zipapp "$stage" -p "/usr/bin/env python3" -o "$DIST/kamen-node-agent.pyz"
ls -1 "$DIST"/kamen_node_agent-*.whl "$DIST/kamen-node-agent.pyz"
