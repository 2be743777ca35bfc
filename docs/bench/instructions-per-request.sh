#!/usr/bin/env bash
# Instructions per forwarded request, repeatable on a shared machine (callgrind counts instructions, not time):
# the release proxy under valgrind --tool=callgrind with one event-loop thread, in front of one nginx origin;
# keep-alive GETs from 4 connections; the counters are zeroed after a warm-up, so only the measured requests count.
# Prints Ir per request and the functions that cost the most per request (self cost).
#
#   usage: docs/bench/instructions-per-request.sh [path/to/strangler]   (default .build/release/strangler)
#   env:   REQUESTS=4000 TOP=25 CASE=plain|limited|access
#          (plain: a table without gateway policies; limited: the same with a token bucket too large to refuse on
#          the route; access: a table with clients, an API key hashed and looked up per request, an allow list,
#          Strangler-Client forwarded; the gateway's cost is the difference with plain)
set -euo pipefail
BIN=${1:-.build/release/strangler}
REQUESTS=${REQUESTS:-4000} TOP=${TOP:-25} CASE=${CASE:-plain}
case "$CASE" in
  plain) PREFIX=/t; EXTRA="" ;;
  limited) PREFIX=/l; EXTRA=', "limits": { "rate": "1000000000/s", "burst": 1000000000, "by": "ip" }' ;;
  access) PREFIX=/a; EXTRA=', "allow": ["bench"]' ;;
  *) echo "CASE must be plain, limited or access" >&2; exit 2 ;;
esac
KEY=bench-key-0123456789abcdef
DIGEST=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
command -v valgrind >/dev/null && command -v nginx >/dev/null || { echo "needs valgrind and nginx" >&2; exit 2; }
W=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
# valgrind 3.19 cannot read the DWARF 5 the toolchain writes: a copy without debug information keeps the symbols.
cp "$BIN" "$W/strangler" && strip -g "$W/strangler"
cat >"$W/origin.conf" <<CONF
worker_processes 1; master_process off; daemon off; pid $W/origin.pid; error_log $W/origin.err;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:18781; location / { default_type application/json;
  return 200 '{"id":"c_01","name":"Ada Lovelace","email":"ada@example.com","accountId":"a_01","tags":["vip"]}'; } } }
CONF
cat >"$W/routes.json" <<CONF
{ "monolith": "http://127.0.0.1:18781", "services": { "svc": "http://127.0.0.1:18781" },
  $([ "$CASE" = access ] && echo "\"clients\": { \"bench\": { \"keys\": [\"sha256:$DIGEST\"] } },")
  "routes": [ { "id": "t", "method": "GET", "path": "$PREFIX/{id}", "service": "svc", "stage": "transform"$EXTRA } ] }
CONF
cat >"$W/client.py" <<'PY'
import http.client, sys, threading
n, conns, prefix, key = int(sys.argv[1]), 4, sys.argv[2], sys.argv[3]
def run(k):
    c = http.client.HTTPConnection("127.0.0.1", 18790)
    for _ in range(k):
        c.request("GET", prefix + "/42", headers={"X-Api-Key": key} if key else {}); r = c.getresponse(); r.read()
        assert r.status == 200, r.status
threads = [threading.Thread(target=run, args=(n // conns,)) for _ in range(conns)]
[t.start() for t in threads]; [t.join() for t in threads]
PY
nginx -c "$W/origin.conf" -p "$W" & PIDS+=($!)
valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" "$W/strangler" proxy --routes "$W/routes.json" \
  --port 18790 --admin-port 18791 --data "$W/data" --threads 1 >"$W/proxy.log" 2>&1 & PIDS+=($!)
for i in $(seq 240); do curl -sf -o /dev/null http://127.0.0.1:18790/t/1 && break; sleep 0.5; done
SENT=$([ "$CASE" = access ] && echo "$KEY" || echo "")
python3 "$W/client.py" 400 "$PREFIX" "$SENT"
callgrind_control -z "${PIDS[1]}" >/dev/null
python3 "$W/client.py" "$REQUESTS" "$PREFIX" "$SENT"
callgrind_control -d "${PIDS[1]}" >/dev/null
OUT=$(ls "$W"/cg.out.* | tail -1)
TOTAL=$(grep '^summary:' "$OUT" | awk '{print $2}')
awk -v t="$TOTAL" -v n="$REQUESTS" 'BEGIN { printf "instructions per forwarded request: %.0f (%d requests, case '"$CASE"')\n", t/n, n }'
# Without debug information callgrind charges the thread's entry frames with everything below them: rows over half
# the total are those, not self costs.
callgrind_annotate --threshold=100 "$OUT" 2>/dev/null | awk -v n="$REQUESTS" -v top="$TOP" -v t="$TOTAL" '
  /^ *[0-9,]+ \(/ && !/PROGRAM TOTALS/ { v=$1; gsub(",", "", v); v += 0; name=$0; sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, "", name);
    if (v < t / 2 && shown < top) { printf "%8.0f  %s\n", v/n, substr(name, 1, 150); shown++ } }'
