#!/usr/bin/env bash
# Whether the shared store costs anything on the request path: ../shared/bench/proxy-vs-nginx twice in one run, the
# proxy first as it is (routes.json and its data directory), then with --store on a PostgreSQL database of its own.
#
#   usage: docs/bench/store-routing.sh [path/to/strangler]     (default .build/release/strangler)
#   env:   ROUNDS, SECONDS_EACH, CONNS as proxy-vs-nginx reads them; PAIRS=2 (file, store, file, store, …)
#
# The store run gives proxy-vs-nginx a wrapper as its binary: `strangler proxy … --store URL`, on a fresh database per
# run (the store is seeded from the bench's routes.json at the proxy's start). Prints each run's table; compare the
# strangler rows and the ratios to nginx (which runs beside each, and absorbs the machine's drift).
# Needs what proxy-vs-nginx needs (nginx, wrk) and PostgreSQL's binaries (/usr/lib/postgresql/N/bin or PG_BIN).
set -euo pipefail
BIN=$(readlink -f "${1:-.build/release/strangler}")
PAIRS=${PAIRS:-2}
BENCH=$(dirname "$0")/../../../shared/bench/proxy-vs-nginx
[ -x "$BIN" ] || { echo "no strangler binary at $BIN (swift build -c release)" >&2; exit 2; }
[ -f "$BENCH" ] || { echo "no proxy-vs-nginx at $BENCH" >&2; exit 2; }
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PG_BIN/initdb" ] || { echo "needs PostgreSQL (apt-get install -y postgresql)" >&2; exit 2; }
W=$(mktemp -d /tmp/strangler-store-bench.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres: "$W"; as_pg=(runuser -u postgres --); fi
cleanup() { "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$W/pg" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT
PG_PORT=18450
"${as_pg[@]}" "$PG_BIN/initdb" -D "$W/pg" -U strangler -A trust -E UTF8 --no-sync >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$W/pg" -l "$W/pg.log" -w -o "-k $W -c listen_addresses=127.0.0.1 -p $PG_PORT" \
  start >/dev/null
for pair in $(seq "$PAIRS"); do
  echo "== file (routes.json), run $pair"
  bash "$BENCH" "$BIN"
  "${as_pg[@]}" "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U strangler -d postgres -qc "CREATE DATABASE run$pair"
  cat >"$W/strangler-with-store" <<EOF
#!/usr/bin/env bash
exec "$BIN" "\$@" --store "postgres://strangler@127.0.0.1:$PG_PORT/run$pair?sslmode=disable"
EOF
  chmod +x "$W/strangler-with-store"
  echo "== shared store (--store), run $pair"
  bash "$BENCH" "$W/strangler-with-store"
done
