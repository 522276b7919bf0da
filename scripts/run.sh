#!/usr/bin/env bash
# Start web, Celery worker and Celery beat together in the foreground.
# Ctrl-C (or any of them exiting) stops all three.
set -uo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8000}"
# Links in emails point at the address the portal is actually served on.
export PORTAL_BASE_URL="${PORTAL_BASE_URL:-http://127.0.0.1:${PORT}}"
BIN=.venv/bin
mkdir -p var

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "Stopping web, worker and beat..."
  # TERM to the three main processes only: the worker then shuts down warmly
  # (finishing or returning its task) and reaps its own pool.
  kill -TERM "${pids[@]}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
  exit 0
}
trap stop INT TERM EXIT

# Embedded: one worker consumes every queue (kamen_portal/settings.py,
# CELERY_TASK_ROUTES); production gives detection its own worker (README).
QUEUES="detection,payouts,notifications,exports,webhooks,celery"
"$BIN/celery" -A kamen_portal worker -Q "$QUEUES" --loglevel=INFO --concurrency=2 \
  --hostname="worker@%h" &
pids+=($!)
"$BIN/celery" -A kamen_portal beat --loglevel=INFO --pidfile= &
pids+=($!)
# --noreload: one process per role, so stopping is clean and nothing is orphaned.
"$BIN/python" manage.py runserver "127.0.0.1:${PORT}" --noreload &
pids+=($!)

echo "Kamen portal: http://127.0.0.1:${PORT}/  (Ctrl-C stops web, worker and beat)"
# Whichever of the three exits first ends the session for all of them.
wait -n
