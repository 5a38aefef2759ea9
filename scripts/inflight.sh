#!/usr/bin/env bash
# Measures the resident memory of a case in flight (issue 14, item 5): one `govfusion serve
# --roles all` on a Kafka-protocol broker takes CASES applications for `outdoor_advertising`,
# which wait for a decision by urban_management's staff once the street office has answered;
# the script prints the resident memory before the applications and once every case waits for
# staff, and the difference per case.
#
# It measures; it asserts nothing. Usage (from the repository root, after
# `cargo build --release` and `.ci/tansu.sh start`):
#
#   scripts/inflight.sh [cases]        # default: 10000 cases
#
# Environment: GOVFUSION_TEST_KAFKA (default 127.0.0.1:9092), GOVFUSION_BIN (default
# target/release/govfusion), INFLIGHT_WRAP (see below); any GOVFUSION__… variable is passed to
# the process.
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${1:-10000}
BIN=${GOVFUSION_BIN:-target/release/govfusion}
export GOVFUSION__BUS__KIND=kafka
export GOVFUSION__BUS__BROKERS=${GOVFUSION_TEST_KAFKA:-127.0.0.1:9092}
export GOVFUSION__BUS__TOPIC_PREFIX=f$(date +%s%N)
# One applicant submits every case: no rate limit of the default configuration may refuse them.
export GOVFUSION__HTTP__RATE_LIMIT__ENABLED=false
export RUST_LOG=${RUST_LOG:-warn}
WORK=$(mktemp -d /tmp/inflight.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
URL="http://127.0.0.1:$PORT"
# INFLIGHT_WRAP: a command to run the process under, e.g. `heaptrack -o /tmp/inflight` (the
# resident figures then include the tool's own memory; its profile is what counts).
read -r -a WRAP <<<"${INFLIGHT_WRAP:-}"
GOVFUSION__STORE__DATA_DIR="$WORK/data" GOVFUSION__HTTP__BIND="127.0.0.1:$PORT" \
  "${WRAP[@]}" "$BIN" serve --roles all >"$WORK/serve.log" 2>&1 &
PID=$!
# Under a wrapper the process is stopped with SIGTERM, so that the tool writes its profile.
stop() {
  if [ ${#WRAP[@]} -gt 0 ]; then
    pkill -TERM -f "$BIN serve --roles all" || true
    wait "$PID" || true
  else
    kill -9 "$PID" 2>/dev/null || true
  fi
}
trap stop EXIT
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ]; do sleep 0.1; done

rss() { awk '/VmRSS/ { print $2 }' "/proc/$PID/status"; }
APPLICANT=$("$BIN" token --role applicant --sub inflight-applicant)
OFFICER=$("$BIN" token --role officer --department urban_management --sub inflight-officer)
BODY='{"matter_code":"outdoor_advertising","applicant":{"name":"张三","id_number":"500103199001011232","phone":"13800000000"},"region":{"district":"500103","street":"500103001"},"materials":["business_licence","design_drawing","site_consent"]}'

# One warm-up case through the same path, so that what every first request allocates is in
# the baseline.
curl -s -o /dev/null -X POST -H "authorization: Bearer $APPLICANT" -H 'content-type: application/json' \
  "$URL/api/v1/terminals/pc-web/applications" -d "$BODY"
sleep 2
before=$(rss)
echo "submitting $CASES applications (logs in $WORK)"
seq 1 "$CASES" | xargs -P 8 -I{} curl -s -o /dev/null -X POST \
  -H "authorization: Bearer $APPLICANT" -H 'content-type: application/json' \
  "$URL/api/v1/terminals/pc-web/applications" -d "$BODY"
waiting=0
for _ in $(seq 1 1200); do
  waiting=$(curl -s -H "authorization: Bearer $OFFICER" \
    "$URL/api/v1/departments/urban_management/inbox" | jq '.cases | length')
  [ "$waiting" -gt "$CASES" ] && break
  sleep 0.5
done
sleep 2
after=$(rss)
printf 'waiting for staff %d   resident before %d MB   after %d MB   per case %.1f KiB\n' \
  "$waiting" $((before / 1024)) $((after / 1024)) "$(echo "($after - $before) / $CASES" | bc -l)"
