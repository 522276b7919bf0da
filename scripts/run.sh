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

# Worker and beat say only what needs attention (beat logs every dispatch at
# INFO, about every 15 s); LOG_LEVEL=INFO brings the chatter back. E-mails
# print whatever the level (kamen_portal/console_email.py). The web server
# keeps its request lines.
CELERY_LOG_LEVEL="${LOG_LEVEL:-WARNING}"
# Celery warns about running as root (common in a container or a fresh VM).
# The risk it means is unpickling a message as root; this portal accepts
# JSON only (CELERY_ACCEPT_CONTENT), so for `make run` it is noise.
ROOT_OK="ignore:You're running the worker with superuser privileges"

# Embedded: one worker consumes every queue (kamen_portal/settings.py,
# CELERY_TASK_ROUTES); production gives detection its own worker (README).
QUEUES="detection,payouts,notifications,exports,webhooks,celery"
LOG_LEVEL="$CELERY_LOG_LEVEL" PYTHONWARNINGS="$ROOT_OK" \
  "$BIN/celery" -A kamen_portal worker -Q "$QUEUES" --loglevel="$CELERY_LOG_LEVEL" \
  --concurrency=2 --hostname="worker@%h" &
pids+=($!)
LOG_LEVEL="$CELERY_LOG_LEVEL" "$BIN/celery" -A kamen_portal beat --loglevel="$CELERY_LOG_LEVEL" --pidfile= &
pids+=($!)
# --noreload: one process per role, so stopping is clean and nothing is orphaned.
"$BIN/python" manage.py runserver "127.0.0.1:${PORT}" --noreload &
pids+=($!)

echo "Kamen portal: http://127.0.0.1:${PORT}/  (Ctrl-C stops web, worker and beat)"
# Whichever of the three exits first ends the session for all of them.
wait -n
