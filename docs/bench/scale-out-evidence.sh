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
