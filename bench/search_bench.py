"""Benchmark of search (issue 11): grid, random, TPE and TPE with median early stopping.

Each sweep runs on the local backend with `sweepctl apply SPEC --wait`, on the picture
given with --image, at --size (100) with the default recipe (--epochs 300 unless told),
in the space learningRate 1e-4 to 0.1 (log) and hiddenLayers 3 to 9:

- grid: the lab's 3x3 grid (learningRate 0.001, 0.01, 0.1 x hiddenLayers 5, 6, 7);
- random: 24 trials; tpe: 24 trials; tpe-median: 24 trials with earlyStopping median, afterStep 10% of
  the steps (--after-step to change it); tpe-median-early: the same with afterStep 2% of the steps.

For every --seeds value S the trainer gets --seed S and the search seed S. Per sweep it
reports the best PSNR (the objective, maximized: the best summary point of any trial) and
its total trial-seconds: a finished trial's `wall_seconds` from its metrics.json (from the
trainer's start to its end: the local backend forks trainers from a process that imported
TensorFlow once per command, so its import is not in any trial's time); a stopped trial's span
from its first to its last event, plus the median start-up overhead of the sweep's finished
trials (their wall_seconds less that span), since a killed trainer writes no metrics.json.
Beside it, the sweep's CPU seconds: user and system time of the whole `sweepctl apply --wait`
process tree (planning, TPE, the fork server's one import, every trainer), which neither
leaves out a start-up cost nor depends much on the machine's load. Also per sweep: the
steps trained (every trial's last logged step: the cost that does not depend on the machine's load),
how many steps the stopped trials trained past the step the rule stopped them at (the watcher's
latency, in steps), and the machine's 1-minute load average while the sweep ran (sampled every 2 s).

Usage: python bench/search_bench.py --image PATH [--seeds 0 1 2] [--epochs 300]
       [--configs grid random tpe tpe-median tpe-median-early] [--parallel 2] [--out bench/search-results.json]
Results are appended to --out as they come, and a sweep already there is not run again, so
the same command continues an interrupted run. --markdown prints the table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SPACE = {"learningRate": {"min": 1.0e-4, "max": 0.1, "scale": "log"}, "hiddenLayers": {"min": 3, "max": 9, "type": "int"}}
GRID = {"learningRate": [0.001, 0.01, 0.1], "hiddenLayers": [5, 6, 7]}


def spec_for(config: str, seed: int, args: list[str], parallel: int, after_step: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": f"bench-{config}-s{seed}", "backend": "local", "args": args,
                            "objective": {"metric": "psnr", "goal": "maximize"},
                            "local": {"parallelism": parallel}}
    if config == "grid":
        spec["hyperParamValues"] = GRID
        return spec
    spec["hyperParamValues"] = SPACE
    spec["search"] = {"algorithm": "random" if config == "random" else "tpe", "trials": 24, "seed": seed}
    if config != "random":
        spec["search"]["parallel"] = parallel
    if config.startswith("tpe-median"):
        spec["earlyStopping"] = {"rule": "median", "afterStep": after_step, "minTrials": 3}
    return spec


def _events_span(log_dir: Path) -> tuple[float, float] | None:
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    times = [e.wall_time for f in sorted(log_dir.glob("events.out.tfevents.*"))
             for e in LegacyEventFileLoader(str(f)).Load()]
    return (min(times), max(times)) if times else None


def measure(state_dir: Path, sweep: str) -> dict[str, Any]:
    from sweepctl.metrics.events import read_run

    state = json.loads((state_dir / "sweeps" / sweep / "state.json").read_text())
    logs = state_dir / "sweeps" / sweep / "logs"
    trials = []
    for name in sorted({*state["trials"], *state["pruned"]}):
        run, _ = read_run(logs / name, ["psnr"])
        points = run.scalars["psnr"].points
        metrics_file = logs / name / "metrics.json"
        span = _events_span(logs / name)
        row = {"name": name, "pruned": name in state["pruned"], "best_psnr": max((v for _, v in points), default=None),
               "steps": points[-1][0] if points else 0, "span": (span[1] - span[0]) if span else 0.0,
               "params": (state["trials"].get(name) or state["pruned"].get(name) or {}).get("params")}
        if name in state["pruned"]:
            row["stopped_at"] = state["pruned"][name].get("stopped_at")
        if metrics_file.is_file():
            row["wall_seconds"] = json.loads(metrics_file.read_text())["wall_seconds"]
        trials.append(row)
    overheads = [t["wall_seconds"] - t["span"] for t in trials if "wall_seconds" in t]
    overhead = statistics.median(overheads) if overheads else 0.0
    for t in trials:
        t["trial_seconds"] = t.get("wall_seconds", t["span"] + overhead)
    best = max((t for t in trials if t["best_psnr"] is not None), key=lambda t: t["best_psnr"])
    return {"trials": len(trials), "stopped": sum(t["pruned"] for t in trials), "best_psnr": best["best_psnr"],
            "best_trial": best["name"], "best_params": best["params"],
            "trial_seconds": sum(t["trial_seconds"] for t in trials), "per_trial": trials}


def run_one(config: str, seed: int, opts: argparse.Namespace) -> dict[str, Any]:
    import yaml

    work = Path(opts.work) / f"{config}-s{seed}"
    work.mkdir(parents=True, exist_ok=True)
    args = ["--image", str(Path(opts.image).resolve()), "--size", str(opts.size), "--seed", str(seed)]
    if opts.epochs is not None:
        args += ["--epochs", str(opts.epochs)]
    steps = (opts.epochs or 300) * max(1, opts.size * opts.size // 50)
    after_step = (steps // 50 if config == "tpe-median-early"
                  else opts.after_step if opts.after_step is not None else steps // 10)
    spec = spec_for(config, seed, args, opts.parallel, after_step)
    (work / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    loads: list[float] = []
    done = threading.Event()
    sampler = threading.Thread(target=_sample_load, args=(loads, done), daemon=True)
    sampler.start()
    started = time.time()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "sweepctl", "apply", "spec.yaml", "--wait", "--auto-approve",
                           "--interval", "2", "--state-dir", "state"], cwd=work, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                               "COLUMNS": "200"}, check=False)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done.set()
    sampler.join()
    (work / "output.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{config} seed {seed} failed ({proc.returncode}); see {work / 'output.log'}")
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {"config": config, "seed": seed, "wall_seconds": time.time() - started, "cpu_seconds": cpu,
            "epochs": opts.epochs or 300,
            "size": opts.size, "after_step": after_step if config.startswith("tpe-median") else None,
            "load": {"mean": statistics.mean(loads), "max": max(loads)}, **measure(work / "state", spec["name"])}


def _sample_load(loads: list[float], done: threading.Event) -> None:
    """The 1-minute load average every 2 s until done (other sessions share this machine)."""
    while True:
        loads.append(os.getloadavg()[0])
        if done.wait(2):
            return


def _steps(result: dict[str, Any]) -> int:
    """Training steps of all the sweep's trials: the cost that does not depend on the machine's load."""
    return sum(t["steps"] for t in result["per_trial"])


def _past_stop(result: dict[str, Any]) -> str:
    """The median number of steps the stopped trials trained past the step the rule stopped them at."""
    past = [t["steps"] - t["stopped_at"] for t in result["per_trial"] if t.get("stopped_at") is not None]
    return f"{statistics.median(past):,.0f}" if past else "-"


def _cpu(result: dict[str, Any]) -> str:
    return f"{result['cpu_seconds']:.0f}" if "cpu_seconds" in result else "-"


def _load(result: dict[str, Any]) -> str:
    load = result.get("load")
    return f"{load['mean']:.1f} ({load['max']:.1f})" if load else "-"


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| sweep | seed | trials (stopped) | best PSNR dB | trial-seconds | sweep CPU s | steps trained | "
             "steps past the stop step (median) | sweep wall s | load: mean (max) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['config']} | {r['seed']} | {r['trials']} ({r['stopped']}) | {r['best_psnr']:.2f} | "
                     f"{r['trial_seconds']:.0f} | {_cpu(r)} | {_steps(r):,} | {_past_stop(r)} | "
                     f"{r['wall_seconds']:.0f} | {_load(r)} |")
    by = {}
    for r in results:
        by.setdefault(r["config"], []).append(r)
    lines += ["", "| sweep | seeds | best PSNR dB: median (min-max) | trial-seconds: median (min-max) | "
              "sweep CPU s: median (min-max) | steps trained: median (min-max) |", "|---|---:|---:|---:|---:|---:|"]
    for config, rows in by.items():
        psnr = [r["best_psnr"] for r in rows]
        secs = [r["trial_seconds"] for r in rows]
        cpus = [r.get("cpu_seconds", math.nan) for r in rows]
        steps = [_steps(r) for r in rows]
        lines.append(f"| {config} | {len(rows)} | {statistics.median(psnr):.2f} ({min(psnr):.2f}-{max(psnr):.2f}) | "
                     f"{statistics.median(secs):.0f} ({min(secs):.0f}-{max(secs):.0f}) | "
                     f"{statistics.median(cpus):.0f} ({min(cpus):.0f}-{max(cpus):.0f}) | "
                     f"{statistics.median(steps):,.0f} ({min(steps):,}-{max(steps):,}) |")
    tpe = {r["seed"]: r for r in results if r["config"] == "tpe"}
    against = [r for r in results if r["config"].startswith("tpe-median") and r["seed"] in tpe]
    if against:
        lines += ["", "| sweep | seed | best PSNR vs tpe dB | trial-seconds vs tpe | sweep CPU s vs tpe | "
                  "steps trained vs tpe |", "|---|---:|---:|---:|---:|---:|"]
        for r in against:
            base = tpe[r["seed"]]
            cpu = (f"{r['cpu_seconds'] / base['cpu_seconds'] - 1:+.0%}"
                   if "cpu_seconds" in r and "cpu_seconds" in base else "-")
            lines.append(f"| {r['config']} | {r['seed']} | {r['best_psnr'] - base['best_psnr']:+.2f} | "
                         f"{r['trial_seconds'] / base['trial_seconds'] - 1:+.0%} | {cpu} | "
                         f"{_steps(r) / _steps(base) - 1:+.0%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="the picture to repaint (the lab's starry.jpg)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=["grid", "random", "tpe", "tpe-median", "tpe-median-early"])
    parser.add_argument("--epochs", type=int, default=None, help="default: the trainer's own (300)")
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--after-step", type=int, default=None, help="median rule's afterStep (default: 10%% of the steps)")
    parser.add_argument("--work", default="/tmp/sweepctl-search-bench")
    parser.add_argument("--out", default=str(REPO / "bench" / "search-results.json"))
    parser.add_argument("--markdown", action="store_true", help="only print the table of --out")
    opts = parser.parse_args()
    out = Path(opts.out)
    results: list[dict[str, Any]] = json.loads(out.read_text()) if out.is_file() else []
    if not opts.markdown:
        for seed in opts.seeds:
            for config in opts.configs:
                if any(r["config"] == config and r["seed"] == seed and r["epochs"] == (opts.epochs or 300)
                       and "cpu_seconds" in r for r in results):  # not from before trainers were forked
                    continue
                print(f"{time.strftime('%H:%M:%S')} {config} seed {seed} ...", flush=True)
                results.append(run_one(config, seed, opts))
                out.write_text(json.dumps(results, indent=1))
                r = results[-1]
                print(f"  best PSNR {r['best_psnr']:.2f} dB, {r['trial_seconds']:.0f} trial-s, "
                      f"{r['stopped']} stopped, {r['wall_seconds']:.0f} s", flush=True)
    print(markdown(results))


if __name__ == "__main__":
    main()
