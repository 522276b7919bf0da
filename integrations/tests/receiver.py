"""A real webhook receiver for tests: an HTTP server thread on 127.0.0.1
(ephemeral port) that verifies signatures the way docs/integration.md says.
It may listen on another loopback address, speak TLS (``ssl_context``) and
answer with a redirect (``mode="redirect"``)."""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from integrations.signing import SIGNATURE_HEADER, verify


@dataclass
class Received:
    headers: dict
    body: bytes
    verified: bool

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str = ""
    # "ok": 200; "fail": 503; "redirect": 302 to ``location``; a stopped
    # server refuses connections.
    mode: str = "ok"
    location: str = ""
    host: str = "127.0.0.1"
    ssl_context: ssl.SSLContext | None = None
    received: list[Received] = field(default_factory=list)
    refused: int = 0
    server: ThreadingHTTPServer | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return self.url_for(self.host)

    def url_for(self, name: str) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{name}:{self.port}/hooks/kamen"

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if owner.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", owner.location)
                    self.end_headers()
                    return
                if owner.mode != "ok":
                    owner.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    self.wfile.write(b"down for maintenance")
                    return
                ok = verify(
                    secret=owner.secret,
                    header=self.headers.get(SIGNATURE_HEADER, ""),
                    body=body,
                    now=time.time(),
                )
                owner.received.append(Received(dict(self.headers), body, ok))
                self.send_response(200 if ok else 400)
                self.end_headers()
                self.wfile.write(b"ok" if ok else b"bad signature")

            def log_message(self, *args):
                pass

        # Port 0 first time; the same port again after a stop (the URL is
        # registered with the endpoint).
        self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.server.daemon_threads = True
        if self.ssl_context is not None:
            self.server.socket = self.ssl_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self) -> list[dict]:
        return [r.event for r in self.received]
