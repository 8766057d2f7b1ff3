"""Faults, measured: sweepctl as the README Role's user against a control plane that misbehaves.

Run:  .venv/bin/python bench/fault_bench.py [--trials 300] [--seeds 5] [--big 1000]
It starts a control plane of its own (its kube-apiserver is killed and restarted
here) and prints a Markdown table for bench/RESULTS.md, each figure beside its
baseline from the same run:
- request amplification under a 429 storm (the fault proxy answers 429 to one
  request in three, Retry-After 1-3 s) against the same apply without faults;
- time to a clean error under a black-holed API server, against --timeout;
- the longest API server outage ridden out, keeping the lock (SIGKILL, restart
  after 15/30/60/90 s, all inside --timeout 2m);
- convergence n/N over seeded SIGKILL points of apply and of prune (killed right
  after their n-th request took effect), each followed by a plain re-run;
- an apply of --big trials as the Role's user with the API server limited to one
  request in flight, against admin (exempt from the limit) on the same server.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "faults"), str(ROOT / "tests" / "kubernetes"), str(ROOT / "tests")]

from conftest import CLUSTER, Bed  # noqa: E402
from faultproxy import FaultProxy, mint_certificate  # noqa: E402
from lockhelpers import SWEEPCTL, grant_readme_role, lease, trial_uids, values, write_spec  # noqa: E402


class Rows(list):
    """The table's rows, each printed as soon as it is measured (a later case may fail)."""

    def append(self, row: tuple[str, str, str]) -> None:
        super().append(row)
        print("| " + " | ".join(row) + " |", flush=True)


class Run:
    def __init__(self, bed: Bed, work: Path) -> None:
        self.bed = bed
        self.work = work

    def namespace(self) -> str:
        ns = f"b-{uuid.uuid4().hex[:8]}"
        self.bed.kubectl("create", "namespace", ns)
        grant_readme_role(self.bed, ns)
        return ns

    def sweepctl(self, kubeconfig: Path, *args: object, user: str = "restricted") -> tuple[int, float, str]:
        started = time.monotonic()
        proc = subprocess.run([str(SWEEPCTL), *map(str, args), "--context", f"{user}@testbed"], cwd=self.work,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(kubeconfig), "HOME": str(self.work)})
        return proc.returncode, time.monotonic() - started, proc.stderr

    def spec(self, ns: str, n: int, start: int = 1) -> Path:
        return write_spec(self.work / f"{ns}-{start}.yaml", ns, values(n, start))


def storm_case(r: Run, proxy: FaultProxy, via_proxy: Path, n: int, rows: Rows) -> None:
    """Requests sent under a 429 storm, against the same apply without faults."""
    proxy.counts.clear()
    code, clean_s, _ = r.sweepctl(via_proxy, "apply", r.spec(r.namespace(), n), "--auto-approve")
    clean = proxy.total()
    proxy.counts.clear()
    proxy.set(throttle_one_in=3, retry_after=(1, 3), seed=1)
    code, storm_s, _ = r.sweepctl(via_proxy, "apply", r.spec(r.namespace(), n), "--auto-approve")
    storm, throttled = proxy.total(), proxy.total("429")
    proxy.set()
    rows.append((f"apply of {n} under a 429 storm (every 3rd request, Retry-After 1-3 s): requests, exit {code}",
                 f"{storm} ({storm / clean:.2f}x; {throttled} answered 429), {storm_s:.1f} s",
                 f"{clean} without faults, {clean_s:.1f} s"))


def hole_case(r: Run, proxy: FaultProxy, via_proxy: Path, rows: Rows) -> None:
    """Time to a clean error under a black-holed API server."""
    proxy.set(black_hole=True)
    code, hole_s, err = r.sweepctl(via_proxy, "plan", r.spec(r.namespace(), 5), "--timeout", "10s")
    proxy.set()
    said = next((x for x in err.splitlines() if x.startswith("Error:")), "")
    cause = said.split(": ")[-1][:60] if said else "(nothing)"
    rows.append((f"plan against a black-holed API server, `--timeout 10s`: exit {code}", f"{hole_s:.1f} s",
                 f"10 s + 5 s allowed; its one line ends: {cause}"))


def outage_case(r: Run, bed: Bed, n: int, rows: Rows) -> None:
    """The longest kube-apiserver outage an apply rides out (killed 1 s into the apply), keeping its lock."""
    longest = 0
    tried = (15, 30, 60, 90)
    for down_for in tried:
        bed.wait_ready(timeout=180)
        ns = r.namespace()
        spec = r.spec(ns, n)
        outage = bed.restart_apiserver_in(delay=1.0, down_for=down_for)
        leases: list[dict] = []
        stop = threading.Event()

        def watch(ns: str = ns) -> None:  # the Lease's uid and holder, whenever readable
            while not stop.wait(0.5):
                found = lease(bed, ns)
                if found:
                    leases.append(found)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        code, took, _ = r.sweepctl(bed.kubeconfig, "apply", spec, "--auto-approve", "--timeout", "2m")
        outage.join()
        stop.set()
        watcher.join()
        bed.wait_ready(timeout=180)
        converged = len(trial_uids(bed, ns)) == n
        one_lock = len({(x["metadata"]["uid"], x["spec"]["holderIdentity"]) for x in leases}) == 1
        hit = took > down_for
        rows.append((f"apply of {n}, kube-apiserver SIGKILLed 1 s in, back after {down_for} s",
                     f"exit {code}, {took:.1f} s, {'converged' if converged else 'NOT converged'}, "
                     + ("one Lease throughout" if one_lock else "the Lease changed")
                     + ("" if hit else " (finished before the outage: not counted)"), "--timeout 2m"))
        if code == 0 and converged and hit and one_lock:
            longest = down_for
    rows.append(("longest outage ridden out, keeping the lock", f"{longest} s (of {', '.join(map(str, tried))} tried)",
                 "--timeout 2m"))


def kill_case(r: Run, bed: Bed, work: Path, n: int, seeds: int, rows: Rows) -> None:
    """Convergence over seeded SIGKILL points of apply and of prune, each followed by a plain re-run.

    Points run in batches side by side (tests/faults/killpoints.py), each on a sweep of its own; each
    command is killed right after its n-th request took effect, n drawn from the seed.
    """
    from killpoints import KillBed, Point
    from tensorboard_helpers import serve

    for command, trials in (("apply", n), ("prune", max(n // 4, 30))):
        points = []
        for batch in range(0, seeds, 5):
            kills = KillBed(bed, r.namespace(), work / f"{command}-{batch}")
            group = [Point(command, f"{command[0]}{seed}", seed, trials) for seed in range(batch, min(batch + 5, seeds))]
            for point in group:
                kills.prepare(point)
            if command == "prune":
                with serve(kills.logs, ready=lambda index, k=len(group) * trials: len(index) == k) as url:
                    kills.run(group, url)
            else:
                kills.run(group, "")
            points += group
        killed = [p for p in points if p.killed_at]
        ok = [p for p in killed if not p.failures]
        where = sorted({p.killed_at.split(" /")[0] for p in killed})
        rows.append((f"SIGKILL of {command} ({trials} trials) at {len(killed)} seeded request points, "
                     "then a plain re-run (no manual step)",
                     f"{len(ok)}/{len(killed)} converged" + "".join(f"; {p.sweep} at request {p.at}: "
                                                                    f"{'; '.join(p.failures)}"
                                                                    for p in killed if p.failures),
                     f"killed after a {', '.join(where)}; live set = spec, empty re-plan, kept UIDs, no traceback"))


def inflight_case(r: Run, bed: Bed, proxy: FaultProxy, via_proxy: Path, n: int, rows: Rows) -> None:
    """One request in flight: the Role's user (throttled) against admin (exempt), same server."""
    argv = bed.kill_apiserver()
    bed.start_apiserver([*argv, "--enable-priority-and-fairness=false", "--max-requests-inflight=1",
                         "--max-mutating-requests-inflight=1"])
    try:
        bed.wait_ready(timeout=180)
    except AssertionError:
        rows.append(("apply with the in-flight limit at 1", "not measured: kube-apiserver did not get ready "
                     "with --max-requests-inflight=1 in 180 s", ""))
        return
    proxy.counts.clear()
    code, user_s, _ = r.sweepctl(via_proxy, "apply", r.spec(r.namespace(), n), "--auto-approve",
                                 "--max-trials", str(n))
    user_requests, user_429 = proxy.total(), proxy.total("answered 429")
    proxy.counts.clear()
    admin_code, admin_s, _ = r.sweepctl(via_proxy, "apply", r.spec(r.namespace(), n), "--auto-approve",
                                        "--max-trials", str(n), user="admin")
    rows.append((f"apply of {n}, in-flight limit 1, README Role user: exit {code}",
                 f"{user_s:.1f} s, {user_requests} requests ({user_429} answered 429)",
                 f"admin (exempt): exit {admin_code}, {admin_s:.1f} s, {proxy.total()} requests"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--big", type=int, default=1000)
    parser.add_argument("--cases", default="storm,hole,outage,kill,inflight", help="which cases, comma-separated")
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    load = os.getloadavg()
    work = Path(tempfile.mkdtemp())
    run_dir = work / "run"
    out = subprocess.run([sys.executable, str(CLUSTER / "up"), "--dir", str(run_dir)], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    bed = Bed(kubeconfig=Path(out.strip().splitlines()[-1]), bin_dir=(run_dir / "bin").resolve(), run_dir=run_dir)
    r = Run(bed, work)
    rows = Rows()
    print("| what | measured | baseline |\n|---|---|---|", flush=True)
    server = json.loads(bed.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    cert, key = mint_certificate(run_dir / "pki", work / "proxy-pki")
    proxy = FaultProxy(server, run_dir / "pki" / "ca.crt", cert, key).start()
    via_proxy = proxy.kubeconfig(bed.kubeconfig, work / "proxy-kubeconfig")
    try:
        if "storm" in cases:
            storm_case(r, proxy, via_proxy, args.trials, rows)
        if "hole" in cases:
            hole_case(r, proxy, via_proxy, rows)
        if "outage" in cases:
            outage_case(r, bed, args.trials * 3, rows)
        if "kill" in cases:
            kill_case(r, bed, work, args.trials, args.seeds, rows)
        if "inflight" in cases:
            inflight_case(r, bed, proxy, via_proxy, args.big, rows)
    finally:
        proxy.stop()
        subprocess.run([sys.executable, str(CLUSTER / "down"), "--dir", str(run_dir)], check=False)
        print(f"\nload before: {load[0]:.1f}, after: {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
