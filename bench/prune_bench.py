"""Benchmark pruning 9,000 of 10,000 trials on Kubernetes, against `kubectl delete` of as many TFJobs.

Run:  .venv/bin/python bench/prune_bench.py [--trials 10000] [--keep 1000]
It starts the test control plane (or uses SWEEPCTL_TEST_KUBECONFIG) and fills
one namespace with two sweeps of N TFJobs each. The first is pruned the way
`sweepctl prune --keep best=K --auto-approve` prunes once it has ranked the
trials: the plan of N - K deletes with their pruned-trial records, executed by
the backend's apply (records first, then uid-preconditioned deletes). Each
trial's metric is given here: reading metrics is what the status benchmarks
measure, and this test control plane runs no TensorBoard. The second sweep's
N - K TFJobs, labelled for it, are deleted by `kubectl delete -l --wait=false`,
the floor.
Then a plan of the pruned sweep checks that nothing would be re-added.
Prints a Markdown table for bench/RESULTS.md, with the machine's load.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plan_bench import control_plane, grid_spec, print_table  # noqa: E402


class Quiet:
    def done(self, change, error) -> None:
        pass

    def running(self, trials, *, finished: int, queued: int) -> None:
        pass


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--keep", type=int, default=1_000)
    args = parser.parse_args()
    load_before = os.getloadavg()

    from sweepctl.backends.kubernetes import Cluster, KubernetesBackend
    from sweepctl.commands.common import make_plan
    from sweepctl.core.manifests import tfjob
    from sweepctl.core.plan import Action, Change, Plan, fingerprint
    from sweepctl.core.spec import load_spec
    from sweepctl.core.trials import expand
    from sweepctl.metrics.ranking import Series, build_status, pruned_record, select_for_prune

    rows: list[tuple[str, str, str]] = []
    with control_plane("prune") as (kubectl, ns):
        cluster = Cluster(workers=16)
        big = load_spec(grid_spec("big", ns, args.trials), max_trials=args.trials)
        other = load_spec(grid_spec("kdel", ns, args.trials), max_trials=args.trials)
        print(f"filling namespace {ns}: 2 x {args.trials} TFJobs...", file=sys.stderr)
        doomed = args.trials - args.keep
        manifests = [tfjob(big, t, namespace=ns) for t in expand(big)]
        for i, t in enumerate(expand(other)):
            m = tfjob(other, t, namespace=ns)
            if i < doomed:
                m["metadata"]["labels"]["doomed"] = "yes"
            manifests.append(m)
        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda m: cluster.request("POST", cluster.path("TFJob", ns), body=m), manifests))
        print(f"  filled in {time.perf_counter() - started:.0f} s", file=sys.stderr)

        backend = KubernetesBackend(cluster=Cluster(workers=16), namespace=ns)
        started = time.perf_counter()
        observed = backend.observe("big")
        series = {o.name: Series(points=((60000, 100.0 + i),)) for i, o in enumerate(observed.objects)}
        status = build_status(sweep="big", backend="kubernetes", target=backend.target, metric="loss",
                              goal="minimize", strategy="min", keep=args.keep, observed=observed, series=series)
        selection = select_for_prune(status, include_unscored=False)
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        plan = Plan(
            sweep="big", namespace=ns, backend="kubernetes", target=backend.target, spec_digest="",
            fingerprint=fingerprint(observed),
            trials=tuple(Change(action=Action.DELETE, kind=t.kind, name=t.name, trial_id=t.trial_id,
                                params=t.params, state=t.state, uid=t.uid) for t in selection.delete),
            prune={t.name: pruned_record(t, metric="loss", at=at) for t in selection.delete},
        )
        result = backend.apply(plan, progress=Quiet())
        prune_s = time.perf_counter() - started
        assert not result.errors and result.destroyed == doomed, (len(result.errors), result.destroyed)
        after = backend.observe("big")
        tfjobs_left = sum(1 for o in after.objects if o.kind == "TFJob")
        assert tfjobs_left == args.keep and len(after.pruned) == doomed, (tfjobs_left, len(after.pruned))
        assert make_plan(big, backend).summary["add"] == 0
        rows.append((f"prune {doomed:,} of {args.trials:,} trials: observe, rank, record, delete",
                     f"{prune_s:.1f} s", f"60 s or less ({backend.cluster.requests} API requests)"))

        started = time.perf_counter()
        # --wait=false: like sweepctl, return once the API server has deleted them (the default waits
        # for each object in turn, minutes more for thousands).
        subprocess.run([*kubectl, "-n", ns, "delete", "tfjobs", "-l", "doomed=yes", "--wait=false"], check=True,
                       stdout=subprocess.DEVNULL)
        kubectl_s = time.perf_counter() - started
        rows.append((f"floor: `kubectl delete tfjobs -l ... --wait=false` of {doomed:,} TFJobs",
                     f"{kubectl_s:.1f} s", f"prune takes {prune_s / kubectl_s:.2f}x"))
    print_table(rows, load_before)


if __name__ == "__main__":
    main()
