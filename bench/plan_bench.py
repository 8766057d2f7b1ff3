"""Benchmark plan and apply against the real control plane, beside kubectl.

Run:  .venv/bin/python bench/plan_bench.py [--trials 10000] [--others 10000]
It starts the test control plane (or uses SWEEPCTL_TEST_KUBECONFIG), fills one
namespace with a sweep of N TFJobs plus N TFJobs of other sweeps, then times:
  - `sweepctl plan` of that sweep (end to end, a fresh process) and its API requests,
  - `kubectl diff` over the same N manifests,
  - `sweepctl apply` of 1,000 new trials, and `kubectl apply` of the same manifests,
  - `sweepctl plan` of the lab's 9-trial sweep, and `sweepctl --help`.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SWEEPCTL = [str(Path(sys.executable).parent / "sweepctl")]


def grid_spec(name: str, ns: str, n: int) -> str:
    """A spec whose grid has exactly n = a x b trials."""
    a = int(math.sqrt(n))
    while n % a:
        a -= 1
    lrs = ", ".join(f"{(i + 1) / 10000:.4f}" for i in range(a))
    depths = ", ".join(str(i + 1) for i in range(n // a))
    return (f"name: {name}\nbackend: kubernetes\nnamespace: {ns}\n"
            f"hyperParamValues:\n  learningRate: [{lrs}]\n  hiddenLayers: [{depths}]\n")


def timed(argv: list[str], env: dict[str, str], *, ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def best_of(k: int, argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    times = [timed(argv, env, ok=ok) for _ in range(k)]
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--others", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=1_000)
    args = parser.parse_args()

    from sweepctl.backends.kubernetes import Cluster, KubernetesBackend
    from sweepctl.commands.common import make_plan
    from sweepctl.core.manifests import tfjob
    from sweepctl.core.spec import load_spec
    from sweepctl.core.trials import expand

    run_dir = None
    kubeconfig = os.environ.get("SWEEPCTL_TEST_KUBECONFIG")
    if not kubeconfig:
        run_dir = Path(tempfile.mkdtemp()) / "run"
        out = subprocess.run([sys.executable, str(ROOT / "tests/cluster/up"), "--dir", str(run_dir)],
                             stdout=subprocess.PIPE, text=True, check=True).stdout
        kubeconfig = out.strip().splitlines()[-1]
    bin_dir = Path(subprocess.run([str(ROOT / "tests/cluster/build")], stdout=subprocess.PIPE, text=True,
                                  check=True).stdout.strip().splitlines()[-1])
    kubectl = [str(bin_dir / "kubectl"), "--kubeconfig", kubeconfig]
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    os.environ["KUBECONFIG"] = kubeconfig
    work = Path(tempfile.mkdtemp())
    ns = f"bench-{os.getpid()}"
    subprocess.run([*kubectl, "create", "namespace", ns], check=True, stdout=subprocess.DEVNULL)
    rows: list[tuple[str, str, str]] = []
    try:
        cluster = Cluster(workers=16)
        big = load_spec(grid_spec("big", ns, args.trials), max_trials=args.trials)
        others = load_spec(grid_spec("others", ns, args.others), max_trials=args.others)
        print(f"filling namespace {ns}: {args.trials} + {args.others} TFJobs...", file=sys.stderr)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            for spec in (big, others):
                manifests = [tfjob(spec, t, namespace=ns) for t in expand(spec)]
                list(pool.map(lambda m: cluster.request("POST", cluster.path("TFJob", ns), body=m), manifests))
        print(f"  filled in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

        big_path = work / "big.yaml"
        big_path.write_text(grid_spec("big", ns, args.trials))
        plan_cmd = [*SWEEPCTL, "plan", str(big_path), "-out", str(work / "big.plan"), "--max-trials", str(args.trials)]
        best, median = best_of(3, plan_cmd, env)
        rows.append((f"plan, {args.trials:,}-trial sweep among {args.trials + args.others:,} TFJobs",
                     f"{best:.2f} s (median {median:.2f} s)", "3 s or less"))
        counting = Cluster()
        plan = make_plan(big, KubernetesBackend(cluster=counting, namespace=ns))
        assert plan.summary == {"add": 0, "change": 0, "destroy": 0}, plan.summary
        bound = math.ceil(args.trials / 500)
        rows.append(("API requests made by that plan", f"{counting.requests} (= ceil(N/500) + {counting.requests - bound})",
                     f"ceil(N/500) + constant = {bound} + c"))

        manifest_file = work / "big.json"
        manifest_file.write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                                             "items": [tfjob(big, t, namespace=ns) for t in expand(big)]}))
        diff_s = timed([*kubectl, "diff", "-f", str(manifest_file)], env, ok=(0, 1))
        rows.append((f"kubectl diff, same {args.trials:,} manifests", f"{diff_s:.2f} s",
                     f"sweepctl plan is {diff_s / best:.0f}x faster"))

        new = load_spec(grid_spec("fresh", ns, args.new), max_trials=args.new)
        new_path = work / "fresh.yaml"
        new_path.write_text(grid_spec("fresh", ns, args.new))
        apply_s = timed([*SWEEPCTL, "apply", str(new_path), "--auto-approve", "--max-trials", str(args.new)], env)
        rows.append((f"apply of {args.new:,} new trials", f"{apply_s:.2f} s", "20 s or less"))
        kfile = work / "fresh-k.json"
        renamed = []
        for t in expand(new):
            m = tfjob(new, t, namespace=ns)
            m["metadata"]["name"] = "k" + m["metadata"]["name"][1:]
            m["metadata"]["labels"]["sweepctl.dev/sweep"] = "kubectl"
            renamed.append(m)
        kfile.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": renamed}))
        kapply_s = timed([*kubectl, "apply", "-f", str(kfile)], env)
        rows.append((f"kubectl apply, same {args.new:,} manifests", f"{kapply_s:.2f} s",
                     f"sweepctl apply is {kapply_s / apply_s:.1f}x faster"))

        lab = work / "lab.yaml"
        lab.write_text(f"name: starry-night\nbackend: kubernetes\nnamespace: {ns}\nhyperParamValues:\n"
                       "  learningRate: [0.001, 0.01, 0.1]\n  hiddenLayers: [5, 6, 7]\n")
        best9, median9 = best_of(5, [*SWEEPCTL, "plan", str(lab), "-out", str(work / "lab.plan")], env)
        rows.append(("plan, the lab's 9-trial sweep, end to end", f"{best9:.2f} s (median {median9:.2f} s)",
                     "1.5 s or less"))
        helpb, helpm = best_of(7, [*SWEEPCTL, "--help"], env)
        rows.append(("`sweepctl --help`", f"{helpb:.2f} s (median {helpm:.2f} s)", "0.3 s or less"))
        py, _ = best_of(7, [sys.executable, "-c", "pass"], env)
        rows.append(("(baseline: `python -c pass`)", f"{py:.2f} s", ""))
    finally:
        subprocess.run([*kubectl, "delete", "namespace", ns, "--wait=false"], stdout=subprocess.DEVNULL)
        if run_dir:
            subprocess.run([sys.executable, str(ROOT / "tests/cluster/down"), "--dir", str(run_dir)])

    print(f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, 1-minute load at the end: {os.getloadavg()[0]:.2f}\n")
    print("| what | measured | target / ratio |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
