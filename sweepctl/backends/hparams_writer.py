"""TensorBoard HParams summaries in a sweep's log folder, written with TensorBoard's own hparams API.

Standalone on purpose (the standard library and tensorboard only, imported when
first writing): the same file runs in two places. The local backend imports it;
on Kubernetes, where sweepctl cannot reach the log volume, the sweep's
TensorBoard pod runs it from the ConfigMap `<sweep>-sweepctl-hparams`, in the
TensorBoard image, which has tensorboard and no sweepctl.

What it writes (TensorBoard's hparams plugin reads it; `status` never does):
  <root>/<trial>/events.hparams-start.sweepctl.tfevents   the session start: the
      trial's values with their types; sorts before the trainer's own
      events.out.tfevents.* files, which the status reader alone opens
  <root>/<trial>/events.sweepctl-hparams-end.tfevents     the session's status once it finished
  <root>/_sweepctl-hparams-<digest>/events.sweepctl-experiment.tfevents
      the sweep's one experiment summary (domains and the objective as a metric).
      TensorBoard keeps the first summary metadata of a run's tag, so a changed
      experiment goes to a new run, named by its digest, and the earlier run is
      removed; `_` never starts a trial's name.
Every file is written whole under a temporary name and renamed, so TensorBoard
never reads half of one. TensorFlow is never imported: the events go through
tensorboard's pure-Python record writer (its EventFileWriter would import it).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["SESSION_START", "SESSION_END", "EXPERIMENT_PREFIX", "STATUSES", "write_experiment",
           "write_session_start", "write_session_end", "sync", "load", "prepare"]

SESSION_START = "events.hparams-start.sweepctl.tfevents"
SESSION_END = "events.sweepctl-hparams-end.tfevents"
EXPERIMENT_PREFIX = "_sweepctl-hparams-"
_EXPERIMENT_FILE = "events.sweepctl-experiment.tfevents"
# A trial's final state, as sweepctl words it, to the hparams plugin's Status.
STATUSES = {"Succeeded": "STATUS_SUCCESS", "Failed": "STATUS_FAILURE"}


def prepare() -> None:
    """Import what writing takes (about a second, once), before a moment that must be short."""
    from tensorboard.compat.proto import event_pb2  # noqa: F401
    from tensorboard.plugins.hparams import summary_v2  # noqa: F401
    from tensorboard.summary.writer import record_writer  # noqa: F401


def _write_events(path: Path, summaries: list[Any], *, wall_time: float) -> None:
    """An event file holding these summaries at step 0, written whole, then renamed into place."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    buffer = io.BytesIO()
    records = RecordWriter(buffer)
    records.write(event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2").SerializeToString())
    for summary in summaries:
        records.write(event_pb2.Event(wall_time=wall_time, step=0, summary=summary).SerializeToString())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.rename(path)


def _domain(hparam: dict[str, Any]) -> Any:
    from tensorboard.plugins.hparams import summary_v2 as hp

    if "values" in hparam:
        values = hparam["values"]
        kinds = {bool if isinstance(v, bool) else float if isinstance(v, int | float) else str for v in values}
        return hp.Discrete(values) if len(kinds) == 1 else None  # mixed types: no one domain
    if "min" in hparam:
        if hparam.get("integer"):
            return hp.IntInterval(int(hparam["min"]), int(hparam["max"]))
        return hp.RealInterval(float(hparam["min"]), float(hparam["max"]))
    return None


def _digest(experiment: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(experiment, sort_keys=True).encode()).hexdigest()[:12]


def _metric(name: str, root: Path, trials: list[str]) -> tuple[str, str]:
    """(group, tag) of an objective name, as status reads it: the longest leading part, cut at a `/`, that
    is a run folder of some trial (Keras's `validation/epoch_accuracy`), else a tag of the trial's own folder."""
    parts = name.split("/")
    for cut in range(len(parts) - 1, 0, -1):
        group = "/".join(parts[:cut])
        if all(p not in ("", ".", "..") for p in parts[:cut]) and any((root / t / group).is_dir() for t in trials):
            return group, "/".join(parts[cut:])
    return "", name


def write_experiment(root: Path, experiment: dict[str, Any], trials: list[str] | None = None) -> bool:
    """The sweep's experiment summary under root, unless it is there already; True when written.

    `experiment` is core.hparams.experiment's: {"hparams": [{"name", "values"} |
    {"name", "min", "max", "integer"}], "metrics": [name, ...]}. A metric in a run
    subfolder is found in the folders of `trials`; until one has it, it reads as a
    plain tag, and the experiment is written again once it is found.
    """
    metrics_at = [_metric(name, root, trials or []) if "/" in name else ("", name) for name in experiment["metrics"]]
    run = root / f"{EXPERIMENT_PREFIX}{_digest({**experiment, 'metrics': metrics_at})}"
    if (run / _EXPERIMENT_FILE).exists():
        return False
    from tensorboard.plugins.hparams import summary_v2 as hp

    hparams = [hp.HParam(h["name"], _domain(h)) for h in experiment["hparams"]]
    metrics = [hp.Metric(tag, group=group or None, display_name=name)
               for name, (group, tag) in zip(experiment["metrics"], metrics_at, strict=True)]
    run.mkdir(parents=True, exist_ok=True)
    now = time.time()
    _write_events(run / _EXPERIMENT_FILE, [hp.hparams_config_pb(hparams, metrics, time_created_secs=now)],
                  wall_time=now)
    for earlier in root.glob(f"{EXPERIMENT_PREFIX}*"):
        if earlier != run and earlier.is_dir():
            shutil.rmtree(earlier, ignore_errors=True)  # one experiment per sweep: TensorBoard reads the first found
    return True


def write_session_start(trial_dir: Path, name: str, params: dict[str, Any], *, start_time: float | None = None) -> None:
    """The trial's session start: its values as they are typed (bool, number, string), grouped by its name."""
    from tensorboard.plugins.hparams import summary_v2 as hp

    now = time.time() if start_time is None else start_time
    _write_events(trial_dir / SESSION_START, [hp.hparams_pb(dict(params), trial_id=name, start_time_secs=now)],
                  wall_time=now)


def write_session_end(trial_dir: Path, state: str, *, end_time: float | None = None) -> bool:
    """The trial's session end, with its status, for a final state the plugin has a status for; True when written."""
    if state not in STATUSES:
        return False
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    now = time.time() if end_time is None else end_time
    info = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(STATUSES[state]), end_time_secs=now)
    summary = summary_pb2.Summary()
    summary.value.add(tag=metadata.SESSION_END_INFO_TAG, tensor=metadata.NULL_TENSOR,
                      metadata=metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(
                          session_end_info=info)))
    _write_events(trial_dir / SESSION_END, [summary], wall_time=now)
    return True


def sync(root: Path, data: dict[str, Any], *, done: set[tuple[str, str]] | None = None) -> int:
    """Bring root's summaries up to `data`: the experiment, and each session whose trial folder exists.

    data = {"experiment": ..., "sessions": {trial: {"params": {...}, "state": str}}}.
    Only adds: a trial that left the data keeps what it has (a pruned trial's
    row stays). A folder is never created for a trial: its trainer makes it
    (as its own user), and the start follows. `done` remembers what needs no
    more looking at between calls. Returns how many files were written.
    """
    done = set() if done is None else done
    sessions = data.get("sessions", {})
    written = int(write_experiment(root, data["experiment"], list(sessions))) if data.get("experiment") else 0
    for name, session in sessions.items():
        if (name, "end") in done or "/" in name or name.startswith("."):
            continue
        trial_dir = root / name
        if (name, "start") not in done:
            if not trial_dir.is_dir():
                continue
            if not (trial_dir / SESSION_START).exists():
                write_session_start(trial_dir, name, session["params"])
                written += 1
            done.add((name, "start"))
        state = session.get("state", "")
        if state in STATUSES:
            if not (trial_dir / SESSION_END).exists():
                written += write_session_end(trial_dir, state)
            done.add((name, "end"))
    return written


def load(path: Path) -> dict[str, Any] | None:
    """The data a ConfigMap carries (gzipped JSON), or None while it is not there."""
    try:
        return json.loads(gzip.decompress(path.read_bytes()))
    except (OSError, ValueError, EOFError):
        return None


def main(argv: list[str]) -> None:  # pragma: no cover - the TensorBoard pod's loop; tested through sync
    """`python hparams_writer.py DATA ROOT [SECONDS]`: sync ROOT from DATA whenever DATA changes, forever."""
    data_path, root = Path(argv[0]), Path(argv[1])
    interval = float(argv[2]) if len(argv) > 2 else 5.0
    done: set[tuple[str, str]] = set()
    while True:
        data = load(data_path)
        if data is not None and root.is_dir():
            try:
                if sync(root, data, done=done):
                    print(f"{time.strftime('%H:%M:%S')} hparams summaries written", flush=True)
            except OSError as err:
                print(f"hparams: {err}", file=sys.stderr, flush=True)
        time.sleep(interval)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
