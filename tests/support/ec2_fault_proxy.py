#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of an EC2 API endpoint (the moto
server in the tests).

Each request draws one fault from a seeded generator:

  throttle  answer 503 RequestLimitExceeded, as EC2 does, without forwarding
  error     answer 500 InternalError without forwarding
  drop      close the connection without forwarding
  lost      forward, let the upstream act, then close the connection
            without answering: the dangerous one (did the launch happen?)
  slow      forward after a delay

--quota N answers RunInstances with 400 InstanceLimitExceeded once N
instances have been launched through the proxy. --hold-run-ms M forwards
RunInstances, then holds the answer M ms (a host killed meanwhile never
hears it). --lose-run N loses the answers of the first N RunInstances after
moto has launched them. GET /__proxy/stats returns what happened, as JSON.

Loopback only; it stops by itself after --lifetime seconds.
"""

import argparse
import http.client
import json
import random
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EC2_ERROR = """<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{rid}</RequestID></Response>"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True, help="host:port of the EC2 endpoint")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    for fault in ("throttle", "error", "drop", "lost", "slow"):
        ap.add_argument("--" + fault, type=float, default=0.0, help="probability per request")
    ap.add_argument("--slow-ms", type=int, default=1500)
    ap.add_argument("--quota", type=int, default=-1)
    ap.add_argument("--hold-run-ms", type=int, default=0)
    ap.add_argument("--lose-run", type=int, default=0, help="lose the answers of the first N RunInstances forwarded")
    ap.add_argument("--lifetime", type=float, default=600)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    lock = threading.Lock()
    stats = {"requests": 0, "forwarded": 0, "run_instances_forwarded": 0, "launched": 0, "faults": {}}

    def draw():
        with lock:
            x = rng.random()
        for fault in ("throttle", "error", "drop", "lost", "slow"):
            p = getattr(args, fault)
            if x < p:
                return fault
            x -= p
        return None

    def count(key):
        with lock:
            stats["faults"][key] = stats["faults"].get(key, 0) + 1

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, status, body, ctype="text/xml"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def ec2_error(self, status, code, message):
            self.reply(status, EC2_ERROR.format(code=code, message=message, rid="proxy-%d" % time.monotonic_ns()))

        def drop(self):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def do_GET(self):
            if self.path == "/__proxy/stats":
                with lock:
                    self.reply(200, json.dumps(stats), "application/json")
                return
            self.forward(b"")

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.forward(body)

        def forward(self, body):
            with lock:
                stats["requests"] += 1
            text = body.decode("utf-8", "replace")
            run = "Action=RunInstances" in text
            fault = draw()
            if fault:
                count(fault)
            if fault == "throttle":
                return self.ec2_error(503, "RequestLimitExceeded", "Request limit exceeded.")
            if fault == "error":
                return self.ec2_error(500, "InternalError", "An internal error has occurred.")
            if fault == "drop":
                return self.drop()
            if fault == "slow":
                time.sleep(args.slow_ms / 1000)
            if run and args.quota >= 0:
                m = re.search(r"MaxCount=(\d+)", text)
                want = int(m.group(1)) if m else 1
                with lock:
                    over = stats["launched"] + want > args.quota
                if over:
                    count("quota")
                    return self.ec2_error(400, "InstanceLimitExceeded", "You have requested more instances (%d) than your current instance limit of %d allows." % (want, args.quota))
            conn = http.client.HTTPConnection(args.upstream, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            with lock:
                stats["forwarded"] += 1
                if run:
                    stats["run_instances_forwarded"] += 1
                    if resp.status == 200:
                        stats["launched"] += data.count(b"<instanceId>")
            if run and args.hold_run_ms:
                time.sleep(args.hold_run_ms / 1000)
            if run:
                with lock:
                    lose = stats["run_instances_forwarded"] <= args.lose_run
                if lose:
                    count("lost_run")
                    return self.drop()
            if fault == "lost":
                return self.drop()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("connection", "content-length", "transfer-encoding", "server", "date"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    threading.Timer(args.lifetime, server.shutdown).start()
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
