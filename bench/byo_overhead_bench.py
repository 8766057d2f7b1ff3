"""Per-trial overhead of a user's own command run by `sweepctl apply` on the local backend, against running it by hand.

The same tiny script (python, prints a `loss=` line, exits) is run in three ways, all in this run:
- by hand: `python train.py --lr=X` once per trial, one after another, its output to a file: the floor;
- `sweepctl apply` of a sweep of N1 and of N2 such trials, one at a time (local.parallelism 1), so
  trials add up: (apply(N2) - apply(N1)) / (N2 - N1) is what one more trial costs through sweepctl,
  and the difference from the floor its overhead. The fixed cost (CLI start, plan, state) cancels out.
- optionally (--tf-paint) the same for tf-paint trials of a tiny recipe, against `python -m model` by hand
  (which pays TensorFlow's import every time; the fork server pays it once per apply).

Usage: python bench/byo_overhead_bench.py [--small 4] [--large 16] [--rounds 3] [--tf-paint]
Prints Markdown for bench/RESULTS.md. Each apply runs in a fresh state folder.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = "import sys\nprint('loss=0.5', sys.argv[1:], flush=True)\n"
TINY = ["--size", "8", "--epochs", "3", "--batch-size", "16"]


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def by_hand(folder: Path, n: int) -> float:
    """Seconds to run the script n times in a row, each with its own values, output to a file."""
    start = time.perf_counter()
    for i in range(n):
        with (folder / "hand.log").open("ab") as out:
            subprocess.run([sys.executable, "train.py", f"--lr={i + 1}"], cwd=folder, stdout=out,
                           stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def tf_paint_by_hand(folder: Path, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        with (folder / "hand.log").open("ab") as out:
            subprocess.run([sys.executable, "-m", "model", *TINY, "--learning-rate", str(0.01 * (i + 1)),
                            "--log-dir", str(folder / f"hand-{i}")], cwd=REPO, stdout=out,
                           stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def apply(folder: Path, n: int, *, own: bool) -> float:
    """Seconds of `sweepctl apply --auto-approve` of n trials, one at a time, in a fresh state folder."""
    values = ", ".join(str(i + 1) for i in range(n))
    if own:
        text = f"name: bench\ncommand: [python, train.py, '--lr=${{lr}}']\nhyperParamValues: {{lr: [{values}]}}\n"
    else:
        text = (f"name: bench\nargs: {TINY}\nhyperParamValues: {{learningRate: "
                f"[{', '.join(str(0.01 * (i + 1)) for i in range(n))}]}}\n")
    spec = folder / "sweep.yaml"
    spec.write_text(text + "local: {parallelism: 1}\n")
    with tempfile.TemporaryDirectory(dir=folder) as state:
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "sweepctl", "apply", str(spec), "--auto-approve",
                              "--state-dir", state], cwd=folder, capture_output=True, text=True,
                             env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
        took = time.perf_counter() - start
    if res.returncode != 0 or f"{n} added" not in res.stdout:
        raise SystemExit(f"apply failed:\n{res.stdout}\n{res.stderr}")
    return took


def measure(name: str, folder: Path, args: argparse.Namespace, *, own: bool) -> list[str]:
    hand, small, large = [], [], []
    for _ in range(args.rounds):  # interleaved, so a load change hits all three alike
        hand.append((by_hand if own else tf_paint_by_hand)(folder, args.large) / args.large)
        small.append(apply(folder, args.small, own=own))
        large.append(apply(folder, args.large, own=own))
    per_trial = [(b - a) / (args.large - args.small) for a, b in zip(small, large, strict=True)]
    overhead = [p - h for p, h in zip(per_trial, hand, strict=True)]
    fixed = [a - args.small * p for a, p in zip(small, per_trial, strict=True)]

    def show(xs: list[float]) -> str:
        return f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"

    return [f"| {name}: one trial by hand | {show(hand)} |",
            f"| {name}: one more trial through `sweepctl apply` | {show(per_trial)} |",
            f"| {name}: **overhead per trial** | **{show(overhead)}** |",
            f"| {name}: fixed cost of an apply (start, plan, state) | {show(fixed)} |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=4)
    parser.add_argument("--large", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tf-paint", action="store_true", help="also tf-paint trials (slower: TensorFlow)")
    args = parser.parse_args()
    before = load()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "train.py").write_text(SCRIPT)
        rows += measure("command", folder, args, own=True)
        if args.tf_paint:
            rows += measure("tf-paint", folder, args, own=False)
    print(f"`{shlex.join(['python', 'bench/byo_overhead_bench.py', *sys.argv[1:]])}`, {args.rounds} rounds, "
          f"{args.small} and {args.large} trials one at a time; load {before} before, {load()} after.\n")
    print("| what (seconds: median (min-max) of the rounds) | seconds |\n|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
