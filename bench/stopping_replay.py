"""Replay the median rule on finished sweeps: what stopping could have saved, at those sweeps' own load.

Trial-seconds of two sweeps run minutes apart on a shared machine differ with its load, so comparing a
TPE sweep with a TPE+median one mixes the rule's saving with the load's swings. This replays the rule
(sweepctl.core.stopping, the code apply --wait runs) on the event files of finished sweeps that stopped
nothing (search_bench.py's tpe sweeps): a watcher looks every --latency seconds (0: at every logged
point) at what every trial had logged by then, in wall-clock order, and stops the trials the rule
stops, a tenth of a second later. The proposals stay those of the sweep (a real TPE+median sweep
proposes from its stopped trials, so it differs), but the timings are the trials' own.

Per sweep it prints the trials stopped, the steps and trial-seconds saved, the best PSNR kept, and
the share of all trial-seconds spent before the step-S summary of each trial (process start,
TensorFlow's import and compilation included): the part that no stop at or after step S can save.

Usage: python bench/stopping_replay.py SWEEP_STATE_DIR... [--after-step 6000 1200] [--latency 0 0.25 2]
       [--min-trials 3] [--others all|finished]
where SWEEP_STATE_DIR is a sweep's folder (.../state/sweeps/<sweep>). `--others finished` counts only
the finished trials as the others (as Optuna's MedianPruner does), instead of every trial that reached
the step (the rule as sweepctl defines it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sweepctl.core.space import EarlyStopping
from sweepctl.core.stopping import median_stops

KILL = 0.1  # seconds from a decision to the trainer's end

Point = tuple[float, int, float]  # wall time, step, psnr


def load(sweep_dir: Path) -> dict[str, tuple[list[Point], float]]:
    """Each trial's psnr points with their wall times, and its wall_seconds (launch to exit)."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from tensorboard.util import tensor_util

    trials = {}
    for log_dir in sorted((sweep_dir / "logs").iterdir()):
        points = []
        for path in sorted(log_dir.glob("events.out.tfevents.*")):
            for event in LegacyEventFileLoader(str(path)).Load():
                for value in event.summary.value:
                    if value.tag == "psnr":
                        number = float(tensor_util.make_ndarray(value.tensor)) if value.HasField("tensor") \
                            else value.simple_value
                        points.append((event.wall_time, event.step, number))
        trials[log_dir.name] = (sorted(points), json.loads((log_dir / "metrics.json").read_text())["wall_seconds"])
    return trials


def replay(trials: dict[str, tuple[list[Point], float]], rule: EarlyStopping, latency: float,
           others: str) -> dict[str, float]:
    """The trials the rule stops (name -> when), judged every `latency` seconds (0: at every point)."""
    ends = {name: points[-1][0] for name, (points, _) in trials.items()}
    times = sorted({w for points, _ in trials.values() for w, _, _ in points})
    if latency > 0:
        first, last, times = times[0], times[-1], []
        while first <= last + latency:
            times.append(first)
            first += latency
    stopped: dict[str, float] = {}
    for now in times:
        curves = {}
        for name, (points, _) in trials.items():
            cut = min(now, stopped.get(name, now))
            curve = [(s, v) for w, s, v in points if w <= cut]
            if curve:
                curves[name] = curve
        unfinished = [n for n in curves if ends[n] > now and n not in stopped]
        if others == "finished":
            done = {n: c for n, c in curves.items() if ends[n] <= now and n not in stopped}
            found = [s for n in unfinished for s in median_stops({**done, n: curves[n]}, [n], goal="maximize",
                                                                 rule=rule)]
        else:
            found = median_stops(curves, unfinished, goal="maximize", rule=rule)
        for stop in found:
            stopped[stop.name] = now + KILL
    return stopped


def report(name: str, trials: dict[str, tuple[list[Point], float]], rule: EarlyStopping, latency: float,
           others: str) -> str:
    stopped = replay(trials, rule, latency, others)
    seconds = sum(wall for _, wall in trials.values())
    steps = sum(points[-1][1] for points, _ in trials.values())
    saved_seconds = sum(max(0.0, trials[n][0][-1][0] - at) for n, at in stopped.items())
    kept = [[(s, v) for w, s, v in points if w <= stopped.get(n, w)] for n, (points, _) in trials.items()]
    saved_steps = steps - sum(curve[-1][0] for curve in kept if curve)
    best = max(v for curve in kept for _, v in curve)
    return (f"{name}: afterStep {rule.after_step}, latency {latency:g} s, others {others}: "
            f"{len(stopped)}/{len(trials)} stopped, steps -{saved_steps / steps:.0%}, "
            f"trial-seconds -{saved_seconds / seconds:.0%}, best PSNR {best:.2f} (all trials: "
            f"{max(v for points, _ in trials.values() for _, _, v in points):.2f})")


def before_step(trials: dict[str, tuple[list[Point], float]], step: int) -> float:
    """The share of all trial-seconds spent before each trial's first summary at or after `step`."""
    spent = 0.0
    for points, wall in trials.values():
        start = points[-1][0] - wall  # launch: the last summary less the trial's wall time (the tail is short)
        spent += min(w for w, s, _ in points if s >= step) - start
    return spent / sum(wall for _, wall in trials.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path)
    parser.add_argument("--after-step", type=int, nargs="+", default=[6000, 1200])
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.25, 2.0])
    parser.add_argument("--min-trials", type=int, default=3)
    parser.add_argument("--others", choices=["all", "finished"], default="all")
    opts = parser.parse_args()
    for sweep in opts.sweeps:
        trials = load(sweep)
        shares = ", ".join(f"{before_step(trials, s):.0%} before step {s:,}" for s in opts.after_step)
        print(f"{sweep.name}: {sum(w for _, w in trials.values()):.0f} trial-seconds, {shares}")
        for after in opts.after_step:
            for latency in opts.latency:
                rule = EarlyStopping(after_step=after, min_trials=opts.min_trials)
                print("  " + report(sweep.name, trials, rule, latency, opts.others))


if __name__ == "__main__":
    main()
