#!/usr/bin/env bash
# Two origin instances behind one upstream: the strangler proxy (least-requests) against nginx (`upstream` with two
# servers, least_conn, keepalive), alternating, medians of ROUNDS; then one instance behind each (the plain case).
#
#   usage: docs/bench/upstreams-vs-nginx.sh [path/to/strangler]     (default .build/release/strangler)
#   env:   ROUNDS=3 SECONDS_EACH=5 CONNS=16
set -euo pipefail
BIN=${1:-.build/release/strangler}
ROUNDS=${ROUNDS:-3} SECS=${SECONDS_EACH:-5} CONNS=${CONNS:-16}
command -v nginx >/dev/null && command -v wrk >/dev/null || { echo "needs nginx and wrk" >&2; exit 2; }
[ -x "$BIN" ] || { echo "no strangler binary at $BIN (swift build -c release)" >&2; exit 2; }
W=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
BODY='{"id":"c_01","name":"Ada Lovelace","email":"ada@example.com","accountId":"a_01","tags":["vip","emea"],"score":42}'
mkdir -p "$W/logs"
cat >"$W/origin.conf" <<CONF
worker_processes 1; daemon off; pid $W/origin.pid; error_log $W/logs/origin.err;
events { worker_connections 4096; }
http { access_log off;
  server { listen 127.0.0.1:18381; location / { default_type application/json; return 200 '$BODY'; } }
  server { listen 127.0.0.1:18382; location / { default_type application/json; return 200 '$BODY'; } } }
CONF
cat >"$W/peer.conf" <<CONF
worker_processes auto; daemon off; pid $W/peer.pid; error_log $W/logs/peer.err;
events { worker_connections 4096; }
http { access_log off;
  upstream two { least_conn; server 127.0.0.1:18381; server 127.0.0.1:18382; keepalive 64; }
  upstream one { server 127.0.0.1:18381; keepalive 64; }
  server { listen 127.0.0.1:18380;
    location /two/ { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://two; }
    location /one/ { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://one; } } }
CONF
cat >"$W/routes.json" <<CONF
{ "monolith": "http://127.0.0.1:18381",
  "services": { "two": { "instances": ["http://127.0.0.1:18381", "http://127.0.0.1:18382"],
                         "balance": "least-requests" } },
  "routes": [
    { "id": "two", "method": "GET", "path": "/two/{id}", "service": "two", "stage": "eliminate" },
    { "id": "one", "method": "GET", "path": "/one/{id}", "stage": "transform" } ] }
CONF
nginx -c "$W/origin.conf" -p "$W" & PIDS+=($!)
nginx -c "$W/peer.conf" -p "$W" & PIDS+=($!)
"$BIN" proxy --routes "$W/routes.json" --port 18390 --admin-port 18391 --data "$W/data" >"$W/logs/strangler.log" 2>&1 &
PIDS+=($!)
for i in $(seq 50); do
  curl -sf -o /dev/null http://127.0.0.1:18390/two/1 && curl -sf -o /dev/null http://127.0.0.1:18380/two/1 && break
  sleep 0.2
done
run() { wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$1" 2>/dev/null | awk '
    function ms(v){ if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ {r=$2} /^ +50%/ {p50=ms($2)} /^ +99%/ {p99=ms($2)} END {printf "%.0f %.3f %.3f\n", r, p50, p99}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A R
for round in $(seq "$ROUNDS"); do
  for c in nginx.two strangler.two nginx.one strangler.one; do
    port=18380; [[ $c == strangler.* ]] && port=18390
    R[$c]+="$(run "http://127.0.0.1:$port/${c#*.}/42")"$'\n'
  done
done
printf "%-16s %10s %9s %9s\n" case rps p50_ms p99_ms
for c in nginx.two strangler.two nginx.one strangler.one; do
  rps=$(echo -n "${R[$c]}" | awk '{print $1}' | median); p50=$(echo -n "${R[$c]}" | awk '{print $2}' | median)
  p99=$(echo -n "${R[$c]}" | awk '{print $3}' | median)
  printf "%-16s %10s %9s %9s\n" "$c" "$rps" "$p50" "$p99"
  eval "RPS_${c/./_}=$rps P50_${c/./_}=$p50"
done
awk -v a="$RPS_strangler_two" -v b="$RPS_nginx_two" -v c="$RPS_strangler_one" -v d="$RPS_nginx_one" \
    -v e="$P50_strangler_two" -v f="$P50_nginx_two" -v g="$P50_strangler_one" -v h="$P50_nginx_one" 'BEGIN {
  printf "ratio two instances  rps strangler/nginx = %.2f   p50 strangler/nginx = %.2f\n", a/b, e/f
  printf "ratio one instance   rps strangler/nginx = %.2f   p50 strangler/nginx = %.2f\n", c/d, g/h }'
