#!/usr/bin/env bash
# The leads service on SQLite against the same service on PostgreSQL: reads (a page of 50, one lead) and writes
# (PATCH of one lead), requests per second and latency from wrk.
#
#   usage: docs/bench/leads-postgres.sh [path/to/strangler]     (default .build/release/strangler)
#   env:   DURATION=5s CONNECTIONS=16 SEED=2000
#
# Starts a throw-away PostgreSQL cluster (initdb + pg_ctl; as the postgres user when run as root), the monolith
# seeded with SEED contacts (and its proportionate leads), and two leads services following its feed: one on
# SQLite, one on PostgreSQL. Once both have caught up, runs wrk against each in turn. Needs PostgreSQL's binaries,
# wrk, curl and python3. Everything listens on 127.0.0.1 only.
set -euo pipefail
BIN=${1:-.build/release/strangler}
DURATION=${DURATION:-5s} CONNECTIONS=${CONNECTIONS:-16} SEED=${SEED:-2000}
[ -x "$BIN" ] || { echo "no strangler binary at $BIN (swift build -c release)" >&2; exit 2; }
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PG_BIN/initdb" ] || { echo "needs PostgreSQL (apt-get install -y postgresql)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "needs wrk" >&2; exit 2; }
W=$(mktemp -d /tmp/strangler-leads.XXXXXX); PIDS=()
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres: "$W"; as_pg=(runuser -u postgres --); fi
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$W/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
PG_PORT=18550
"${as_pg[@]}" "$PG_BIN/initdb" -D "$W/pg" -U strangler -A trust -E UTF8 --no-sync >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$W/pg" -l "$W/pg.log" -w -o "-k $W -c listen_addresses=127.0.0.1 -p $PG_PORT" \
  start >/dev/null
"${as_pg[@]}" "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U strangler -qtA -d postgres -c "CREATE DATABASE crm" >/dev/null
mkdir -p "$W/data"
"$BIN" monolith --port 18551 --db "$W/data/monolith.sqlite" --seed "$SEED" >"$W/monolith.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 600); do curl -fs -o /dev/null http://127.0.0.1:18551/healthz && break; sleep 0.1; done
"$BIN" service leads --port 18552 --db "$W/data/leads.sqlite" --feed http://127.0.0.1:18551 >"$W/sqlite.log" 2>&1 &
PIDS+=($!)
"$BIN" service leads --port 18553 --db "postgres://strangler@127.0.0.1:$PG_PORT/crm?sslmode=disable" \
  --feed http://127.0.0.1:18551 >"$W/postgres.log" 2>&1 &
PIDS+=($!)
caught_up() {
  curl -fs "http://127.0.0.1:$1/sync/status" | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["head"] is not None and s["lagEvents"] == 0 else 1)'
}
for port in 18552 18553; do
  for _ in $(seq 1 1200); do caught_up "$port" 2>/dev/null && break; sleep 0.1; done
done
id=$(curl -fs 'http://127.0.0.1:18552/leads?limit=1' | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
count=$(curl -fs 'http://127.0.0.1:18552/leads?limit=200' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
echo "leads synced: at least $count on each; one of them: $id"
printf '%s\n' 'wrk.method = "PATCH"' 'wrk.headers["Content-Type"] = "application/json"' \
  'local n = 0' 'request = function() n = n + 1; return wrk.format(nil, nil, nil, "{\"score\":" .. (n % 100) .. "}") end' \
  >"$W/patch.lua"
run() { # name port path [script]
  local out
  out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency ${4:+-s "$4"} "http://127.0.0.1:$2$3")
  printf '%-10s %-24s %10s rps  p50 %8s  p99 %8s\n' "$1" "$5" "$(awk '/Requests\/sec/{print $2}' <<<"$out")" \
    "$(awk '$1=="50%"{print $2}' <<<"$out")" "$(awk '$1=="99%"{print $2}' <<<"$out")"
}
for what in "page of 50|/leads?limit=50|" "one lead|/leads/$id|" "PATCH one lead|/leads/$id|$W/patch.lua"; do
  IFS='|' read -r label path script <<<"$what"
  run sqlite 18552 "$path" "$script" "$label"
  run postgres 18553 "$path" "$script" "$label"
done
