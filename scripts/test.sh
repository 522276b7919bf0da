#!/usr/bin/env bash
# `make test`: the whole suite, on real PostgreSQL and Redis whenever it can.
#
#   DATABASE_URL / REDIS_URL set    used as they are.
#   a variable unset, but the       a throwaway server for it (scripts/services.sh,
#   server installed                data under $TMPDIR or /tmp), stopped at the
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
  # Under the system's temporary folder, not the checkout: as root the
  # servers run as `postgres`, who cannot enter a clone under a private home
  # (/root is usually mode 700).
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/kamen-test.XXXXXX")
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
  if exports=$(SERVICES="${wanted[*]}" scripts/services.sh start "$DIR"); then
    eval "$exports"
  elif [ "$MODE" = throwaway ]; then
    echo "make test: could not start ${wanted[*]} (logs: $DIR)." >&2
    trap - EXIT
    scripts/services.sh stop "$DIR" || true
    exit 1
  else
    # auto: a server that is installed but will not start is no reason to
    # run nothing; the embedded run says what it skipped.
    echo "make test: could not start ${wanted[*]}; running embedded instead." >&2
    scripts/services.sh stop "$DIR" || true
  fi
fi

# Not `exec`: the EXIT trap must still stop the servers afterwards. In the
# foreground, so Ctrl-C reaches pytest (the trap runs once it has ended).
"$PY" -m pytest "$@"
