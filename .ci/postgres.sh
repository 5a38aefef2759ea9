#!/usr/bin/env bash
# Installs PostgreSQL (Debian's package) when missing, and starts or stops a throwaway cluster
# for the case repository's tests: a fresh data directory in the temp dir, listening on
# 127.0.0.1 at a free port, the user `govfusion` trusted without a password. `start` prints the
# URL to export as GOVFUSION_TEST_POSTGRES (everything else goes to stderr) — that of the
# cluster it started before when that one still runs; `stop` stops the cluster and removes its
# directory.  Usage: .ci/postgres.sh start|stop
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=.ci/cache
STATE="$CACHE/postgres.dir"

# The newest server installed by Debian's packages.
server_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# initdb and the server refuse to run as root: as root, run them as the package's `postgres`.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "${1:-}" in
  start)
    mkdir -p "$CACHE"
    if [ -z "$(server_bin)" ]; then
      { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; } >&2
    fi
    BIN="$(server_bin)"
    if [ -f "$STATE" ]; then
      DIR="$(cat "$STATE")"
      if [ -f "$DIR/port" ] && as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        echo "PostgreSQL already running (data in $DIR)" >&2
        echo "postgres://govfusion@127.0.0.1:$(cat "$DIR/port")/postgres"
        exit 0
      fi
    fi
    DIR="$(mktemp -d "${TMPDIR:-/tmp}/govfusion-postgres.XXXXXX")"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres "$DIR"
    fi
    PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_owner "$BIN/initdb" -D "$DIR/data" -U govfusion --auth=trust -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1 || {
      echo "initdb failed; its log:" >&2
      cat "$DIR/initdb.log" >&2
      exit 1
    }
    # The socket goes in the cluster's own directory: the package's /var/run/postgresql may
    # not exist (or be writable) on a machine where the packaged cluster never ran.
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR" start >&2 || {
      echo "PostgreSQL did not start; its log:" >&2
      cat "$DIR/server.log" >&2
      exit 1
    }
    echo "$PORT" >"$DIR/port"
    echo "$DIR" >"$STATE"
    echo "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') listening on 127.0.0.1:$PORT (data in $DIR)" >&2
    echo "postgres://govfusion@127.0.0.1:$PORT/postgres"
    ;;
  stop)
    if [ -f "$STATE" ]; then
      DIR="$(cat "$STATE")"
      BIN="$(server_bin)"
      if [ -d "$DIR/data" ] && [ -n "$BIN" ]; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true
      fi
      rm -rf "$DIR"
      rm -f "$STATE"
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
