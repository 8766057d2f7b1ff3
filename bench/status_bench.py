"""Benchmark `sweepctl status` and `prune --dry-run` on 1,000 local trials with real event files.

Run:  .venv/bin/python bench/status_bench.py [--trials 1000] [--repeat 5] [--events DIR]

The event files are the trainer's own: the benchmark first runs the real
trainer once with its default recipe (`python -m model`, 300 epochs: 101
points of `loss` and `psnr` and 11 `reconstruction` images, about 190 KB), or
takes the run in `--events DIR`. That file is copied into every trial's log
folder byte for byte, except that each copy's `loss` values are scaled by a
factor of its own (and their record checksums recomputed), so that trials
rank differently. A matching local state.json makes them a finished sweep.

Each command runs end to end in a fresh process, in three situations:
  - cold: no metrics cache (the first status after training);
  - warm: nothing changed since the last call, printed to a pipe and, as
    people run it, to a terminal (a pseudo-terminal: colours on);
  - appended: every trial's event file grew by one record since the last call
    (a sweep still training), the worst case for the cache.
The floor, measured in the same run, is `cat` of every event file (reading
the same bytes, from the page cache). Besides wall times it reports each
command's CPU time (user + system, its children included), which a busy
machine inflates far less. Commands run with Python's bytecode cache on, as
an installed sweepctl has it, whatever PYTHONDONTWRITEBYTECODE says here.
Prints a Markdown table for bench/RESULTS.md, with the machine's load before
and after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pty
import resource
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
from sweepctl.metrics import events  # noqa: E402

SWEEPCTL = [str(Path(sys.executable).parent / "sweepctl")]
LOSS_RECORD = b"\x0a\x04loss\x42\x0a\x08\x01\x12\x00\x22\x04"  # a TF2 float32 scalar `loss`, as TF writes it


def grid_spec(n: int) -> str:
    a = int(math.sqrt(n))
    while n % a:
        a -= 1
    lrs = ", ".join(f"{(i + 1) / 10000:.4f}" for i in range(a))
    depths = ", ".join(str(i + 1) for i in range(n // a))
    return f"name: bench\nbackend: local\nhyperParamValues:\n  learningRate: [{lrs}]\n  hiddenLayers: [{depths}]\n"


def scaled(payloads: list[bytes], factor: float) -> bytes:
    """The same records, with every float32 `loss` multiplied by factor (same sizes)."""
    out = []
    for payload in payloads:
        at = payload.find(LOSS_RECORD)
        if at >= 0:
            at += len(LOSS_RECORD)
            (value,) = struct.unpack_from("<f", payload, at)
            payload = payload[:at] + struct.pack("<f", value * factor) + payload[at + 4:]
        out.append(events.frame(payload))
    return b"".join(out)


def trainer_run(work: Path) -> tuple[Path, float]:
    """Run the real trainer once with its default recipe; its log folder and how long it took."""
    logs = work / "trainer-run"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "model", "--log-dir", str(logs)], check=True, stdout=subprocess.DEVNULL,
                   cwd=ROOT)
    return logs, time.perf_counter() - started


def make_sweep(root: Path, source: Path, n: int) -> tuple[Path, list[Path], bytes]:
    """A finished n-trial local sweep whose event files are copies of the source run's."""
    from sweepctl.core.manifests import TEMPLATE_HASH, local_trial
    from sweepctl.core.spec import load_spec
    from sweepctl.core.trials import expand

    (event_file,) = sorted(source.glob("events.out.tfevents.*"))[-1:]
    payloads = events.payloads(event_file.read_bytes())
    last_loss = next(p for p in reversed(payloads) if LOSS_RECORD in p)
    spec_path = root / "bench.yaml"
    spec_path.write_text(grid_spec(n))
    spec = load_spec(spec_path.read_text(), filename=str(spec_path), max_trials=n)
    trials, files = {}, []
    for i, t in enumerate(expand(spec)):
        manifest = local_trial(spec, t)
        trials[t.name] = {"id": t.id, "uid": f"{t.id}-1", "params": dict(t.params), "args": manifest["spec"]["args"],
                          "template_hash": manifest["metadata"]["annotations"][TEMPLATE_HASH], "state": "Succeeded",
                          "exit_code": 0}
        logs = root / ".sweepctl" / "sweeps" / "bench" / "logs" / t.name
        logs.mkdir(parents=True)
        path = logs / event_file.name
        path.write_bytes(scaled(payloads, 0.5 + (i * 7919 % n) / n))
        files.append(path)
    (root / ".sweepctl" / "sweeps" / "bench" / "state.json").write_text(json.dumps({"trials": trials, "pruned": {}}))
    return spec_path, files, events.frame(last_loss)


ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "COLUMNS": "200"}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], cwd: Path, before=None, *, terminal: bool = False) -> tuple[float, float]:
    """Wall and CPU seconds of one run; output to a pipe, or to a pseudo-terminal that is read as it comes."""
    if before:
        before()
    cpu = _cpu()
    start = time.perf_counter()
    if terminal:
        reader, writer = pty.openpty()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=writer, stderr=subprocess.PIPE, text=True, env=ENV)
        os.close(writer)
        try:
            while os.read(reader, 1 << 16):
                pass
        except OSError:  # EIO: the command closed its end
            pass
        os.close(reader)
        proc.wait()
        error = proc.stderr.read() if proc.stderr else ""
    else:
        done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
        proc, error = done, done.stderr
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{argv[1:3]} failed ({proc.returncode}): {error[-2000:]}")
    return elapsed, _cpu() - cpu


def arguments(*, repeat: int) -> argparse.Namespace:
    """--trials, --repeat and --events: the benchmarks over the trainer's copied runs take the same."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--events", type=Path, help="a trainer run's log folder (default: run the trainer once)")
    return parser.parse_args()


def main() -> None:
    args = arguments(repeat=5)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.events:
            source, trained = args.events, None
        else:
            source, trained = trainer_run(root)
        spec, files, appended_record = make_sweep(root, source, args.trials)
        size = sum(f.stat().st_size for f in files)
        cache_dir = root / ".sweepctl" / "cache" / "bench"

        def cold() -> None:
            shutil.rmtree(cache_dir, ignore_errors=True)

        def append() -> None:
            for f in files:
                with f.open("ab") as out:
                    out.write(appended_record)

        cat_runs = [timed(["sh", "-c", 'find .sweepctl -name "events.out.tfevents.*" -exec cat {} + >/dev/null'], root)
                    for _ in range(args.repeat)]
        cat = [w for w, _ in cat_runs]
        floor = statistics.median(cat)
        status = [*SWEEPCTL, "status", str(spec)]
        prune = [*SWEEPCTL, "prune", str(spec), "--keep", "best=10", "--dry-run"]
        cases = [
            ("`sweepctl status`, cold (no cache)", status, cold, False),
            ("`sweepctl status`, warm (nothing changed)", status, None, False),
            ("`sweepctl status`, warm, in a terminal (colours)", status, None, True),
            ("`sweepctl status`, every file appended to", status, append, False),
            ("`sweepctl status -o json`, cold", [*status, "-o", "json"], cold, False),
            ("`sweepctl prune --keep best=10 --dry-run`, cold", prune, cold, False),
            ("`sweepctl prune --keep best=10 --dry-run`, warm", prune, None, False),
            ("`sweepctl prune --keep best=10 --dry-run`, warm, in a terminal", prune, None, True),
        ]
        rows = []
        for label, argv, before, terminal in cases:
            timed(argv, root, terminal=terminal)  # leaves the cache (and bytecode) as a previous call would
            runs = [timed(argv, root, before, terminal=terminal) for _ in range(args.repeat)]
            walls = [w for w, _ in runs]
            rows.append((label, min(walls), statistics.median(walls), statistics.median(c for _, c in runs)))
    load_after = os.getloadavg()
    print(f"\n{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores; load average (1, 5, 15 min) "
          f"{' '.join(f'{x:.2f}' for x in load_before)} before, {' '.join(f'{x:.2f}' for x in load_after)} after")
    where = f"`--events {args.events}`" if args.events else f"a real trainer run (`python -m model`, {trained:.0f} s)"
    print(f"{args.trials} trials, event files copied from {where}: {size / len(files) / 1000:.0f} KB each, "
          f"{size / 1e6:.0f} MB in all\n")
    print(f"| command (fresh process) | best of {args.repeat} | median | median / floor | CPU, median |")
    print("|---|---|---|---|---|")
    print(f"| floor: `cat` of every event file | {min(cat):.2f} s | {floor:.2f} s | 1 | "
          f"{statistics.median(c for _, c in cat_runs):.2f} s |")
    for label, best, median, cpu in rows:
        print(f"| {label} | {best:.2f} s | {median:.2f} s | {median / floor:.1f} | {cpu:.2f} s |")


if __name__ == "__main__":
    main()
