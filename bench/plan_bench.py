"""Benchmark plan and apply against the real control plane, beside kubectl and the raw LIST.

Run:  .venv/bin/python bench/plan_bench.py [--trials 10000] [--others 10000] [--kubectl-diff]
It starts the test control plane (or uses SWEEPCTL_TEST_KUBECONFIG), fills one
namespace with a sweep of N TFJobs plus N TFJobs of other sweeps, then times:
  - the floor: the raw paginated LIST of the sweep's TFJobs (500 a page, bytes
    only, nothing decoded), as full objects and as the metadata tables plan asks
    for, and `kubectl get tfjobs -o name` of the same;
  - `sweepctl plan` of that sweep (end to end, a fresh process) with nothing
    drifted, and with every trial drifted (the spec's image changed), and the
    API requests of each;
  - with --kubectl-diff, `kubectl diff` over the same N manifests (minutes);
  - `sweepctl apply` of 1,000 new trials, and `kubectl apply` of the same manifests,
  - `sweepctl plan` of the lab's 9-trial sweep, and `sweepctl --help`.
Prints a Markdown table to paste into bench/RESULTS.md, with the machine's load.
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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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


@contextmanager
def control_plane(prefix: str) -> Iterator[tuple[list[str], str]]:
    """The test control plane (started here, or SWEEPCTL_TEST_KUBECONFIG's) and a fresh namespace.

    Yields the kubectl argv and the namespace, with KUBECONFIG set for this
    process; then removes the namespace and stops a control plane it started.
    """
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
    os.environ["KUBECONFIG"] = kubeconfig
    ns = f"{prefix}-{os.getpid()}"
    subprocess.run([*kubectl, "create", "namespace", ns], check=True, stdout=subprocess.DEVNULL)
    try:
        yield kubectl, ns
    finally:
        subprocess.run([*kubectl, "delete", "namespace", ns, "--wait=false"], stdout=subprocess.DEVNULL)
        if run_dir:
            subprocess.run([sys.executable, str(ROOT / "tests/cluster/down"), "--dir", str(run_dir)])


def raw_list(cluster, ns: str, sweep: str, *, table: bool, kind: str = "TFJob") -> float:
    """The floor: seconds to LIST a sweep's trials as plan does (4 label-selected shards, here one
    after the other; 500 a page), as bytes only, nothing decoded; table: as metadata tables."""
    from sweepctl.core.manifests import SHARD, sweep_selector

    start = time.perf_counter()
    for shard in range(4):
        token = None
        while True:
            query = [("labelSelector", f"{sweep_selector(sweep)},{SHARD}={shard}"), ("limit", 500)]
            query += [("includeObject", "Metadata")] if table else []
            query += [("continue", token)] if token else []
            page = cluster.request_bytes(
                "GET", cluster.path(kind, ns), query=query,
                accept="application/json;as=Table;g=meta.k8s.io;v=v1" if table else "application/json")
            at = page.find(b'"continue":"')  # the list's metadata comes first
            token = page[at + 12:page.index(b'"', at + 12)].decode() if at >= 0 else None
            if not token:
                break
    return time.perf_counter() - start


def print_table(rows: list[tuple[str, str, str]], load_before: tuple[float, float, float]) -> None:
    """The figures as a Markdown table, after the date and the machine's load before and now."""
    load_after = os.getloadavg()
    print(f"\n{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores; load average (1, 5, 15 min) "
          f"{' '.join(f'{x:.2f}' for x in load_before)} before, {' '.join(f'{x:.2f}' for x in load_after)} after\n")
    print("| what | measured | target / ratio |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


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
    parser.add_argument("--kubectl-diff", action="store_true", help="also time kubectl diff (minutes)")
    args = parser.parse_args()
    load_before = os.getloadavg()

    from sweepctl.backends.kubernetes import Cluster, KubernetesBackend
    from sweepctl.commands.common import make_plan
    from sweepctl.core.manifests import tfjob
    from sweepctl.core.spec import load_spec
    from sweepctl.core.trials import expand

    rows: list[tuple[str, str, str]] = []
    with control_plane("bench") as (kubectl, ns):
        env = {**os.environ}
        work = Path(tempfile.mkdtemp())
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

        from sweepctl.core.manifests import sweep_selector

        full = statistics.median(raw_list(cluster, ns, "big", table=False) for _ in range(3))
        tables = statistics.median(raw_list(cluster, ns, "big", table=True) for _ in range(3))
        floor = min(full, tables)
        rows.append((f"floor: raw paginated LIST of the {args.trials:,} TFJobs, full objects", f"{full:.2f} s", ""))
        rows.append(("floor: the same LIST as metadata tables (what plan asks for)", f"{tables:.2f} s", ""))
        kget, _ = best_of(1, [*kubectl, "-n", ns, "get", "tfjobs", "-l", sweep_selector("big"), "-o", "name"], env)
        rows.append(("`kubectl get tfjobs -l ... -o name`, the same TFJobs", f"{kget:.2f} s", ""))

        big_path = work / "big.yaml"
        big_path.write_text(grid_spec("big", ns, args.trials))
        plan_cmd = [*SWEEPCTL, "plan", str(big_path), "-out", str(work / "big.plan"), "--max-trials", str(args.trials)]
        best, median = best_of(3, plan_cmd, env)
        rows.append((f"plan, {args.trials:,}-trial sweep among {args.trials + args.others:,} TFJobs, no drift",
                     f"{best:.2f} s (median {median:.2f} s)", f"1.5 s or less; {median / floor:.1f}x the floor"))
        counting = Cluster()
        plan = make_plan(big, KubernetesBackend(cluster=counting, namespace=ns))
        assert plan.summary == {"add": 0, "change": 0, "destroy": 0}, plan.summary
        bound = math.ceil(args.trials / 500)
        rows.append(("API requests made by that plan", f"{counting.requests} (= ceil(N/500) + {counting.requests - bound})",
                     f"ceil(N/500) + constant = {bound} + c"))

        drifted_text = grid_spec("big", ns, args.trials) + "image: sweepctl/tf-paint:9.9.9\n"
        drifted_path = work / "drifted.yaml"
        drifted_path.write_text(drifted_text)
        drifted_cmd = [*SWEEPCTL, "plan", str(drifted_path), "-out", str(work / "drifted.plan"),
                       "--max-trials", str(args.trials)]
        dbest, dmedian = best_of(3, drifted_cmd, env)
        rows.append((f"plan, the same sweep with its image changed: all {args.trials:,} trials drifted",
                     f"{dbest:.2f} s (median {dmedian:.2f} s)", f"3 s or less; {dmedian / floor:.1f}x the floor"))
        counting = Cluster()
        plan = make_plan(load_spec(drifted_text, max_trials=args.trials), KubernetesBackend(cluster=counting, namespace=ns))
        assert len(plan.drifted) == args.trials, len(plan.drifted)
        rows.append(("API requests made by that plan", f"{counting.requests}", "the no-drift plan's + 1"))

        if args.kubectl_diff:
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
    print_table(rows, load_before)


if __name__ == "__main__":
    main()
