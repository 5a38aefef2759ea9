#!/usr/bin/env bash
# Measures a city under chaos (issue 12, item 6): six `govfusion serve` processes on one broker
# (intake; governance reading the intake feed over HTTP; market twice; fire + street_office;
# the other departments), about RATE submissions a second from every terminal for DURATION
# seconds, while every 6–10 s one process (each role in turn) is killed with `kill -9` and
# started again 1–3 s later. Then it waits for every case to complete and prints:
#
# * per restart: the role, and the seconds from its start to `/readyz` 200 and from the kill;
# * submissions answered 202 and refused, and the longest run of seconds without a 202;
# * case latency (the case's `submitted` to its `approval.delivered`, from its history): p50,
#   p99, max;
# * cases not completed at the end.
#
# It measures; it asserts nothing. Usage (from the repository root, after
# `cargo build --release` and `.ci/tansu.sh start`):
#
#   scripts/chaos.sh [duration_s] [rate]        # defaults: 180 s, 11 submissions a second
#
# Environment: GOVFUSION_TEST_KAFKA (default 127.0.0.1:9092), GOVFUSION_BIN (default
# target/release/govfusion); any GOVFUSION__… variable is passed to every process (e.g.
# GOVFUSION__BUS__KAFKA__SESSION_TIMEOUT_MS). Needs curl, jq and bc.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-180}
RATE=${2:-11}
BIN=${GOVFUSION_BIN:-target/release/govfusion}
export GOVFUSION__BUS__KIND=kafka
export GOVFUSION__BUS__BROKERS=${GOVFUSION_TEST_KAFKA:-127.0.0.1:9092}
export GOVFUSION__BUS__TOPIC_PREFIX=c$(date +%s%N)
export RUST_LOG=${RUST_LOG:-info}
LOGS=$(mktemp -d /tmp/chaos.XXXXXX)
MATTERS=(individual_business_registration food_business_licence restaurant_opening)
TERMINALS=(pc-web app-yukuaiban kiosk-jfb-01 kiosk-gyq-01)

declare -A ROLE PORT PID
ROLE[intake]=intake
ROLE[governance]=governance
ROLE[market-a]=department:market
ROLE[market-b]=department:market
ROLE[fire-street]=department:fire,department:street_office
ROLE[others]=department:health,department:housing,department:transport,department:public_security,department:ecology,department:urban_management
NAMES=(intake governance market-a market-b fire-street others)
base=$((20000 + RANDOM % 20000))
for i in "${!NAMES[@]}"; do PORT[${NAMES[$i]}]=$((base + i)); done

cleanup() {
  for name in "${NAMES[@]}"; do
    if [ -n "${PID[$name]:-}" ]; then kill -9 "${PID[$name]}" 2>/dev/null || true; fi
  done
  jobs -p | xargs -r kill 2>/dev/null || true
}
trap cleanup EXIT

now() { date +%s.%N; }

# start NAME: starts the process in the background (each with a data directory of its own),
# remembering its pid; its log goes to $LOGS/NAME.log, appended.
start() {
  local name=$1 extra=()
  if [ "$name" = governance ]; then
    extra+=("GOVFUSION__SERVICE__INTAKE_FEED_URL=http://127.0.0.1:${PORT[intake]}")
  fi
  env "${extra[@]}" GOVFUSION__HTTP__BIND="127.0.0.1:${PORT[$name]}" \
    GOVFUSION__STORE__DATA_DIR="$LOGS/$name.data" \
    "$BIN" serve --roles "${ROLE[$name]}" >>"$LOGS/$name.log" 2>&1 &
  PID[$name]=$!
  # Killing it is the point: no "Killed" line from the shell for it.
  disown "${PID[$name]}"
}

# gone PID: waits until the process has exited.
gone() {
  while kill -0 "$1" 2>/dev/null; do sleep 0.01; done
}

# ready NAME: waits (polling every 20 ms, at most 120 s) until /readyz answers 200.
ready() {
  local url="http://127.0.0.1:${PORT[$1]}/readyz"
  for _ in $(seq 1 6000); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ]; then return 0; fi
    sleep 0.02
  done
  echo "$1 not ready after 120 s; its log: $LOGS/$1.log" >&2
  return 1
}

# Every request acts with a token, as any client does (development keys, minted here).
APPLICANT=$("$BIN" token --role applicant --sub chaos-applicant)
OPERATOR=$("$BIN" token --role operator --sub chaos-operator)

# submit I: one application (the matters and terminals in turn); prints "time status case_id".
submit() {
  local matter=${MATTERS[$(($1 % 3))]} terminal=${TERMINALS[$(($1 % 4))]} answer
  answer=$(curl -s -m 10 -w ' %{http_code}' -X POST -H 'content-type: application/json' \
    -H "authorization: Bearer $APPLICANT" \
    "http://127.0.0.1:${PORT[intake]}/api/v1/terminals/$terminal/applications" \
    -d "{\"matter_code\":\"$matter\",\"applicant\":{\"name\":\"张三\",\"id_number\":\"500103199001011232\",\"phone\":\"13800000000\"},\"region\":{\"district\":\"500103\",\"street\":\"500103001\"},\"materials\":[\"id_card\",\"premises_proof\",\"business_licence\",\"food_safety_plan\",\"fire_safety_plan\",\"kitchen_layout\"]}" ||
    echo ' 000')
  echo "$(now) ${answer##* } $(echo "${answer% *}" | jq -r '.case_id // "-"' 2>/dev/null || echo -)"
}

for name in "${NAMES[@]}"; do start "$name"; done
for name in "${NAMES[@]}"; do ready "$name"; done
echo "city up (prefix $GOVFUSION__BUS__TOPIC_PREFIX, logs in $LOGS)"

# The load: RATE submissions a second, each in the background, for DURATION seconds.
(
  i=0
  end=$(echo "$(now) + $DURATION" | bc)
  while (($(echo "$(now) < $end" | bc))); do
    submit "$i" >>"$LOGS/submissions" &
    i=$((i + 1))
    sleep "$(echo "scale=3; 1 / $RATE" | bc)"
  done
  wait
) &
LOAD=$!

# The chaos: every 6–10 s the next role in turn is killed, and started again 1–3 s later.
printf '%-12s %10s %10s\n' role "ready (s)" "from kill"
chaos_end=$(echo "$(now) + $DURATION" | bc)
turn=0
while (($(echo "$(now) < $chaos_end" | bc))); do
  sleep $((6 + RANDOM % 5))
  name=${NAMES[$((turn % ${#NAMES[@]}))]}
  turn=$((turn + 1))
  kill -9 "${PID[$name]}"
  gone "${PID[$name]}"
  killed=$(now)
  sleep $((1 + RANDOM % 3))
  started=$(now)
  start "$name"
  if ready "$name"; then
    printf '%-12s %10.2f %10.2f\n' "$name" "$(echo "$(now) - $started" | bc)" \
      "$(echo "$(now) - $killed" | bc)"
  fi
done
wait "$LOAD"

# Every case should complete: wait at most 5 minutes for none to be open.
open() {
  curl -s -H "authorization: Bearer $OPERATOR" \
    "http://127.0.0.1:${PORT[intake]}/api/v1/operations/stalled?idle_secs=0&max=1" |
    jq -r '.total'
}
for _ in $(seq 1 600); do
  [ "$(open)" = 0 ] && break
  sleep 0.5
done

accepted=$(awk '$2 == 202' "$LOGS/submissions" | wc -l)
refused=$(awk '$2 != 202' "$LOGS/submissions" | wc -l)
# The longest stretch without a 202, over the submissions sorted by time.
gap=$(sort -n "$LOGS/submissions" | awk '$2 == 202 { if (last && $1 - last > gap) gap = $1 - last; last = $1 }
  END { printf "%.1f", gap }')
echo "submissions  202: $accepted  refused or unanswered: $refused  longest without a 202: ${gap} s"

# Latency of each case: from its `submitted` history entry to its `approval.delivered`.
SECONDS_OF='def secs: capture("(?<s>[^.Z]+)(\\.(?<f>[0-9]+))?") |
  ((.s + "Z") | fromdate) + ("0." + (.f // "0") | tonumber);'
awk '$2 == 202 { print $3 }' "$LOGS/submissions" | while read -r case_id; do
  curl -s -H "authorization: Bearer $APPLICANT" \
    "http://127.0.0.1:${PORT[intake]}/api/v1/cases/$case_id" |
    jq -r "$SECONDS_OF"' select(.status == "completed") | .history as $h |
      ($h | map(select(.step == "approval.delivered")) | .[0].at | secs)
      - ($h | map(select(.step == "submitted")) | .[0].at | secs)'
done | sort -n >"$LOGS/latencies"
completed=$(wc -l <"$LOGS/latencies")
# pct P: the nearest-rank P-th percentile of the latencies.
pct() {
  awk -v p="$1" '{ v[NR] = $1 } END {
    if (!NR) { print "-"; exit }
    i = int((NR * p + 99) / 100); if (i < 1) i = 1; printf "%.2f", v[i] }' "$LOGS/latencies"
}
echo "cases        completed: $completed of $accepted   not completed: $(open)"
echo "latency (s)  p50 $(pct 50)   p99 $(pct 99)   max $(pct 100)"
