#!/usr/bin/env bash
# What the gateway's policies cost per request, and how exactly a rate limit admits.
#
#   usage: docs/bench/gateway-policies.sh [path/to/strangler]     (default .build/release/strangler)
#   env:   ROUNDS=3 SECONDS_EACH=5 CONNS=16 ACCURACY_SECONDS=10
#
# Cost: wrk against one proxy with three routes to the same nginx origin (a table that identifies clients, so even
# plain requests are looked at for a key): plain (/t/), rate-limited (/l/: a bucket
# so large nothing is refused, so every request is counted and none answered 429), and access-checked (/a/: an API
# key hashed and looked up, an allow list, Strangler-Client forwarded); nginx proxy_pass with and without limit_req
# beside it. Rounds alternate; the medians are printed, with each case's cost in microseconds per request
# (1e6/rps_case - 1e6/rps_plain, at the same concurrency).
# Accuracy: a route limited to 100/s (burst 5) offered 200 requests a second for ACCURACY_SECONDS by a paced
# client; prints the requests admitted in each second, their mean, and the mean after the first second (the burst
# spent). With a burst of 1 the bucket admits only requests at least 10 ms apart, and a paced client's jitter makes it
# lose slots (nginx's limit_req without burst does the same): a burst of a few absorbs the jitter.
# Needs nginx, wrk, curl and python3. Everything listens on 127.0.0.1 only.
set -euo pipefail
BIN=${1:-.build/release/strangler}
ROUNDS=${ROUNDS:-3} SECS=${SECONDS_EACH:-5} CONNS=${CONNS:-16} ACC=${ACCURACY_SECONDS:-10}
command -v nginx >/dev/null && command -v wrk >/dev/null || { echo "needs nginx and wrk" >&2; exit 2; }
[ -x "$BIN" ] || { echo "no strangler binary at $BIN (swift build -c release)" >&2; exit 2; }
W=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/logs"
BODY='{"id":"o_01","total":42,"items":[{"sku":"a","qty":1}]}'
KEY=bench-key-0123456789abcdef
DIGEST=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
cat >"$W/origin.conf" <<EOF
worker_processes 1; daemon off; pid $W/origin.pid; error_log $W/logs/origin.err;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:18281; location / { default_type application/json; return 200 '$BODY'; } } }
EOF
cat >"$W/peer.conf" <<EOF
worker_processes auto; daemon off; pid $W/peer.pid; error_log $W/logs/peer.err;
events { worker_connections 4096; }
http { access_log off;
  limit_req_zone \$binary_remote_addr zone=bench:10m rate=1000000r/s;
  upstream origin { server 127.0.0.1:18281; keepalive 64; }
  server { listen 127.0.0.1:18280;
    location /t/ { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://origin; }
    location /l/ { limit_req zone=bench burst=1000000 nodelay;
                   proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://origin; } } }
EOF
cat >"$W/routes.json" <<EOF
{ "monolith": "http://127.0.0.1:18281",
  "clients": { "bench": { "keys": ["sha256:$DIGEST"] } },
  "routes": [
    { "id": "bench.plain", "method": "GET", "path": "/t/{id}", "stage": "transform" },
    { "id": "bench.limited", "method": "GET", "path": "/l/{id}", "stage": "transform",
      "limits": { "rate": "1000000/s", "burst": 1000000, "by": "ip" } },
    { "id": "bench.access", "method": "GET", "path": "/a/{id}", "stage": "transform", "allow": ["bench"] },
    { "id": "bench.accuracy", "method": "GET", "path": "/r/{id}", "stage": "transform",
      "limits": { "rate": "100/s", "burst": 5, "by": "route" } } ] }
EOF
nginx -c "$W/origin.conf" -p "$W" & PIDS+=($!)
nginx -c "$W/peer.conf" -p "$W" & PIDS+=($!)
"$BIN" proxy --routes "$W/routes.json" --port 18290 --admin-port 18291 --data "$W/data" >"$W/logs/strangler.log" 2>&1 & PIDS+=($!)
for i in $(seq 100); do
  curl -sf -o /dev/null http://127.0.0.1:18290/t/1 && curl -sf -o /dev/null http://127.0.0.1:18280/t/1 && break
  sleep 0.2
done
curl -sf -o /dev/null -H "X-Api-Key: $KEY" http://127.0.0.1:18290/a/1 || { echo "proxy did not answer"; tail -20 "$W/logs/strangler.log"; exit 1; }
run() { # url [header] -> "rps p50_ms p99_ms"
  local url=$1; shift
  wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$@" "$url" 2>/dev/null | awk '
    function ms(v){ if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ {r=$2} /^ +50%/ {p50=ms($2)} /^ +99%/ {p99=ms($2)} /Non-2xx/ {bad=$4} END {printf "%.0f %.3f %.3f %d\n", r, p50, p99, bad}'
}
declare -A R
CASES="strangler.plain strangler.limited strangler.access nginx.plain nginx.limit_req"
for round in $(seq "$ROUNDS"); do
  R[strangler.plain]+="$(run http://127.0.0.1:18290/t/1)"$'\n'
  R[strangler.limited]+="$(run http://127.0.0.1:18290/l/1)"$'\n'
  R[strangler.access]+="$(run http://127.0.0.1:18290/a/1 -H "X-Api-Key: $KEY")"$'\n'
  R[nginx.plain]+="$(run http://127.0.0.1:18280/t/1)"$'\n'
  R[nginx.limit_req]+="$(run http://127.0.0.1:18280/l/1)"$'\n'
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A M
printf "%-18s %10s %9s %9s %8s\n" case rps p50_ms p99_ms non2xx
for c in $CASES; do
  rps=$(printf %s "${R[$c]}" | awk 'NF{print $1}' | median)
  p50=$(printf %s "${R[$c]}" | awk 'NF{print $2}' | median)
  p99=$(printf %s "${R[$c]}" | awk 'NF{print $3}' | median)
  bad=$(printf %s "${R[$c]}" | awk 'NF{s+=$4} END{print s+0}')
  M[$c]=$rps
  printf "%-18s %10s %9s %9s %8s\n" "$c" "$rps" "$p50" "$p99" "$bad"
done
cost() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (1e6/a - 1e6/b) * '"$CONNS"' / '"$CONNS"' }'; }
echo "cost per request at $CONNS connections (µs of wall time per request, against the same stack without it):"
echo "  strangler rate limit:   $(cost "${M[strangler.limited]}" "${M[strangler.plain]}")"
echo "  strangler access check: $(cost "${M[strangler.access]}" "${M[strangler.plain]}")"
echo "  nginx limit_req:        $(cost "${M[nginx.limit_req]}" "${M[nginx.plain]}")"
echo "accuracy: 100/s (burst 5) offered 200 requests/s for ${ACC}s:"
python3 - "$ACC" <<'PY'
import http.client, sys, time
seconds = int(sys.argv[1])
conn = http.client.HTTPConnection("127.0.0.1", 18290)
admitted = [0] * seconds
refused = [0] * seconds
start = time.monotonic()
n = 0
while True:
    due = start + n / 200.0
    now = time.monotonic()
    if due - start >= seconds: break
    if due > now: time.sleep(due - now)
    conn.request("GET", "/r/1")
    answer = conn.getresponse(); answer.read()
    second = int((due - start))
    if answer.status == 200: admitted[second] += 1
    elif answer.status == 429: refused[second] += 1
    n += 1
print("  admitted per second:", " ".join(str(a) for a in admitted))
print("  refused per second: ", " ".join(str(r) for r in refused))
print("  mean admitted/s: %.1f over the run, %.1f after the first second (target 100 ± 2%%); offered %d in %d s"
      % (sum(admitted) / seconds, sum(admitted[1:]) / max(1, seconds - 1), n, seconds))
PY
