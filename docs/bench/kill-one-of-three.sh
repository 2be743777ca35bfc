#!/usr/bin/env bash
# Kill one of three instances under load: wrk sends GETs through the strangler proxy to a group of three nginx
# origins (one process each); after KILL_AT seconds one origin is killed (SIGKILL). Prints the client-visible errors
# (non-2xx answers and socket errors, target 0) and how long until the proxy stopped sending to the dead instance
# (its ejection, read from GET /admin/status; target under 2 s).
#
#   usage: docs/bench/kill-one-of-three.sh [path/to/strangler]     (default .build/release/strangler)
#   env:   SECONDS_EACH=8 KILL_AT=3 CONNS=16
set -euo pipefail
BIN=${1:-.build/release/strangler}
SECS=${SECONDS_EACH:-8} KILL_AT=${KILL_AT:-3} CONNS=${CONNS:-16}
command -v nginx >/dev/null && command -v wrk >/dev/null || { echo "needs nginx and wrk" >&2; exit 2; }
W=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/logs"
for i in 1 2 3; do
  cat >"$W/origin$i.conf" <<CONF
worker_processes 1; master_process off; daemon off; pid $W/origin$i.pid; error_log $W/logs/origin$i.err;
events { worker_connections 4096; }
http { access_log off;
  server { listen 127.0.0.1:1848$i; location / { default_type application/json; return 200 '{"instance":$i}'; } } }
CONF
  nginx -c "$W/origin$i.conf" -p "$W" & PIDS+=($!)
  eval "ORIGIN$i=$!"
done
cat >"$W/routes.json" <<CONF
{ "monolith": { "instances": ["http://127.0.0.1:18481", "http://127.0.0.1:18482", "http://127.0.0.1:18483"],
                "health": { "path": "/healthz", "interval": "1s", "timeout": "500ms" } },
  "routes": [] }
CONF
"$BIN" proxy --routes "$W/routes.json" --port 18490 --admin-port 18491 --data "$W/data" >"$W/logs/strangler.log" 2>&1 &
PIDS+=($!)
for i in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18490/x && break; sleep 0.2; done
TOKEN=$(cat "$W/data/admin-token")
wrk -t1 -c"$CONNS" -d"${SECS}s" http://127.0.0.1:18490/items/1 >"$W/wrk.txt" 2>&1 &
WRK=$!
sleep "$KILL_AT"
KILLED=$(date +%s.%N)
kill -9 "$ORIGIN2"
EJECTED=""
for i in $(seq 200); do
  if python3 - "$TOKEN" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request("http://127.0.0.1:18491/admin/status", headers={"Authorization": "Bearer " + sys.argv[1]})
status = json.load(urllib.request.urlopen(request))
for group in status["upstreams"]:
    for instance in group["instances"]:
        if instance["url"].endswith(":18482") and (instance["ejected"] is not None or not instance["healthy"]):
            sys.exit(0)
sys.exit(1)
PY
  then EJECTED=$(date +%s.%N); break; fi
  sleep 0.02
done
wait "$WRK" || true
cat "$W/wrk.txt"
ERRORS=$(awk '/Non-2xx or 3xx responses/ {n+=$NF} /Socket errors/ {gsub(/,/,""); n+=$4+$6+$8+$10} END {print n+0}' "$W/wrk.txt")
echo "client-visible errors: $ERRORS"
if [ -n "$EJECTED" ]; then
  awk -v a="$KILLED" -v b="$EJECTED" 'BEGIN { printf "dead instance out of the choice after: %.3f s (kill → ejected or unhealthy in /admin/status)\n", b-a }'
else
  echo "dead instance never ejected"
fi
curl -sf -H "Authorization: Bearer $TOKEN" http://127.0.0.1:18491/metrics | grep -E 'strangler_upstream_(errors|ejections)_total' || true
