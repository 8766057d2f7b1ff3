"""A small HTTPS fault proxy between sweepctl and the API server, for the fault suite.

TLS ends here (a certificate for 127.0.0.1 minted from the test bed's CA, so
the kubeconfig's CA still verifies it) and every request is forwarded to the
real kube-apiserver. Faults are HTTP-level, which a TCP proxy cannot do inside
TLS: answer 429 with Retry-After without forwarding, drop the client's
connection after forwarding a request (its answer is lost, its effect is not),
add latency, or black-hole (accept, never answer), all traffic or only paths
containing a string. It can also SIGKILL its client once the n-th request was
forwarded, before that request's answer: a kill at a seeded point of the
request stream. Every request is counted.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade", "te"}


@dataclass
class Faults:
    """What the proxy does to the next requests; change it while it runs."""

    throttle_one_in: int = 0  # answer 429 to every n-th request received
    retry_after: tuple[int, int] = (1, 3)  # seconds, drawn per 429
    drop_after_forward: dict[str, int] = field(default_factory=dict)  # method -> how many answers to lose
    latency: float = 0.0
    black_hole: bool = False
    black_hole_only: str = ""  # ... only paths containing this
    fail: dict[str, int] = field(default_factory=dict)  # method -> HTTP status to answer, not forwarded
    fail_only: str = ""  # ... for paths containing this only (fail and drop_after_forward)
    seed: int = 0
    kill_after: tuple[int, int] | None = None  # (n, pid): SIGKILL pid once the n-th request was forwarded


def mint_certificate(pki: Path, out: Path) -> tuple[Path, Path]:
    """A serving certificate for 127.0.0.1 signed by the test bed's CA (pki/ca.crt, pki/ca.key)."""
    out.mkdir(parents=True, exist_ok=True)
    key, csr, crt, ext = out / "proxy.key", out / "proxy.csr", out / "proxy.crt", out / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
        "-out", str(csr), "-subj", "/CN=fault-proxy")
    run("x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"),
        "-CAcreateserial", "-days", "1", "-extfile", str(ext), "-out", str(crt))
    return crt, key


class FaultProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: str, ca: Path, cert: Path, key: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        host, port = upstream.removeprefix("https://").rsplit(":", 1)
        self.upstream = (host, int(port))
        self.upstream_tls = ssl.create_default_context(cafile=str(ca))
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(str(cert), str(key))
        self.faults = Faults()
        self.rng = random.Random(0)
        self.received = 0
        self.counts: Counter[str] = Counter()  # "received POST", "429 GET", "dropped POST", "forwarded GET" ...
        self.sleeps: list[float] = []  # Retry-After values sent
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that went away (killed, or timed out on a black hole): expected here
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def set(self, **faults: object) -> None:
        with self.lock:
            self.faults = Faults(**faults)  # type: ignore[arg-type]
            self.rng = random.Random(self.faults.seed)
            self.received = 0

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def total(self, prefix: str = "received") -> int:
        with self.lock:
            return sum(n for k, n in self.counts.items() if k.startswith(prefix))

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def kubeconfig(self, original: Path, out: Path) -> Path:
        config = json.loads(original.read_text())
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = self.url
        out.write_text(json.dumps(config))
        out.chmod(0o600)
        return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def setup(self) -> None:  # TLS in the connection's own thread, so a slow handshake blocks nobody
        self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()
        self._upstream: http.client.HTTPSConnection | None = None

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _any(self) -> None:
        proxy = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        proxy.count(f"received {self.command}")
        with proxy.lock:
            faults = proxy.faults
            proxy.received += 1
            throttle = faults.throttle_one_in and proxy.received % faults.throttle_one_in == 0
            wait = proxy.rng.randint(*faults.retry_after)
            drop = faults.drop_after_forward.get(self.command, 0) > 0 and faults.fail_only in self.path
            if drop:
                faults.drop_after_forward[self.command] -= 1
            kill = faults.kill_after is not None and proxy.received == faults.kill_after[0]
        if faults.black_hole and faults.black_hole_only in self.path:
            proxy.count(f"black-holed {self.command}")
            proxy.stopping.wait(600)
            self.close_connection = True
            return
        if faults.latency:
            time.sleep(faults.latency)
        if self.command in faults.fail and faults.fail_only in self.path:
            proxy.count(f"failed {self.command}")
            payload = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "message": "etcdserver: request timed out", "code": faults.fail[self.command]})
            self.send_response(faults.fail[self.command])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload.encode())
            return
        if throttle:
            proxy.count(f"429 {self.command}")
            with proxy.lock:
                proxy.sleeps.append(wait)
            payload = b"Too many requests, please try again later.\n"
            self.send_response(429)
            self.send_header("Retry-After", str(wait))
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        status, reason, headers, data = self._forward(body)
        proxy.count(f"forwarded {self.command}")
        proxy.count(f"answered {status} {self.command}")
        if kill:  # the request took effect; its client dies before it hears so
            assert faults.kill_after is not None
            os.kill(faults.kill_after[1], signal.SIGKILL)
            proxy.count(f"killed at {self.command} {self.path.split('?')[0]}")
            self.close_connection = True
            return
        if drop:  # the request took effect; its answer never arrives
            proxy.count(f"dropped {self.command}")
            self.close_connection = True
            self.request.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(status, reason)
        for name, value in headers:
            if name.lower() not in _HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _forward(self, body: bytes | None) -> tuple[int, str, list[tuple[str, str]], bytes]:
        for attempt in range(2):  # a kept-alive upstream connection may have been closed meanwhile
            if self._upstream is None:
                host, port = self.server.upstream
                self._upstream = http.client.HTTPSConnection(host, port, context=self.server.upstream_tls,
                                                             timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                self._upstream.request(self.command, self.path, body=body, headers=headers)
                resp = self._upstream.getresponse()
                return resp.status, resp.reason, resp.getheaders(), resp.read()
            except (OSError, http.client.HTTPException):
                self._upstream.close()
                self._upstream = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any
