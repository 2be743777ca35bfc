#!/usr/bin/env python3
"""A small orders API that is not Strangler's demo CRM, for docs/your-own-monolith.md.

    python3 orders.py --port 9001 --peer http://127.0.0.1:9002                          # the monolith
    python3 orders.py --port 9002 --peer http://127.0.0.1:9001 --cursor --skew --gzip   # its extracted service

GET /orders (two a page, Link: rel="next"; with --cursor {"data", "nextCursor"}), GET /orders/{id},
POST /orders {"id", "item", "total"} (a dry run when Strangler-Dry-Run: 1). A write is copied to --peer (standing
in for the application's own sync). --skew: the clock runs a minute ahead; --gzip: answers gzip when accepted.
Standard library only.
"""
import argparse, gzip, json, threading, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
ORDERS = {i: {"id": i, "item": f"item {i}", "total": i * 100, "updatedAt": "2026-12-01T10:00:00Z"} for i in range(1, 6)}


def shown(order):
    order = dict(order)
    if ARGS.skew:
        order["updatedAt"] = order["updatedAt"].replace("10:00", "10:01")
    return order


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, value, extra=()):
        body = json.dumps(value, separators=(",", ":")).encode()
        headers = [("Content-Type", "application/json")] + list(extra)
        if ARGS.gzip and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            headers.append(("Content-Encoding", "gzip"))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        with LOCK:
            orders = [ORDERS[k] for k in sorted(ORDERS)]
        if path == "/orders":
            after = int(params.get("after") or params.get("cursor") or 0)
            page = [o for o in orders if o["id"] > after][:2]
            more = bool(page) and page[-1]["id"] < orders[-1]["id"]
            items = [shown(o) for o in page]
            if ARGS.cursor:  # the service pages another way
                return self.answer(200, {"data": items, "nextCursor": str(page[-1]["id"]) if more else None})
            link = [("Link", f'</orders?after={page[-1]["id"]}>; rel="next"')] if more else []
            return self.answer(200, items, link)
        if path.startswith("/orders/") and path[8:].isdigit():
            order = next((o for o in orders if o["id"] == int(path[8:])), None)
            return self.answer(200, shown(order)) if order else self.answer(404, {"error": "no such order"})
        self.answer(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        try:
            fields = json.loads(raw)
            order = {"id": int(fields["id"]), "item": str(fields["item"]), "total": int(fields["total"]),
                     "updatedAt": "2026-12-01T10:00:00Z"}
        except (ValueError, KeyError, TypeError):
            return self.answer(400, {"error": "id, item and total are required"})
        if self.path != "/orders":
            return self.answer(404, {"error": "not found"})
        if self.headers.get("Strangler-Dry-Run") != "1":
            with LOCK:
                ORDERS[order["id"]] = order
            if ARGS.peer and not self.headers.get("X-Sync"):
                request = urllib.request.Request(ARGS.peer + "/orders", data=raw, method="POST",
                                                 headers={"Content-Type": "application/json", "X-Sync": "1"})
                try:
                    urllib.request.urlopen(request, timeout=5).read()
                except OSError:
                    pass
        self.answer(201, shown(order))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--peer")
    parser.add_argument("--cursor", action="store_true")
    parser.add_argument("--skew", action="store_true")
    parser.add_argument("--gzip", action="store_true")
    ARGS = parser.parse_args()
    ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler).serve_forever()
