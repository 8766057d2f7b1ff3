"""Benchmark `sweepctl status` and `sweepctl prune --dry-run` on a 1,000-trial local sweep.

Run:  .venv/bin/python bench/status_bench.py [--trials 1000] [--points 50] [--repeat 3]
It writes synthetic event files (TensorBoard's own writer and protos, no
TensorFlow), one run per trial with `loss` and `psnr` scalars as TF2 tensors,
the way the trainer writes them, plus a matching local state.json, in a
temporary folder; then times each command end to end in a fresh process.
Prints a Markdown table to paste into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SWEEPCTL = [str(Path(sys.executable).parent / "sweepctl")]


def grid_spec(n: int) -> str:
    a = int(math.sqrt(n))
    while n % a:
        a -= 1
    lrs = ", ".join(f"{(i + 1) / 10000:.4f}" for i in range(a))
    depths = ", ".join(str(i + 1) for i in range(n // a))
    return f"name: bench\nbackend: local\nhyperParamValues:\n  learningRate: [{lrs}]\n  hiddenLayers: [{depths}]\n"


def make_sweep(root: Path, n: int, points: int) -> Path:
    import random

    import numpy as np

    from sweepctl.core.manifests import TEMPLATE_HASH, local_trial
    from sweepctl.core.spec import load_spec
    from sweepctl.core.trials import expand
    import sweepctl.metrics.events  # noqa: F401 - registers TensorBoard's no-TensorFlow switch first
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    spec_path = root / "bench.yaml"
    spec_path.write_text(grid_spec(n))
    spec = load_spec(spec_path.read_text(), filename=str(spec_path), max_trials=n)
    rng = random.Random(0)
    meta = metadata.create_summary_metadata("", "")
    trials = {}
    for t in expand(spec):
        manifest = local_trial(spec, t)
        trials[t.name] = {"id": t.id, "uid": f"{t.id}-1", "params": dict(t.params), "args": manifest["spec"]["args"],
                          "template_hash": manifest["metadata"]["annotations"][TEMPLATE_HASH], "state": "Succeeded",
                          "exit_code": 0}
        writer = EventFileWriter(str(root / ".sweepctl" / "sweeps" / "bench" / "logs" / t.name))
        floor = rng.uniform(100, 5000)
        for p in range(points):
            loss = floor + 30000 / (1 + p)
            values = [summary_pb2.Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(np.float32(v)),
                                                metadata=meta)
                      for tag, v in (("loss", loss), ("psnr", 10 * math.log10(255**2 * 3 / loss)))]
            writer.add_event(event_pb2.Event(step=p * 100, wall_time=time.time(),
                                             summary=summary_pb2.Summary(value=values)))
        writer.close()
    state = root / ".sweepctl" / "sweeps" / "bench" / "state.json"
    state.write_text(json.dumps({"trials": trials, "pruned": {}}))
    return spec_path


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{argv[1:3]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        spec = make_sweep(root, args.trials, args.points)
        print(f"wrote {args.trials} runs x {args.points} points in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)
        commands = {
            f"`sweepctl status` ({args.trials} trials)": [*SWEEPCTL, "status", str(spec)],
            f"`sweepctl status -o json` ({args.trials} trials)": [*SWEEPCTL, "status", str(spec), "-o", "json"],
            f"`sweepctl prune --keep best=10 --dry-run` ({args.trials} trials)":
                [*SWEEPCTL, "prune", str(spec), "--keep", "best=10", "--dry-run"],
        }
        rows = []
        for label, argv in commands.items():
            times = [timed(argv, root) for _ in range(args.repeat)]
            rows.append((label, min(times), statistics.median(times)))
    print(f"| command (fresh process, {args.points} points per trial) | best | median of {args.repeat} |")
    print("|---|---|---|")
    for label, best, median in rows:
        print(f"| {label} | {best:.2f} s | {median:.2f} s |")


if __name__ == "__main__":
    main()
