#!/usr/bin/env bash
# Measures recovery (issue 12, item 6): a city of four `govfusion serve` processes (intake,
# governance, department:market, department:fire+street_office) on one broker is filled with
# cases; then each process in turn is killed with `kill -9` and started again at once, and the
# script prints, per restart, the seconds from the kill to `/readyz` 200 and the seconds of each
# start-up phase as the process logged them (since its start), plus when each of its consumer
# groups got its partitions.
#
# It measures; it asserts nothing. Usage (from the repository root, after
# `cargo build --release` and `.ci/tansu.sh start`):
#
#   scripts/recovery.sh [cases] [rounds]        # defaults: 300 cases, 3 restarts per role
#
# Environment: GOVFUSION_TEST_KAFKA (default 127.0.0.1:9092); any GOVFUSION__… variable is
# passed to every process (e.g. GOVFUSION__BUS__KAFKA__SESSION_TIMEOUT_MS). With
# RECOVERY_STATIC=1 each process gets its own `bus.kafka.instance_id` (static membership); with
# RECOVERY_PAUSE=N a killed process is started again N seconds after the kill (counted in).
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${1:-300}
ROUNDS=${2:-3}
BIN=${GOVFUSION_BIN:-target/release/govfusion}
export GOVFUSION__BUS__KIND=kafka
export GOVFUSION__BUS__BROKERS=${GOVFUSION_TEST_KAFKA:-127.0.0.1:9092}
export GOVFUSION__BUS__TOPIC_PREFIX=r$(date +%s%N)
export RUST_LOG=${RUST_LOG:-info}
LOGS=$(mktemp -d /tmp/recovery.XXXXXX)
MATTERS=(individual_business_registration food_business_licence restaurant_opening)

declare -A ROLE PORT PID
ROLE[intake]=intake
ROLE[governance]=governance
ROLE[market]=department:market
ROLE[fire-street]=department:fire,department:street_office
NAMES=(intake governance market fire-street)
base=$((20000 + RANDOM % 20000))
for i in "${!NAMES[@]}"; do PORT[${NAMES[$i]}]=$((base + i)); done

cleanup() {
  for name in "${NAMES[@]}"; do
    if [ -n "${PID[$name]:-}" ]; then kill -9 "${PID[$name]}" 2>/dev/null || true; fi
  done
}
trap cleanup EXIT

now() { date +%s.%N; }

# start NAME LOG: starts the process in the background, remembering its pid.
start() {
  local name=$1 log=$2 extra=()
  if [ "$name" = governance ]; then
    extra+=("GOVFUSION__SERVICE__INTAKE_FEED_URL=http://127.0.0.1:${PORT[intake]}")
  fi
  if [ "${RECOVERY_STATIC:-0}" = 1 ]; then
    extra+=("GOVFUSION__BUS__KAFKA__INSTANCE_ID=$name")
  fi
  env "${extra[@]}" GOVFUSION__HTTP__BIND="127.0.0.1:${PORT[$name]}" \
    "$BIN" serve --roles "${ROLE[$name]}" >"$log" 2>&1 &
  PID[$name]=$!
}

# ready NAME: waits (polling every 20 ms, at most 120 s) until /readyz answers 200.
ready() {
  local url="http://127.0.0.1:${PORT[$1]}/readyz"
  for _ in $(seq 1 6000); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ]; then return 0; fi
    sleep 0.02
  done
  echo "$1 not ready after 120 s; its log: $LOGS" >&2
  exit 1
}

# Every request acts with a token, as any client does (development keys, minted here).
APPLICANT=$("$BIN" token --role applicant --sub recovery-applicant)
OPERATOR=$("$BIN" token --role operator --sub recovery-operator)

# submit I: one application, the matters in turn.
submit() {
  local matter=${MATTERS[$(($1 % 3))]}
  curl -s -o /dev/null -X POST -H 'content-type: application/json' \
    -H "authorization: Bearer $APPLICANT" \
    "http://127.0.0.1:${PORT[intake]}/api/v1/terminals/pc-web/applications" \
    -d "{\"matter_code\":\"$matter\",\"applicant\":{\"name\":\"张三\",\"id_number\":\"500103199001011234\",\"phone\":\"13800000000\"},\"region\":{\"district\":\"500103\",\"street\":\"500103001\"},\"materials\":[\"id_card\",\"premises_proof\",\"business_licence\",\"food_safety_plan\",\"fire_safety_plan\",\"kitchen_layout\"]}"
}

# open: how many cases are neither completed nor failed.
open() {
  curl -s -H "authorization: Bearer $OPERATOR" \
    "http://127.0.0.1:${PORT[intake]}/api/v1/operations/stalled?idle_secs=0&max=1" |
    jq -r '.total'
}

# plain LOG: the log without colours.
plain() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }

# phase LOG MESSAGE: the `seconds` field of the log line with MESSAGE, or "-".
phase() {
  plain "$1" | grep -a "$2" | tail -1 | sed -E 's/.*seconds=([0-9.]+).*/\1/' | grep -E '^[0-9.]+$' ||
    echo -
}

# joins LOG: "group-suffix=seconds" for every consumer group that got its partitions.
joins() {
  plain "$1" | grep -a "consumer group has its partitions" |
    sed -E 's/.*group=[^ .]+\.([^ ]+) .*seconds=([0-9.]+).*/\1=\2/; s/\.[0-9a-f]{32}=/=/' |
    tr '\n' ' '
}

for name in "${NAMES[@]}"; do start "$name" "$LOGS/$name.0.log"; done
for name in "${NAMES[@]}"; do ready "$name"; done
echo "city up (prefix $GOVFUSION__BUS__TOPIC_PREFIX, logs in $LOGS); submitting $CASES cases"
seq 0 $((CASES - 1)) | while read -r i; do submit "$i"; done
for _ in $(seq 1 600); do
  [ "$(open)" = 0 ] && break
  sleep 0.5
done
echo "cases open after the fill: $(open)"

printf '%-12s %5s %8s %8s %8s %8s  %s\n' role round ready state views runs "groups assigned (s)"
for name in "${NAMES[@]}"; do
  for round in $(seq 1 "$ROUNDS"); do
    log="$LOGS/$name.$round.log"
    kill -9 "${PID[$name]}"
    wait "${PID[$name]}" 2>/dev/null || true
    killed=$(now)
    sleep "${RECOVERY_PAUSE:-0}"
    start "$name" "$log"
    ready "$name"
    took=$(echo "$(now) - $killed" | bc)
    printf '%-12s %5s %8.2f %8s %8s %8s  %s\n' "$name" "$round" "$took" \
      "$(phase "$log" 'state rebuilt')" "$(phase "$log" 'views rebuilt')" \
      "$(phase "$log" 'every system runs')" "$(joins "$log")"
  done
done
# The city still works after the restarts: a few more cases complete.
for i in $(seq 0 8); do submit "$i"; done
for _ in $(seq 1 240); do
  [ "$(open)" = 0 ] && break
  sleep 0.5
done
echo "cases open at the end: $(open)"
