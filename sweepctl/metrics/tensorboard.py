"""Reading a sweep's TensorBoard over its HTTP API (Kubernetes).

The same data people look at: `/data/plugin/scalars/tags` says which runs
(trials) have which scalars, `/data/plugin/scalars/scalars` gives one series as
[[wall_time, step, value], ...], and the images plugin gives the latest
picture. Requests go through a `Fetch`: the API server's service proxy (with
the cluster's credentials) or plain HTTP to a URL such as a port-forward.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sweepctl.core.diagnostics import SweepctlError
from sweepctl.metrics.events import RunData
from sweepctl.metrics.ranking import Series

__all__ = ["Fetch", "FetchError", "url_fetch", "read_runs"]

# GET a path relative to TensorBoard's root with a query; returns the body.
Fetch = Callable[[str, list[tuple[str, str]]], bytes]


class FetchError(Exception):
    """One request failed; `status` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def url_fetch(base_url: str, *, timeout: float = 30) -> Fetch:
    """Plain HTTP to a TensorBoard at base_url (e.g. http://localhost:6006/ from a port-forward)."""
    base = base_url if base_url.endswith("/") else base_url + "/"

    def fetch(path: str, query: list[tuple[str, str]]) -> bytes:
        url = base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as err:
            raise FetchError(f"GET {url}: {err.code} {err.reason}", status=err.code) from None
        except (OSError, ValueError) as err:
            raise FetchError(f"GET {url}: {err}", status=0) from None

    return fetch


def _json(fetch: Fetch, path: str, query: list[tuple[str, str]]) -> Any:
    return json.loads(fetch(path, query))


def read_runs(fetch: Fetch, names: Collection[str], tags: Collection[str], *, where: str,
              image_tag: str | None = None, workers: int = 16, required: bool = True) -> dict[str, RunData]:
    """The trials' series (and latest images) as TensorBoard serves them.

    TensorBoard being unreachable is an error, unless not `required`: then
    every trial has no metric, with why. A trial it does not know, or one
    whose series cannot be read, only has no metric.
    """
    try:
        available: dict[str, dict[str, Any]] = _json(fetch, "data/plugin/scalars/tags", [])
    except (FetchError, ValueError) as err:
        if not required:
            why = f"TensorBoard not reachable yet ({err})"
            return {n: RunData(scalars={t: Series(error=why) for t in tags}, error=why) for n in names}
        raise SweepctlError(
            f"cannot read the sweep's TensorBoard at {where}: {err}",
            hint="is its Deployment ready? Or port-forward to it and pass --tensorboard-url http://localhost:6006/",
        ) from None

    def one(name: str) -> tuple[str, RunData]:
        have = available.get(name)
        if have is None:
            return name, RunData(scalars={t: Series(error="no logs in TensorBoard") for t in tags},
                                 error="no logs in TensorBoard")
        scalars = {}
        for tag in tags:
            if tag not in have:
                scalars[tag] = Series(error=f"no '{tag}' values")
                continue
            try:
                rows = _json(fetch, "data/plugin/scalars/scalars", [("run", name), ("tag", tag)])
                points = {int(step): float(value) for _, step, value in rows}
                scalars[tag] = Series(points=tuple(sorted(points.items())), error=None if points else "empty")
            except (FetchError, ValueError, TypeError) as err:
                scalars[tag] = Series(error=str(err))
        image = _latest_image(fetch, name, image_tag) if image_tag else None
        return name, RunData(scalars=scalars, image=image)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, list(names)))


def _latest_image(fetch: Fetch, run: str, tag: str) -> bytes | None:
    try:
        entries = _json(fetch, "data/plugin/images/images", [("run", run), ("tag", tag), ("sample", "0")])
        if not entries:
            return None
        latest = max(entries, key=lambda e: e.get("step", 0))
        return fetch("data/plugin/images/individualImage", urllib.parse.parse_qsl(latest["query"]))
    except (FetchError, ValueError, KeyError, TypeError):
        return None
