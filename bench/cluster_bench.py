"""Time a sweep on the real one-node cluster, as TFJobs and as TrainJobs, against the local backend.

Run (as root):  .venv/bin/python bench/cluster_bench.py [--kubeconfig KC] [--epochs 3] [--size 24]
Without --kubeconfig it starts `tests/cluster/up --full` in a temporary folder
and stops it afterwards; with one (from `tests/cluster/up --full`) it reuses it.

It applies the lab's 3 x 3 grid (tiny trainer arguments) on the cluster twice,
as TFJobs (the training operator runs each trial as a pod) and as TrainJobs
(Trainer v2 and JobSet, on sweepctl's runtime), and once on the local backend
with the same parallelism (3), and prints the time from `apply` to all 9 trials
Succeeded for each, and the cluster's overhead per trial.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "cluster"))
import node  # noqa: E402

SWEEPCTL = str(Path(sys.executable).parent / "sweepctl")


def spec(backend: str, epochs: int, size: int, kind: str = "TFJob") -> str:
    return f"""name: bench-{backend}
backend: {backend}
kubernetes: {{kind: {kind}}}
args: [--epochs, "{epochs}", --size, "{size}"]
resources:
  requests: {{cpu: 500m, memory: 512Mi}}
local:
  parallelism: 3
hyperParamValues:
  learningRate: [0.001, 0.01, 0.1]
  hiddenLayers: [5, 6, 7]
"""


def run(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def finished(kind: str, job: dict) -> str | None:
    """Succeeded or Failed, as the kind says it; None while it runs."""
    found = [c for c in job.get("status", {}).get("conditions") or [] if c.get("status") == "True"]
    types = {c["type"] for c in found}
    if kind == "TrainJob":
        return "Failed" if "Failed" in types else "Succeeded" if "Complete" in types else None
    last = (job.get("status", {}).get("conditions") or [{}])[-1].get("type")
    return last if last in ("Succeeded", "Failed") else None


def on_cluster(kubeconfig: Path, work: Path, epochs: int, size: int, kind: str) -> float:
    kubectl = [str((kubeconfig.parent / "bin" / "kubectl").resolve()), "--kubeconfig", str(kubeconfig)]
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    run(*kubectl, "create", "namespace", ns)
    objects = node.log_volume(ns, kubeconfig.parent / "volumes" / ns)
    subprocess.run([*kubectl, "create", "-f", "-"], input="\n".join(json.dumps(o) for o in objects),
                   text=True, check=True, capture_output=True)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    path = work / f"cluster-{kind}.yaml"
    path.write_text(spec("kubernetes", epochs, size, kind))
    made_runtime = kind == "TrainJob" and "created" in run(SWEEPCTL, "runtime", "--apply", env=env, cwd=work)
    try:
        t0 = time.monotonic()
        run(SWEEPCTL, "apply", str(path), "-n", ns, "--auto-approve", env=env, cwd=work)
        while True:
            jobs = json.loads(run(*kubectl, "get", kind.lower() + "s", "-n", ns, "-o", "json"))["items"]
            states = [finished(kind, j) for j in jobs]
            if len(states) == 9 and all(s == "Succeeded" for s in states):
                return time.monotonic() - t0
            if any(s == "Failed" for s in states):
                raise SystemExit(f"a trial failed on the cluster: {states}")
            time.sleep(0.5)
    finally:
        subprocess.run([*kubectl, "delete", "namespace", ns, "--wait=false"], capture_output=True)
        subprocess.run([*kubectl, "delete", "pv", ns, "--wait=false"], capture_output=True)
        if made_runtime:
            subprocess.run([*kubectl, "delete", "clustertrainingruntime", "sweepctl-tensorflow"], capture_output=True)


def on_local(work: Path, epochs: int, size: int) -> float:
    path = work / "local.yaml"
    path.write_text(spec("local", epochs, size))
    t0 = time.monotonic()
    run(SWEEPCTL, "apply", str(path), "--auto-approve", cwd=work)
    return time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", type=Path, help="a running `tests/cluster/up --full` cluster")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=24)
    args = parser.parse_args()
    reason = node.why_not_here()
    if reason:
        raise SystemExit(f"cannot run: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        kubeconfig, started = args.kubeconfig, None
        if kubeconfig is None:
            run_dir = work / "cluster"
            t0 = time.monotonic()
            out = run(sys.executable, str(ROOT / "tests" / "cluster" / "up"), "--full", "--dir", str(run_dir))
            started = time.monotonic() - t0
            kubeconfig = Path(out.strip().splitlines()[-1])
        try:
            cluster = on_cluster(kubeconfig, work, args.epochs, args.size, "TFJob")
            trainjobs = on_cluster(kubeconfig, work, args.epochs, args.size, "TrainJob")
            local = on_local(work, args.epochs, args.size)
        finally:
            if args.kubeconfig is None:
                subprocess.run([sys.executable, str(ROOT / "tests" / "cluster" / "down"), "--dir",
                                str(work / "cluster")], capture_output=True)
    load = os.getloadavg()[0]
    print("| what | seconds |\n|---|---|")
    if started is not None:
        print(f"| `tests/cluster/up --full` (warm caches) | {started:.1f} |")
    print(f"| apply to 9 trials Succeeded, cluster, TFJobs (3 pods at a time) | {cluster:.1f} |")
    print(f"| apply to 9 trials Succeeded, cluster, TrainJobs (3 pods at a time) | {trainjobs:.1f} |")
    print(f"| apply to 9 trials Succeeded, local backend (parallelism 3) | {local:.1f} |")
    print(f"| cluster overhead per trial, TFJobs ((cluster - local) / 9) | {(cluster - local) / 9:.1f} |")
    print(f"| cluster overhead per trial, TrainJobs | {(trainjobs - local) / 9:.1f} |")
    print(f"\ntrainer args --epochs {args.epochs} --size {args.size}; 1-minute load at the end: {load:.2f}")


if __name__ == "__main__":
    main()
