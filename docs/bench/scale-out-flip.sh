#!/usr/bin/env bash
# How long a stage change made through proxy A takes to be routed by proxy B, both on one PostgreSQL store.
#
#   usage: docs/bench/scale-out-flip.sh [path/to/strangler]     (default .build/release/strangler)
#   env:   FLIPS=20 POLL=60s
#
# Starts a throw-away PostgreSQL cluster (initdb + pg_ctl on a free port; as the postgres user when run as root), two
# proxies with --store on it (--store-poll POLL, 60 s by default, so that what is measured is the notification, not
# the re-read), then FLIPS times moves items.get between transform and coexist through A's admin API (forced: there is
# no evidence here, and the gates are not what is measured) and, from A's answer, polls B's GET /admin/routes every
# millisecond until B's ETag is the one A answered. Prints each time, then the median and the max.
# Needs PostgreSQL's binaries (/usr/lib/postgresql/N/bin or PG_BIN), curl and python3. Everything listens on
# 127.0.0.1 only.
set -euo pipefail
BIN=${1:-.build/release/strangler}
FLIPS=${FLIPS:-20} POLL=${POLL:-60s}
[ -x "$BIN" ] || { echo "no strangler binary at $BIN (swift build -c release)" >&2; exit 2; }
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PG_BIN/initdb" ] || { echo "needs PostgreSQL (apt-get install -y postgresql)" >&2; exit 2; }
W=$(mktemp -d /tmp/strangler-flip.XXXXXX); PIDS=()
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres: "$W"; as_pg=(runuser -u postgres --); fi
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$W/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
PG_PORT=18350
"${as_pg[@]}" "$PG_BIN/initdb" -D "$W/pg" -U strangler -A trust -E UTF8 --no-sync >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$W/pg" -l "$W/pg.log" -w -o "-k $W -c listen_addresses=127.0.0.1 -p $PG_PORT" \
  start >/dev/null
"${as_pg[@]}" "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U strangler -d postgres -qc "CREATE DATABASE flip" >/dev/null
mkdir -p "$W/a" "$W/b"
cat >"$W/routes.json" <<EOF
{ "monolith": "http://127.0.0.1:18351", "services": { "items": "http://127.0.0.1:18352" },
  "routes": [ { "id": "items.get", "method": "GET", "path": "/items/{id}", "service": "items", "stage": "transform" } ] }
EOF
export STRANGLER_ADMIN_TOKEN=flip-bench-token
STORE="postgres://strangler@127.0.0.1:$PG_PORT/flip?sslmode=disable"
for name in a b; do
  port=$([ $name = a ] && echo 18360 || echo 18361)
  "$BIN" proxy --store "$STORE" --routes "$W/routes.json" --data "$W/$name" --instance-id "$name" \
    --port $((port + 10)) --admin-port $port --store-poll "$POLL" >"$W/$name.log" 2>&1 &
  PIDS+=($!)
done
for port in 18360 18361; do
  for _ in $(seq 1 200); do
    curl -fs -o /dev/null -H "Authorization: Bearer $STRANGLER_ADMIN_TOKEN" "http://127.0.0.1:$port/admin/status" && break
    sleep 0.05
  done
done
python3 - "$FLIPS" <<'EOF'
import http.client, json, statistics, sys, time
flips = int(sys.argv[1])
token = "flip-bench-token"
def call(port, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    head = {"Authorization": "Bearer " + token}
    head.update(headers or {})
    connection.request(method, path, body=body, headers=head)
    answer = connection.getresponse()
    data = answer.read()
    connection.close()
    return answer.status, answer.getheader("ETag"), data
times = []
stage = "transform"
for index in range(flips):
    stage = "coexist" if stage == "transform" else "transform"
    _, etag, _ = call(18360, "GET", "/admin/routes")
    body = json.dumps({"stage": stage, "reason": "flip bench", "force": True})
    status, new, data = call(18360, "POST", "/admin/routes/items.get/stage", body,
                             {"If-Match": etag, "Content-Type": "application/json"})
    if status != 200:
        sys.exit("flip %d: %d %s" % (index, status, data[:300]))
    answered = time.monotonic()
    while True:
        _, seen, _ = call(18361, "GET", "/admin/routes")
        if seen == new:
            break
        if time.monotonic() - answered > 30:
            sys.exit("B did not route by flip %d within 30 s" % index)
        time.sleep(0.001)
    times.append((time.monotonic() - answered) * 1000)
    print("flip %2d: B routes by it %.1f ms after A answered" % (index + 1, times[-1]))
print("%d flips: median %.1f ms, max %.1f ms" % (len(times), statistics.median(times), max(times)))
EOF
