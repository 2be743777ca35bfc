#!/usr/bin/env bash
# Coexist at sample 1.0 through two proxies on one PostgreSQL store: comparisons per second stored in the shared
# evidence, and the store's transactions (write batches) per second.
#
#   usage: docs/bench/scale-out-evidence.sh [path/to/strangler]     (default .build/release/strangler)
#   env:   DURATION=10s CONNECTIONS=32 THREADS=1 (per proxy)
#
# Starts a throw-away PostgreSQL cluster (initdb + pg_ctl; as the postgres user when run as root), nginx as the
# monolith and the service (the service answers every tenth item differently: a mismatch to count), two proxies with
# --store on it, and moves items.get to coexist (sample 1.0, forced: there is no evidence yet). Then runs wrk against
# both proxies at once for DURATION and reads what the store holds: the comparisons in strangler.evidence_counters,
# and xact_commit of the database from pg_stat_database before and after (every flush of either proxy is one
# transaction; the instance reports and table re-reads are in it too, a few a second). Needs PostgreSQL's binaries,
# nginx, wrk, curl and python3. Everything listens on 127.0.0.1 only.
set -euo pipefail
BIN=${1:-.build/release/strangler}
DURATION=${DURATION:-10s} CONNECTIONS=${CONNECTIONS:-32} THREADS=${THREADS:-1}
[ -x "$BIN" ] || { echo "no strangler binary at $BIN (swift build -c release)" >&2; exit 2; }
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PG_BIN/initdb" ] || { echo "needs PostgreSQL (apt-get install -y postgresql)" >&2; exit 2; }
command -v nginx >/dev/null && command -v wrk >/dev/null || { echo "needs nginx and wrk" >&2; exit 2; }
W=$(mktemp -d /tmp/strangler-evidence.XXXXXX); PIDS=()
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres: "$W"; as_pg=(runuser -u postgres --); fi
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$W/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
PG_PORT=18450
"${as_pg[@]}" "$PG_BIN/initdb" -D "$W/pg" -U strangler -A trust -E UTF8 --no-sync >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$W/pg" -l "$W/pg.log" -w -o "-k $W -c listen_addresses=127.0.0.1 -p $PG_PORT" \
  start >/dev/null
psql() { "${as_pg[@]}" "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U strangler -qtA "$@"; }
psql -d postgres -c "CREATE DATABASE evidence" >/dev/null
cat >"$W/nginx.conf" <<EOF
worker_processes 1; pid $W/nginx.pid; error_log $W/nginx.err; daemon on;
events { worker_connections 4096; }
http {
  access_log off;
  server { listen 127.0.0.1:18451; default_type application/json;
    location / { return 200 '{"id":"item","title":"the same on both sides","total":10}'; } }
  server { listen 127.0.0.1:18452; default_type application/json;
    location ~ 0\$ { return 200 '{"id":"item","title":"the same on both sides","total":12}'; }
    location / { return 200 '{"id":"item","title":"the same on both sides","total":10}'; } }
}
EOF
nginx -c "$W/nginx.conf" -p "$W"
cat >"$W/routes.json" <<EOF
{ "monolith": "http://127.0.0.1:18451", "services": { "items": "http://127.0.0.1:18452" },
  "routes": [ { "id": "items.get", "method": "GET", "path": "/items/{id}", "service": "items", "stage": "transform",
                "shadow": { "sample": 1.0 } } ] }
EOF
export STRANGLER_ADMIN_TOKEN=evidence-bench-token
STORE="postgres://strangler@127.0.0.1:$PG_PORT/evidence?sslmode=disable"
for name in a b; do
  port=$([ $name = a ] && echo 18460 || echo 18461)
  mkdir -p "$W/$name"
  "$BIN" proxy --store "$STORE" --routes "$W/routes.json" --data "$W/$name" --instance-id "$name" \
    --port $((port + 10)) --admin-port $port --threads "$THREADS" >"$W/$name.log" 2>&1 &
  PIDS+=($!)
done
auth=(-H "Authorization: Bearer $STRANGLER_ADMIN_TOKEN")
for port in 18460 18461; do
  for _ in $(seq 1 200); do curl -fs -o /dev/null "${auth[@]}" "http://127.0.0.1:$port/admin/status" && break; sleep 0.05; done
done
etag=$(curl -fs -D - -o /dev/null "${auth[@]}" http://127.0.0.1:18460/admin/routes | tr -d '\r' \
  | awk -F': ' 'tolower($1)=="etag"{print $2}')
curl -fs -o /dev/null "${auth[@]}" -H "If-Match: $etag" -H 'Content-Type: application/json' \
  -d '{"stage":"coexist","reason":"evidence bench","force":true}' http://127.0.0.1:18460/admin/routes/items.get/stage
for _ in $(seq 1 200); do
  curl -fs "${auth[@]}" http://127.0.0.1:18461/admin/routes | grep -q '"coexist"' && break; sleep 0.05
done
printf '%s\n' 'local n = 0' 'request = function() n = n + 1; return wrk.format("GET", "/items/" .. n) end' >"$W/ids.lua"
commits() { psql -d evidence -c "SELECT xact_commit FROM pg_stat_database WHERE datname = 'evidence'"; }
before=$(commits)
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$W/ids.lua" http://127.0.0.1:18470/ >"$W/wrk-a.txt" &
wa=$!
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$W/ids.lua" http://127.0.0.1:18471/ >"$W/wrk-b.txt" &
wb=$!
wait $wa $wb
# What the recorders still hold is flushed (and written to the store) by reading each proxy's diffs.
for port in 18460 18461; do curl -fs -o /dev/null "${auth[@]}" "http://127.0.0.1:$port/admin/diffs"; done
after=$(commits)
seconds=${DURATION%s}
compared=$(psql -d evidence -c "SELECT compared FROM strangler.evidence_counters WHERE route = 'items.get'")
mismatched=$(psql -d evidence -c "SELECT mismatched FROM strangler.evidence_counters WHERE route = 'items.get'")
samples=$(psql -d evidence -c "SELECT count(*) FROM strangler.evidence_samples WHERE route = 'items.get'")
# Each proxy's own diff store (its own counts; GET /admin/diffs answers the shared store's).
own() {
  python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT compared FROM route_counters WHERE route = ?", ("items.get",)).fetchone()[0])' \
    "$W/$1/diffs.sqlite"
}
own_a=$(own a); own_b=$(own b)
rps_a=$(awk '/Requests\/sec/{print $2}' "$W/wrk-a.txt"); rps_b=$(awk '/Requests\/sec/{print $2}' "$W/wrk-b.txt")
echo "requests/s: proxy A $rps_a, proxy B $rps_b"
echo "comparisons in the shared store: $compared ($mismatched mismatched) in ${seconds} s:" \
  "$(( compared / seconds ))/s; the proxies' own stores: A $own_a, B $own_b; samples kept in the store: $samples"
echo "store transactions: $(( after - before )) = $(( (after - before) / seconds ))/s" \
  "($(( compared / (after - before > 0 ? after - before : 1) )) comparisons a transaction)"
