#!/usr/bin/env python3
"""The deploy test's outside world on host loopback: feeds served from a folder, and a webhook
receiver that appends each request body as one line to a file.

    peers.py FEED_DIR RECEIVED_FILE PORT_FILE
"""
import http.server
import json
import os
import sys

feed_dir, received, port_file = sys.argv[1:4]


class Peers(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = os.path.join(feed_dir, os.path.basename(self.path))
        try:
            with open(path, "rb") as f:
                body = f.read()
        except OSError:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(received, "a") as f:
            f.write(json.dumps(json.loads(body)) + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Peers)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
