"""Benchmark `sweepctl status` on 1,000 local trials in Keras's layout (train/ and validation/ folders).

Run:  .venv/bin/python bench/status_keras_bench.py [--trials 1000] [--repeat 5] [--epochs 20]

The event files are Keras's own: the benchmark first trains a tiny model with
`tf.keras.callbacks.TensorBoard` once (tests/library_writers.py, in a child
process), which writes `train/` and `validation/` event files. Every trial
gets a byte-for-byte copy of both, except that each copy's `epoch_accuracy`
values are scaled by a factor of its own (checksums recomputed), so trials
rank differently. The objective is `validation/epoch_accuracy`. A third
sweep holds tensorboardX's files in the same folders (simple_value scalars,
as PyTorch and Lightning write them, with as many points).

Baseline, in the same run: the same 1,000 trials in the flat layout (the
validation file directly in the trial's folder, objective `epoch_accuracy`),
the layout status read before run subfolders. Each command runs end to end in
a fresh process: cold (no metrics cache) and warm (nothing changed); first,
`status -o json` must rank every trial in both layouts. Bounds,
as for today's status: 1.0 s cold, 0.3 s warm (median). Prints a Markdown
table for bench/RESULTS.md, with the machine's load before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from status_bench import SWEEPCTL, grid_spec, timed  # noqa: E402

from sweepctl.metrics import events  # noqa: E402

TAG = b"epoch_accuracy"
RECORD = b"\x0a" + bytes([len(TAG)]) + TAG + b"\x42\x0a\x08\x01\x12\x00\x22\x04"  # its TF2 float32 tensor
SIMPLE = b"\x0a" + bytes([len(TAG)]) + TAG + b"\x15"  # its simple_value (tensorboardX, PyTorch)
BOUNDS = {"cold": 1.0, "warm": 0.3}


def scaled(data: bytes, factor: float) -> bytes:
    """An event file's records, every float32 `epoch_accuracy` multiplied by factor (same sizes)."""
    out = []
    for payload in events.payloads(data):
        at, head = payload.find(RECORD), RECORD
        if at < 0:
            at, head = payload.find(SIMPLE), SIMPLE
        if at >= 0:
            at += len(head)
            (value,) = struct.unpack_from("<f", payload, at)
            payload = payload[:at] + struct.pack("<f", value * factor) + payload[at + 4:]
        out.append(events.frame(payload))
    return b"".join(out)


def make_sweep(root: Path, fit: Path, n: int, *, keras: bool) -> tuple[Path, int]:
    """A finished n-trial local sweep of copies of the fit's files; its spec and its event files' bytes."""
    from sweepctl.core.manifests import TEMPLATE_HASH, local_trial
    from sweepctl.core.spec import load_spec
    from sweepctl.core.trials import expand

    runs = {run: next((fit / run).glob("events.out.tfevents.*")) for run in ("train", "validation")}
    data = {run: path.read_bytes() for run, path in runs.items()}
    objective = "validation/epoch_accuracy" if keras else "epoch_accuracy"
    spec_path = root / "bench.yaml"
    spec_path.write_text(grid_spec(n) + f"objective: {{metric: {objective}, goal: maximize}}\n")
    spec = load_spec(spec_path.read_text(), filename=str(spec_path), max_trials=n)
    trials, size = {}, 0
    for i, t in enumerate(expand(spec)):
        manifest = local_trial(spec, t)
        trials[t.name] = {"id": t.id, "uid": f"{t.id}-1", "params": dict(t.params), "args": manifest["spec"]["args"],
                          "template_hash": manifest["metadata"]["annotations"][TEMPLATE_HASH], "state": "Succeeded",
                          "exit_code": 0}
        logs = root / ".sweepctl" / "sweeps" / "bench" / "logs" / t.name
        factor = 0.5 + (i * 7919 % n) / n / 2
        for run in (("train", "validation") if keras else ("validation",)):
            folder = logs / run if keras else logs
            folder.mkdir(parents=True, exist_ok=True)
            body = scaled(data[run], factor)
            (folder / runs[run].name).write_bytes(body)
            size += len(body)
    (root / ".sweepctl" / "sweeps" / "bench" / "state.json").write_text(json.dumps({"trials": trials, "pruned": {}}))
    return spec_path, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    from library_writers import keras_fit, tensorboardx_scalars

    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        fit = Path(tmp) / "fit"
        keras_fit(fit, epochs=args.epochs)
        fit_s = time.perf_counter() - started
        # tensorboardX's simple_value scalars in Keras's folders: the PyTorch users' encoding.
        tbx = Path(tmp) / "tbx"
        for run in ("train", "validation"):
            tensorboardx_scalars(tbx / run, {"epoch_accuracy": [(e, 0.5 + e / 100) for e in range(args.epochs)],
                                             "epoch_loss": [(e, 1.0 - e / 100) for e in range(args.epochs)]})
        for layout, keras, source in (("flat (baseline)", False, fit), ("Keras train/ + validation/", True, fit),
                                      ("tensorboardX train/ + validation/", True, tbx)):
            root = Path(tmp) / layout.split()[0]
            root.mkdir()
            spec, size = make_sweep(root, source, args.trials, keras=keras)
            cache_dir = root / ".sweepctl" / "cache" / "bench"
            argv = [*SWEEPCTL, "status", str(spec)]
            check = subprocess.run([*argv, "-o", "json"], cwd=root, capture_output=True, text=True, check=True)
            scored = [r for r in json.loads(check.stdout) if r["metric"] is not None]
            assert len(scored) == args.trials, f"{layout}: {args.trials - len(scored)} trials without a metric"
            for case, before in (("cold", lambda: shutil.rmtree(cache_dir, ignore_errors=True)), ("warm", None)):
                timed(argv, root)  # bytecode, and the cache as a previous call leaves it
                runs = [timed(argv, root, before) for _ in range(args.repeat)]
                walls = [w for w, _ in runs]
                rows.append((layout, case, size, min(walls), statistics.median(walls),
                             statistics.median(c for _, c in runs)))
    load_after = os.getloadavg()
    print(f"\n{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores; load average (1, 5, 15 min) "
          f"{' '.join(f'{x:.2f}' for x in load_before)} before, {' '.join(f'{x:.2f}' for x in load_after)} after")
    print(f"{args.trials} trials, event files copied from a real Keras fit ({args.epochs} epochs, {fit_s:.0f} s)\n")
    print(f"| layout | `sweepctl status` | event files | best of {args.repeat} | median | CPU, median | bound |")
    print("|---|---|---|---|---|---|---|")
    for layout, case, size, best, median, cpu in rows:
        verdict = "within" if median <= BOUNDS[case] else "OVER"
        print(f"| {layout} | {case} | {size / 1e6:.1f} MB | {best:.2f} s | {median:.2f} s | {cpu:.2f} s | "
              f"{BOUNDS[case]} s: {verdict} |")


if __name__ == "__main__":
    main()
