#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis on loopback, for benchmarks and local runs.
#
#   scripts/services.sh start DIR   # start both with their data in DIR; prints
#                                   # `export DATABASE_URL=...` / `export REDIS_URL=...`
#   scripts/services.sh stop DIR    # stop both (DIR keeps the logs; delete it yourself)
#
# Only the export lines go to stdout, so `eval "$(scripts/services.sh start DIR)"`
# works; progress and errors go to stderr. The same lines are kept in DIR/env.
#
# Not for real data: PostgreSQL runs with fsync=off (a crash may lose or corrupt
# the database, which is fine for a throwaway one and keeps disk flushes out of
# the numbers) and Redis persists nothing. Both listen on 127.0.0.1 only.
#
# Environment: PGBIN (default: the newest /usr/lib/postgresql/*/bin),
# PGPORT / REDISPORT (default: a free port), DBNAME (default: kamen),
# SERVICES (default: "postgres redis"; name one to start only that one).
set -euo pipefail

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
DIR=$2

log() { echo "services: $*" >&2; }

pg_bin() {
  if [ -n "${PGBIN:-}" ]; then
    echo "$PGBIN"
    return
  fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$found" ]; then
    log "no PostgreSQL found under /usr/lib/postgresql/*/bin (apt-get install postgresql, or set PGBIN)"
    exit 1
  fi
  echo "$found"
}

# PostgreSQL refuses to run as root: when we are root, its commands run as the
# `postgres` user, who must own the data directory.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_in_use() {
  # A successful connect means something listens there.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
  # Start from a random point in a high range so parallel runs rarely race.
  local port=$((20000 + RANDOM % 20000))
  for _ in $(seq 1 200); do
    if ! port_in_use "$port"; then
      echo "$port"
      return
    fi
    port=$((port + 1))
  done
  log "no free port found"
  exit 1
}

start() {
  local services=" ${SERVICES:-postgres redis} "
  local want_pg="" want_redis=""
  case "$services" in *" postgres "*) want_pg=1 ;; esac
  case "$services" in *" redis "*) want_redis=1 ;; esac
  [ -n "$want_pg$want_redis" ] || { log "SERVICES names neither postgres nor redis"; exit 2; }
  local pgbin="" pgport="" redisport="" dbname
  if [ -n "$want_pg" ]; then
    pgbin=$(pg_bin)
    pgport=${PGPORT:-$(free_port)}
  fi
  if [ -n "$want_redis" ]; then
    command -v redis-server >/dev/null || { log "redis-server is not installed (apt-get install redis-server)"; exit 1; }
    command -v redis-cli >/dev/null || { log "redis-cli is not installed (apt-get install redis-server)"; exit 1; }
    redisport=${REDISPORT:-$(free_port)}
    [ "$redisport" != "$pgport" ] || redisport=$((redisport + 1))
  fi
  dbname=${DBNAME:-kamen}

  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  # The postgres user must be able to reach its data directory inside DIR.
  chmod 755 "$DIR"
  # Remembered for `stop`, which must find the same binaries and ports.
  {
    echo "PGBIN_USED=$pgbin"
    echo "PGPORT_USED=$pgport"
    echo "REDISPORT_USED=$redisport"
  } >"$DIR/services.state"
  : >"$DIR/env"

  if [ -n "$want_pg" ]; then
    mkdir -p "$DIR/pg"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres:postgres "$DIR/pg"
    fi
    chmod 700 "$DIR/pg"
    log "PostgreSQL ($pgbin) on 127.0.0.1:$pgport (fsync=off)"
    as_pg "$pgbin/initdb" -D "$DIR/pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
      || { log "initdb failed; see $DIR/initdb.log"; exit 1; }
    # -k: the Unix socket stays in our directory, not in /var/run/postgresql.
    as_pg "$pgbin/pg_ctl" -D "$DIR/pg" -l "$DIR/pg/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $pgport -k $DIR/pg -c max_connections=100 -c fsync=off" \
      start >/dev/null || { log "PostgreSQL did not start; see $DIR/pg/server.log"; exit 1; }
    as_pg "$pgbin/createdb" -h 127.0.0.1 -p "$pgport" -U postgres "$dbname"
    echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$pgport/$dbname" >>"$DIR/env"
  fi

  if [ -n "$want_redis" ]; then
    log "Redis on 127.0.0.1:$redisport"
    redis-server --bind 127.0.0.1 --port "$redisport" --daemonize yes --dir "$DIR" \
      --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --save "" --appendonly no >/dev/null
    local up=""
    for _ in $(seq 1 100); do
      if redis-cli -h 127.0.0.1 -p "$redisport" ping >/dev/null 2>&1; then
        up=1
        break
      fi
      sleep 0.1
    done
    [ -n "$up" ] || { log "Redis did not answer; see $DIR/redis.log"; exit 1; }
    echo "export REDIS_URL=redis://127.0.0.1:$redisport/0" >>"$DIR/env"
  fi
  cat "$DIR/env"
}

stop() {
  [ -d "$DIR" ] || { log "no such directory: $DIR"; return 0; }
  local pgbin=""
  if [ -f "$DIR/services.state" ]; then
    pgbin=$(sed -n 's/^PGBIN_USED=//p' "$DIR/services.state")
  fi
  if [ -f "$DIR/pg/postmaster.pid" ]; then
    [ -n "$pgbin" ] || pgbin=$(pg_bin)
    log "stopping PostgreSQL"
    # Fast: roll back open sessions and stop; nothing here is worth waiting for.
    as_pg "$pgbin/pg_ctl" -D "$DIR/pg" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || as_pg "$pgbin/pg_ctl" -D "$DIR/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -f "$DIR/redis.pid" ]; then
    local pid
    pid=$(cat "$DIR/redis.pid")
    # Only the pid we started, and only if it still is a redis-server.
    if [ -n "$pid" ] && grep -q redis-server "/proc/$pid/cmdline" 2>/dev/null; then
      log "stopping Redis (pid $pid)"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/redis.pid"
  fi
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
