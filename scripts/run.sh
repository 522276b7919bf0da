#!/usr/bin/env bash
# Start web, Celery worker and Celery beat together in the foreground.
# Ctrl-C (or any of them exiting) stops all three.
set -uo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8000}"
BIN=.venv/bin
mkdir -p var

# `kill 0` signals the whole process group: the three children and their own
# children (runserver's reloader, the worker's pool) all stop together.
trap 'trap - INT TERM EXIT; echo; echo "Stopping web, worker and beat..."; kill 0 2>/dev/null; wait' INT TERM EXIT

"$BIN/celery" -A kamen_portal worker --loglevel=INFO --concurrency=2 --hostname="worker@%h" &
"$BIN/celery" -A kamen_portal beat --loglevel=INFO --pidfile= &
"$BIN/python" manage.py runserver "127.0.0.1:${PORT}" &

echo "Kamen portal: http://127.0.0.1:${PORT}/  (Ctrl-C stops web, worker and beat)"
# Whichever of the three exits first ends the session for all of them.
wait -n
