"""Reading a sweep's TensorBoard over its HTTP API (Kubernetes).

The same data people look at: `/data/plugin/scalars/tags` says which runs
(trials) have which scalars; the scalars plugin's `scalars_multirun` route
gives one tag's series of many runs in one POST, {run: [[wall_time, step,
value], ...]}, and `scalars` one run's; the images plugin gives the latest
picture. So a read costs the tag index plus one POST per tag (per
MULTIRUN_BATCH trials), whatever the trial count. Where that POST is refused
(through the API server's service proxy it needs `create` on
`services/proxy`) or TensorBoard lacks the route, the read falls back to one
GET per trial and tag, and says why. Requests go through a `Fetch`: the
service proxy (with the cluster's credentials) or plain HTTP to a URL such as
a port-forward.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from sweepctl.core.diagnostics import SweepctlError
from sweepctl.metrics.events import RunData
from sweepctl.metrics.names import found_note, split
from sweepctl.metrics.ranking import Series

__all__ = ["Fetch", "FetchError", "MULTIRUN_BATCH", "Reading", "url_fetch", "read_runs"]

# Runs named in one scalars_multirun POST: about 50 KB of form and 4 MB of JSON
# back for trials of 101 points. Batches go out at once.
MULTIRUN_BATCH = 1000


class Fetch(Protocol):
    """GET a path relative to TensorBoard's root with a query, or POST `form` to it; returns the body."""

    def __call__(self, path: str, query: list[tuple[str, str]], *,
                 form: list[tuple[str, str]] | None = None) -> bytes: ...


class FetchError(Exception):
    """One request failed; `status` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, kw_only=True)
class Reading:
    """What a read found: each trial's data, and a note for the user when it took the slow way."""

    runs: dict[str, RunData]
    note: str | None = None


def url_fetch(base_url: str, *, timeout: float = 60) -> Fetch:
    """Plain HTTP to a TensorBoard at base_url (e.g. http://localhost:6006/ from a port-forward)."""
    base = base_url if base_url.endswith("/") else base_url + "/"

    def fetch(path: str, query: list[tuple[str, str]], *, form: list[tuple[str, str]] | None = None) -> bytes:
        url = base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        method = "GET" if data is None else "POST"
        try:
            with urllib.request.urlopen(url, data=data, timeout=timeout) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as err:
            raise FetchError(f"{method} {url}: {err.code} {err.reason}", status=err.code) from None
        except (OSError, ValueError) as err:
            raise FetchError(f"{method} {url}: {err}", status=0) from None

    return fetch


def _json(fetch: Fetch, path: str, query: list[tuple[str, str]], form: list[tuple[str, str]] | None = None) -> Any:
    return orjson.loads(fetch(path, query, form=form))  # 1,000 trials' series are about 5 MB of JSON


def _series(rows: Any) -> Series:
    points = {int(step): float(value) for _, step, value in rows}
    return Series(points=tuple(sorted(points.items())), error=None if points else "empty")


def read_runs(fetch: Fetch, names: Collection[str], tags: Collection[str], *, where: str,
              image_tag: str | None = None, workers: int = 16, required: bool = True,
              explain: Collection[str] = ()) -> Reading:
    """The trials' series of `tags` (metric names) and latest images, as TensorBoard serves them.

    TensorBoard's runs are folders: a trial's own is `<trial>`, its
    subfolders `<trial>/validation` and so on, so a metric `validation/x` of
    trial T is tag `x` of run `T/validation` when that run exists
    (metrics.names). The tag index lists every run, so this costs no extra
    request. TensorBoard being unreachable is an error, unless not
    `required`: then every trial has no metric, with why. A trial it does
    not know, or one whose series cannot be read, only has no metric; one in
    `explain` (ended) says which runs and tags it does have.
    """
    try:
        available: dict[str, dict[str, Any]] = _json(fetch, "data/plugin/scalars/tags", [])
    except (FetchError, ValueError) as err:
        if not required:
            why = f"TensorBoard not reachable yet ({err})"
            return Reading(runs={n: RunData(scalars={t: Series(error=why) for t in tags}, error=why) for n in names})
        raise SweepctlError(
            f"cannot read the sweep's TensorBoard at {where}: {err}",
            hint="is its Deployment ready? Or port-forward to it and pass --tensorboard-url http://localhost:6006/",
        ) from None

    trial_runs: dict[str, dict[str, Any]] = {}  # trial -> its runs by subfolder ("" its own) -> their tags
    for run, run_tags in available.items():
        top, _, rest = run.partition("/")
        trial_runs.setdefault(top, {})[rest] = run_tags
    located = {n: {m: split(m, trial_runs[n].__contains__) for m in tags} for n in names if n in trial_runs}
    wanted: dict[str, list[str]] = {}
    for n, where_ in located.items():
        for run, tag in where_.values():
            if tag in trial_runs[n].get(run, ()):
                wanted.setdefault(tag, []).append(_run(n, run))
    got: dict[tuple[str, str], Series] | None = None
    note = None
    ended = set(explain)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        if wanted:
            try:
                got = _bulk(fetch, pool, wanted)
            except FetchError as err:
                note = _slow_note(wanted, err)

        def one(name: str) -> tuple[str, RunData]:
            have = trial_runs.get(name)
            if have is None:
                return name, RunData(scalars={t: Series(error="no logs in TensorBoard") for t in tags},
                                     error="no logs in TensorBoard")
            scalars = {}
            for metric, (run, tag) in located[name].items():
                if tag not in have.get(run, ()):
                    scalars[metric] = Series(error=found_note(metric, have) if name in ended
                                             else f"no '{metric}' values")
                elif got is not None:
                    scalars[metric] = got.get((tag, _run(name, run))) or Series(error="empty")
                else:
                    try:
                        rows = _json(fetch, "data/plugin/scalars/scalars", [("run", _run(name, run)), ("tag", tag)])
                        scalars[metric] = _series(rows)
                    except (FetchError, ValueError, TypeError) as err:
                        scalars[metric] = Series(error=str(err))
            image = _latest_image(fetch, name, image_tag) if image_tag else None
            return name, RunData(scalars=scalars, image=image)

        runs = dict(pool.map(one, list(names))) if got is None or image_tag else dict(map(one, names))
    return Reading(runs=runs, note=note)


def _run(trial: str, sub: str) -> str:
    """TensorBoard's name for a trial's run subfolder (its own folder: the trial's name)."""
    return f"{trial}/{sub}" if sub else trial


def _requests(wanted: dict[str, list[str]], *, bulk: bool) -> int:
    """What a read of these (tag -> runs) costs: the tag index, then POSTs by batch or GETs by run."""
    return 1 + sum(-(-len(runs) // MULTIRUN_BATCH) if bulk else len(runs) for runs in wanted.values())


def _slow_note(wanted: dict[str, list[str]], err: FetchError) -> str:
    """One line: the read went run by run, why, and what would make it one request per tag."""
    trials = len({run for runs in wanted.values() for run in runs})
    why = ("the service proxy refused the POST that reads them all at once (403); grant `create` on "
           "`services/proxy` (README, Permissions) to read them in "
           f"{_requests(wanted, bulk=True):,}" if err.status == 403
           else f"TensorBoard has no multi-run scalars route ({err.status}); a newer tensorboard.image reads them in "
           f"{_requests(wanted, bulk=True):,}")
    return f"read {trials:,} trials' metrics one request each ({_requests(wanted, bulk=False):,} requests): {why}"


def _bulk(fetch: Fetch, pool: ThreadPoolExecutor, wanted: dict[str, list[str]]) -> dict[tuple[str, str], Series]:
    """Every (tag, run) series through scalars_multirun: one POST per tag and MULTIRUN_BATCH runs, at once.

    Raises FetchError when a POST is refused (403) or the route is missing
    (404, 405), so the caller reads run by run; any other failure leaves
    that batch's runs with the error as their series.
    """
    batches = [(tag, runs[i:i + MULTIRUN_BATCH]) for tag, runs in wanted.items()
               for i in range(0, len(runs), MULTIRUN_BATCH)]

    def post(batch: tuple[str, list[str]]) -> dict[tuple[str, str], Series]:
        tag, runs = batch
        form = [("tag", tag), *(("runs", run) for run in runs)]
        try:
            body = _json(fetch, "data/plugin/scalars/scalars_multirun", [], form)
            return {(tag, run): _series(rows) for run, rows in body.items()}
        except FetchError as err:
            if err.status in (403, 404, 405):
                raise
            return {(tag, run): Series(error=str(err)) for run in runs}
        except (ValueError, TypeError, AttributeError) as err:
            return {(tag, run): Series(error=f"unreadable answer from TensorBoard: {err}") for run in runs}

    out: dict[tuple[str, str], Series] = {}
    for part in pool.map(post, batches):
        out.update(part)
    return out


def _latest_image(fetch: Fetch, run: str, tag: str) -> bytes | None:
    try:
        entries = _json(fetch, "data/plugin/images/images", [("run", run), ("tag", tag), ("sample", "0")])
        if not entries:
            return None
        latest = max(entries, key=lambda e: e.get("step", 0))
        return fetch("data/plugin/images/individualImage", urllib.parse.parse_qsl(latest["query"]))
    except (FetchError, ValueError, KeyError, TypeError):
        return None
