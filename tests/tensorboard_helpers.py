"""A real TensorBoard for tests and benchmarks, and the API server's service proxy routed to it.

The API-only control plane has no kubelet, so the sweep's TensorBoard pod never
runs. `serve` starts TensorBoard as a process here; `route_service` makes the
sweep's Service lead to it: a Pod object (never scheduled) whose status says
it has this host's address, and an EndpointSlice for the Service naming that
Pod. The API server proxies only to an endpoint whose target Pod has the
endpoint's IP, and never to loopback or link-local addresses, so TensorBoard
listens on a non-loopback address of this host (`host_address`), for as long
as the `serve` block lasts.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def host_address() -> str | None:
    """An IPv4 address of this host that is not loopback or link-local (the service proxy refuses those)."""
    try:
        out = subprocess.run(["ip", "-j", "-4", "addr", "show", "scope", "global"], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    addresses = [a["local"] for link in json.loads(out or "[]") for a in link.get("addr_info", [])
                 if a.get("family") == "inet" and not a["local"].startswith(("127.", "169.254."))]
    return addresses[0] if addresses else None


def tags(url: str) -> dict[str, dict] | None:
    """TensorBoard's scalar tag index ({run: {tag: ...}}), or None while it does not answer."""
    try:
        return json.loads(urllib.request.urlopen(url + "data/plugin/scalars/tags", timeout=5).read())
    except OSError:
        return None


@contextmanager
def serve(logs: Path, *, host: str = "127.0.0.1", ready: Callable[[dict[str, dict]], bool] = lambda _: True,
          timeout: float = 90, extra: tuple[str, ...] = ()) -> Iterator[str]:
    """A real TensorBoard over `logs` on host, reloading every second, until `ready(tag index)`; yields its URL.

    Stopped (and its port closed) when the block ends, whatever happens in it.
    """
    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(logs), "--host", host,
                             "--port", str(port), "--reload_interval", "1", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://{host}:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                why = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise AssertionError(f"TensorBoard exited: {why}")
            index = tags(url)
            if index is not None and ready(index):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"TensorBoard at {url} was not ready within {timeout:.0f} s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def route_service(kubectl: Callable[..., object], namespace: str, service: str, url: str) -> None:
    """Make the API server's proxy to `service` (port name `http`) reach the TensorBoard at url.

    `kubectl(*args, input=...)` runs kubectl as an admin. The Pod is labelled
    as nothing's, so no selector of sweepctl's matches it.
    """
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    pod = f"{service}-here"
    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": namespace},
        "spec": {"containers": [{"name": "tensorboard", "image": "tensorboard-runs-on-the-host"}]},
    }))
    kubectl("-n", namespace, "patch", "pod", pod, "--subresource=status", "--type=merge", "-p",
            json.dumps({"status": {"podIP": host, "podIPs": [{"ip": host}]}}))
    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": pod, "namespace": namespace, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": int(port), "protocol": "TCP"}],
        "endpoints": [{"addresses": [host], "conditions": {"ready": True},
                       "targetRef": {"kind": "Pod", "name": pod, "namespace": namespace}}],
    }))


def proxy_requests(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> int:
    """How many requests the API server has proxied to services so far, by its own count.

    `apiserver_request_total` counts them as verb CONNECT (a GET and a form
    POST alike), by answer code; this is the sum over codes.
    """
    total = 0
    for line in kubectl("get", "--raw", "/metrics").stdout.splitlines():
        if (line.startswith("apiserver_request_total{") and 'resource="services"' in line
                and 'subresource="proxy"' in line):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


_ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def _hparams(url: str, route: str, body: dict, get: Callable[[str], bytes] | None) -> dict:
    """The HParams plugin's answer to a request (GET with ?request=, which it takes as it takes a POST).

    `get(path)` fetches a path some other way (the API server's service proxy); by default, from url.
    """
    path = "data/plugin/hparams/" + route + "?" + urllib.parse.urlencode({"request": json.dumps(body)})
    if get is not None:
        return json.loads(get(path))
    with urllib.request.urlopen(url + path, timeout=30) as response:
        return json.loads(response.read())


def hparams_experiment(url: str, *, get: Callable[[str], bytes] | None = None) -> dict:
    """The HParams dashboard's experiment: hparamInfos (name, type, domain) and metricInfos."""
    return _hparams(url, "experiment", {"experimentName": ""}, get)


def hparams_sessions(url: str, *, get: Callable[[str], bytes] | None = None) -> dict[str, dict]:
    """Every session the HParams dashboard lists, by name: {"hparams", "status", "metrics": {tag: value}}."""
    groups = _hparams(url, "session_groups", {"startIndex": 0, "sliceSize": 100000, "allowedStatuses": _ALL_STATUSES,
                                              "colParams": [], "aggregationType": "AGGREGATION_AVG"}, get)
    return {s["name"]: {"hparams": g["hparams"], "status": s["status"],
                        "metrics": {m["name"]["tag"]: m["value"] for m in s.get("metricValues", [])}}
            for g in groups.get("sessionGroups", []) for s in g["sessions"]}
