#!/usr/bin/env bash
# Measures a restart over a long history (issue 14, item 5): `simulate` fills the topics of a
# Kafka-protocol broker with CASES cases; then `govfusion serve --roles all` starts over the same
# topics with an empty data directory (its first start reads every topic and writes its case
# repository), is stopped with SIGTERM and started again, twice. For each start it prints the
# seconds from the start to `/readyz` 200, the records each start-up phase read (from its log:
# the state topic, the intake system's view, the supervision system's view) and the resident
# memory once ready.
#
# It measures; it asserts nothing. Usage (from the repository root, after
# `cargo build --release` and `.ci/tansu.sh start`):
#
#   scripts/restart.sh [cases]        # default: 10000 cases
#
# Environment: GOVFUSION_TEST_KAFKA (default 127.0.0.1:9092), GOVFUSION_BIN (default
# target/release/govfusion), RESTART_CONFIG (a configuration file for both commands, default
# the built-in one), RESTART_ROLES (the roles of the process started, default all),
# RESTART_PREFIX (the topic prefix of an earlier run: its topics are measured again, nothing is
# filled), RESTART_DATA (the data directory of an earlier run to start over instead of an empty
# one: every start is then a restart; e.g. one grown by scripts/grow_repository.py); any
# GOVFUSION__… variable is passed to both commands.
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${1:-10000}
BIN=${GOVFUSION_BIN:-target/release/govfusion}
export GOVFUSION__BUS__KIND=kafka
export GOVFUSION__BUS__BROKERS=${GOVFUSION_TEST_KAFKA:-127.0.0.1:9092}
export GOVFUSION__BUS__TOPIC_PREFIX=${RESTART_PREFIX:-s$(date +%s%N)}
export RUST_LOG=${RUST_LOG:-info}
WORK=$(mktemp -d /tmp/restart.XXXXXX)
DATA=${RESTART_DATA:-$WORK/data}
PORT=$((20000 + RANDOM % 20000))
PID=
CONFIG=()
if [ -n "${RESTART_CONFIG:-}" ]; then CONFIG=(--config "$RESTART_CONFIG"); fi

cleanup() {
  if [ -n "$PID" ]; then kill -9 "$PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

if [ -z "${RESTART_PREFIX:-}" ]; then
  echo "filling $CASES cases (prefix $GOVFUSION__BUS__TOPIC_PREFIX, logs in $WORK)"
  # A case that did not complete makes simulate exit 1; its summary says how many.
  "$BIN" simulate "${CONFIG[@]}" --cases "$CASES" --in-flight 256 >"$WORK/simulate.log" 2>&1 ||
    echo "simulate: not every case completed"
  grep -a -E "^cases|throughput" "$WORK/simulate.log" | tail -n 2
else
  echo "measuring the topics of prefix $GOVFUSION__BUS__TOPIC_PREFIX (logs in $WORK)"
fi

# field LOG MESSAGE NAME: the NAME=… field of the last log line with MESSAGE, or "-".
field() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -a "$2" | tail -1 |
    sed -E "s/.*[ ]$3=([0-9.]+).*/\1/" | grep -E '^[0-9.]+$' || echo -
}

# measure NAME: starts `serve`, waits for /readyz 200 (at most 30 min), prints what it took.
measure() {
  local log="$WORK/$1.log" started ready_at rss
  started=$(date +%s.%N)
  GOVFUSION__STORE__DATA_DIR="$DATA" GOVFUSION__HTTP__BIND="127.0.0.1:$PORT" \
    "$BIN" serve "${CONFIG[@]}" --roles "${RESTART_ROLES:-all}" >"$log" 2>&1 &
  PID=$!
  for _ in $(seq 1 90000); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")" = 200 ]; then
      break
    fi
    sleep 0.02
  done
  ready_at=$(date +%s.%N)
  rss=$(awk '/VmRSS/ { printf "%.0f MB", $2 / 1024 }' "/proc/$PID/status")
  printf '%-14s ready %7.2f s   state %9s   intake view %9s   supervision view %9s   resident %s\n' \
    "$1" "$(echo "$ready_at - $started" | bc)" \
    "$(field "$log" "state rebuilt" records)" \
    "$(field "$log" "views rebuilt" intake)" \
    "$(field "$log" "views rebuilt" supervision)" "$rss"
}

# stop: SIGTERM, and wait for the process to exit.
stop() {
  kill -TERM "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
}

if [ -n "${RESTART_DATA:-}" ]; then
  echo "starting over the data directory $DATA"
  measure "restart"
else
  measure "first start"
fi
stop
measure "restart"
stop
measure "restart again"
stop
