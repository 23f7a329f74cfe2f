#!/bin/sh
# bench_http.sh: `make bench-http`: apid's throughput and tail latency for
# GET and PUT of 100-byte values over keep-alive connections, measured with
# ApacheBench (ab -k) on the same machine. A benchmark, not a test: it
# prints a table (also written to $APID_BENCH_DIR/results.md) and passes
# whatever the figures are. When redis-server and redis-benchmark are
# installed, GET and SET on calypsod (the same engine behind the Redis
# protocol) and on redis-server follow, with the same value size, clients
# and duration, so the cost of HTTP can be read off.
#
# Environment: APID_BIN, CALYPSOD_BIN, APID_BENCH_DIR, APID_BENCH_SECS (per
# run), APID_BENCH_CONC (concurrent connections).
set -eu
BIN=${APID_BIN:-build/apid}
CALYPSOD=${CALYPSOD_BIN:-build/calypsod}
DIR=${APID_BENCH_DIR:-build/apid-bench}
SECS=${APID_BENCH_SECS:-5}
CONC=${APID_BENCH_CONC:-50}

rm -rf "$DIR" && mkdir -p "$DIR"
head -c 100 /dev/zero | tr '\0' 'v' > "$DIR/value"
"$BIN" --dbpath "$DIR/db" --bind 127.0.0.1:0 --port-file "$DIR/port" > "$DIR/apid.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
i=0; while [ ! -s "$DIR/port" ]; do i=$((i+1)); [ $i -lt 500 ] || { cat "$DIR/apid.log"; exit 1; }; sleep 0.01; done
PORT=$(cat "$DIR/port")
URL=http://127.0.0.1:$PORT
curl -sf -o /dev/null -X PUT --data-binary @"$DIR/value" "$URL/v1/keys/bench"

# run NAME AB-ARGS...: one ab run; prints "| NAME | req/s | p50 | p99 | failed |".
run() {
  name=$1; shift
  ab -k -q -c "$CONC" -t "$SECS" -n 100000000 "$@" > "$DIR/ab.out" 2>&1 || { cat "$DIR/ab.out"; exit 1; }
  rps=$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$DIR/ab.out")
  p50=$(sed -n 's/^ *50% *\([0-9]*\).*/\1/p' "$DIR/ab.out")
  p99=$(sed -n 's/^ *99% *\([0-9]*\).*/\1/p' "$DIR/ab.out")
  failed=$(sed -n 's/^Failed requests: *\([0-9]*\).*/\1/p' "$DIR/ab.out")
  non2xx=$(sed -n 's/^Non-2xx responses: *\([0-9]*\).*/\1/p' "$DIR/ab.out")
  printf '| %s | %.0f | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" "$((failed + ${non2xx:-0}))"
}

{
  echo "apid $("$BIN" --version | cut -d' ' -f2-), $(nproc) cores, $CONC keep-alive connections, ${SECS} s per row, 100-byte values, ab -k on the same machine"
  echo
  echo "| workload | requests/s | p50 ms | p99 ms | errors |"
  echo "|---|---:|---:|---:|---:|"
  run "apid GET /v1/keys/{key}" "$URL/v1/keys/bench"
  run "apid GET /get/{key} (CalypsoDB route)" "$URL/get/bench"
  run "apid PUT /v1/keys/{key}" -u "$DIR/value" -T application/octet-stream "$URL/v1/keys/bench"
  if [ -x "$CALYPSOD" ] && command -v redis-benchmark >/dev/null; then
    CPORT=$((PORT + 2))
    "$CALYPSOD" --bind 127.0.0.1:$CPORT --dbpath "$DIR/calypsod-db" --sync everysec > "$DIR/calypsod.log" 2>&1 &
    CPID=$!
    i=0; until redis-benchmark -p $CPORT -n 1 -t ping -q > /dev/null 2>&1; do
      i=$((i+1)); [ $i -lt 500 ] || { cat "$DIR/calypsod.log"; exit 1; }; sleep 0.01; done
    redis-benchmark -p $CPORT -c "$CONC" -d 100 -t set,get -n $((SECS * 60000)) -r 1 --csv 2>/dev/null |
      awk -F, 'NR > 1 { gsub(/"/, ""); printf "| calypsod %s (RESP, redis-benchmark) | %.0f | %s | %s | 0 |\n", $1, $2, $5, $7 }'
    kill $CPID
    wait $CPID 2>/dev/null || true
  fi
  if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
    RPORT=$((PORT + 1))
    redis-server --port $RPORT --bind 127.0.0.1 --save '' --appendonly no --daemonize no > "$DIR/redis.log" 2>&1 &
    RPID=$!
    sleep 0.3
    redis-benchmark -p $RPORT -c "$CONC" -d 100 -t set,get -n $((SECS * 60000)) -r 1 --csv 2>/dev/null |
      awk -F, 'NR > 1 { gsub(/"/, ""); printf "| redis-server %s (RESP, redis-benchmark) | %.0f | %s | %s | 0 |\n", $1, $2, $5, $7 }'
    kill $RPID
  fi
} | tee "$DIR/results.md"
kill $PID
wait $PID 2>/dev/null || true
trap - EXIT
