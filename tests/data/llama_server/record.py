#!/usr/bin/env python3
"""Records HTTP exchanges with a llama-server as JSON Lines, for rvec's replay test.

Usage: record.py UPSTREAM_URL LISTEN_PORT OUT.jsonl
Forwards every GET/POST to UPSTREAM_URL (e.g. http://127.0.0.1:18094) and appends
{"method", "path", "request", "status", "response"} per exchange to OUT.jsonl.
"""
import json
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM, PORT, OUT = sys.argv[1].rstrip("/"), int(sys.argv[2]), sys.argv[3]
LOCK = threading.Lock()


class Proxy(BaseHTTPRequestHandler):
    def forward(self, body):
        req = urllib.request.Request(UPSTREAM + self.path, data=body, method=self.command,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                status, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        try:
            response = json.loads(data)
        except ValueError:
            response = data.decode("utf-8", "replace")
        record = {"method": self.command, "path": self.path,
                  "request": json.loads(body) if body else None,
                  "status": status, "response": response}
        with LOCK, open(OUT, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.forward(None)

    def do_POST(self):
        self.forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Proxy).serve_forever()
