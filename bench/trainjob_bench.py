"""Plan 10,000 TrainJobs against 10,000 TFJobs: the same requests, the same speed class.

Run:  .venv/bin/python bench/trainjob_bench.py [--trials 10000]
It starts the test control plane (or uses SWEEPCTL_TEST_KUBECONFIG; no
controller needed), fills one namespace with a sweep of N TFJobs and a sweep
of N TrainJobs made from the same grid, then times, for each kind:
  - the floor: the raw paginated LIST of the sweep's objects (bytes only), as
    full objects, and for TFJobs as the metadata tables plan asks for;
  - `sweepctl plan` (a fresh process) with nothing drifted, and with every
    trial drifted (the spec's image changed), and the API requests of each.
Prints a Markdown table for bench/RESULTS.md, with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from plan_bench import SWEEPCTL, best_of, control_plane, grid_spec, print_table, raw_list  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    args = parser.parse_args()
    load_before = os.getloadavg()

    from sweepctl.backends.kubernetes import Cluster, KubernetesBackend
    from sweepctl.commands.common import make_plan
    from sweepctl.core.manifests import trial_object
    from sweepctl.core.spec import load_spec
    from sweepctl.core.trials import expand

    rows: list[tuple[str, str, str]] = []
    with control_plane("tjbench") as (_, ns):
        env = {**os.environ}
        work = Path(tempfile.mkdtemp())
        cluster = Cluster(workers=16)
        texts = {kind: grid_spec(kind.lower(), ns, args.trials) + f"kubernetes: {{kind: {kind}}}\n"
                 for kind in ("TFJob", "TrainJob")}
        print(f"filling namespace {ns}: {args.trials} TFJobs and {args.trials} TrainJobs...", file=sys.stderr)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            for kind, text in texts.items():
                spec = load_spec(text, max_trials=args.trials)
                manifests = [trial_object(spec, t, namespace=ns) for t in expand(spec)]
                list(pool.map(lambda m: cluster.request("POST", cluster.path(m["kind"], ns), body=m), manifests))
        print(f"  filled in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

        medians: dict[tuple[str, str], float] = {}
        for kind, text in texts.items():
            floor = statistics.median(raw_list(cluster, ns, kind.lower(), table=False, kind=kind) for _ in range(3))
            rows.append((f"{kind}: floor, raw paginated LIST of the {args.trials:,} objects, full", f"{floor:.2f} s", ""))
            if kind == "TFJob":
                tables = statistics.median(raw_list(cluster, ns, kind.lower(), table=True, kind=kind) for _ in range(3))
                rows.append(("TFJob: floor, the same LIST as metadata tables (what plan asks for)",
                             f"{tables:.2f} s", ""))
                floor = min(floor, tables)
            for drift, body in (("no drift", text), ("every trial drifted (image changed)",
                                                     text + "image: sweepctl/tf-paint:9.9.9\n")):
                path = work / f"{kind}-{len(body)}.yaml"
                path.write_text(body)
                best, median = best_of(3, [*SWEEPCTL, "plan", str(path), "-out", str(work / "p.plan"),
                                           "--max-trials", str(args.trials)], env)
                medians[kind, drift] = median
                counting = Cluster()
                plan = make_plan(load_spec(body, max_trials=args.trials),
                                 KubernetesBackend(cluster=counting, namespace=ns, kind=kind))
                assert len(plan.unchanged if drift == "no drift" else plan.drifted) == args.trials
                rows.append((f"{kind}: plan, {args.trials:,} trials, {drift}",
                             f"{best:.2f} s (median {median:.2f} s)",
                             f"{counting.requests} requests; {median / floor:.1f}x its floor"))
        for drift in ("no drift", "every trial drifted (image changed)"):
            ratio = medians["TrainJob", drift] / medians["TFJob", drift]
            rows.append((f"TrainJob plan / TFJob plan, {drift}", f"{ratio:.2f}", ""))
    print_table(rows, load_before)


if __name__ == "__main__":
    main()
