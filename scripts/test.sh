#!/usr/bin/env bash
# `make test`: the whole suite, on real PostgreSQL and Redis whenever it can.
#
#   DATABASE_URL / REDIS_URL set    used as they are.
#   a variable unset, but the       a throwaway server for it (scripts/services.sh,
#   server installed                data under var/test-services/), stopped at the
#                                   end even on failure or Ctrl-C.
#   neither                         embedded: SQLite, no Redis; the tests marked
#                                   `postgres` / `redis` are skipped and the last
#                                   line says what they were and how to get them.
#
# KAMEN_TEST_SERVICES overrides the choice: `embedded` (no service variables,
# nothing started, whatever is installed), `throwaway` (start whatever is not
# set, and fail if a server is not installed), `auto` (the default, above).
# Arguments are passed to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
MODE=${KAMEN_TEST_SERVICES:-auto}

have_pg() { [ -n "${PGBIN:-}" ] || ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; }
have_redis() { command -v redis-server >/dev/null && command -v redis-cli >/dev/null; }

wanted=()
case "$MODE" in
  embedded)
    unset DATABASE_URL REDIS_URL
    ;;
  auto | throwaway)
    if [ -z "${DATABASE_URL:-}" ]; then
      if have_pg || [ "$MODE" = throwaway ]; then wanted+=(postgres); fi
    fi
    if [ -z "${REDIS_URL:-}" ]; then
      if have_redis || [ "$MODE" = throwaway ]; then wanted+=(redis); fi
    fi
    ;;
  *)
    echo "KAMEN_TEST_SERVICES must be auto, embedded or throwaway (got '$MODE')" >&2
    exit 2
    ;;
esac

if [ ${#wanted[@]} -gt 0 ]; then
  mkdir -p var
  DIR=$(mktemp -d "$PWD/var/test-services.XXXXXX")
  stop_services() {
    # A second Ctrl-C must not cut the clean-up short (ignored signals are
    # inherited by services.sh and pg_ctl).
    trap '' INT TERM
    scripts/services.sh stop "$DIR" || true
    rm -rf "$DIR"
  }
  # EXIT covers failures and normal ends; INT/TERM turn into an exit so the
  # EXIT trap runs once.
  trap stop_services EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if ! exports=$(SERVICES="${wanted[*]}" scripts/services.sh start "$DIR"); then
    echo "make test: could not start ${wanted[*]} (see $DIR)." >&2
    exit 1
  fi
  eval "$exports"
fi

# Not `exec`: the EXIT trap must still stop the servers afterwards. In the
# foreground, so Ctrl-C reaches pytest (the trap runs once it has ended).
"$PY" -m pytest "$@"
