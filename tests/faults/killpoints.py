"""SIGKILL of apply or prune at seeded points of its request stream, then a plain re-run.

Shared by the fault suite and bench/fault_bench.py. Each killed command
reaches the API server through a fault proxy of its own, which SIGKILLs it
once its n-th request was forwarded: that request took effect, and its answer
never arrives. n is drawn from a seeded generator over the command's requests
(the lock, the plan's reads, the pruned records, the writes). Points run side
by side, each on a sweep of its own in one namespace, so that the Leases the
killed holders leave behind expire together; then every re-run starts at
once, as the README Role's user, with nothing done by hand in between.

Converged, for a point, is the issue's: the live set equals the spec (or, for
prune, the trials it keeps), no duplicates, an empty re-plan, the kept trials'
UIDs unchanged, and no traceback.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from faultproxy import FaultProxy, mint_certificate
from lockhelpers import AS_USER, RAW, SWEEPCTL, as_user, trial_uids, values, write_spec

KEEP = 10  # prune --keep best=KEEP


@dataclass
class Point:
    """One kill point: the command, its sweep, where it was killed, and what it must converge to."""

    command: str  # "apply" or "prune"
    sweep: str
    seed: int
    trials: int
    spec: Path = Path()
    at: int = 0  # the request after which it is killed
    kept: dict[str, str] = field(default_factory=dict)  # name -> uid that must survive
    expected: set[float] = field(default_factory=set)  # the live trials' learning rates once converged
    killed_at: str = ""  # the request it died after ("" when it finished first)
    rerun: subprocess.CompletedProcess[str] | None = None
    failures: list[str] = field(default_factory=list)

    def argv(self, tensorboard_url: str) -> list[str]:
        if self.command == "apply":
            return ["apply", str(self.spec), "--auto-approve"]
        return ["prune", str(self.spec), "--keep", f"best={KEEP}", "--tensorboard-url", tensorboard_url,
                "--auto-approve"]


class KillBed:
    """Runs kill points against one control plane (`bed`, as tests/faults/conftest.py's Bed) and namespace."""

    def __init__(self, bed, ns: str, work: Path) -> None:
        self.bed = bed
        self.ns = ns
        self.work = work
        self.logs = work / "logs"  # one TensorBoard run per trial, as the sweep's volume holds them
        self.logs.mkdir(parents=True, exist_ok=True)

    def sweepctl(self, kubeconfig: Path, *args: object) -> subprocess.CompletedProcess[str]:
        return as_user(kubeconfig, self.work, *args)

    def prepare(self, point: Point) -> None:
        """Bring the sweep to where the killed command starts from, and say what it must end as."""
        rng = random.Random(f"{point.command}-{point.seed}")
        point.spec = write_spec(self.work / f"{point.sweep}.yaml", self.ns, values(point.trials), name=point.sweep)
        if point.command == "apply":
            # A follow-up experiment: some trials kept (their UIDs must survive), some deleted, most new.
            first = write_spec(self.work / f"{point.sweep}-first.yaml", self.ns,
                               values(point.trials // 3, start=point.trials - point.trials // 6), name=point.sweep)
            self._must(self.sweepctl(self.bed.kubeconfig, "apply", first, "--auto-approve"))
            point.expected = set(values(point.trials))
            live, params = trial_uids(self.bed, self.ns, point.sweep), self._params(point.sweep)
            point.kept = {n: uid for n, uid in live.items() if params[n] in point.expected}
            # Requests of such an apply: the lock, the plan's reads, one per write, the release.
            point.at = rng.randint(1, point.trials - len(point.kept) + len(live))
        else:
            self._must(self.sweepctl(self.bed.kubeconfig, "apply", point.spec, "--auto-approve"))
            live = trial_uids(self.bed, self.ns, point.sweep)
            from events_helpers import write_loss

            params = self._params(point.sweep)
            for name in live:  # the loss is the learning rate: the KEEP smallest are the best
                write_loss(self.logs / name, [(1, params[name])])
            best = sorted(live, key=lambda n: params[n])[:KEEP]
            point.kept = {n: live[n] for n in best}
            point.expected = {params[n] for n in best}
            # Requests of such a prune: the lock, the plan's reads, the pruned records, one per delete.
            point.at = rng.randint(1, point.trials - KEEP + 6)

    def _params(self, sweep: str) -> dict[str, float]:
        out = self.bed.kubectl("-n", self.ns, "get", "tfjobs", "-l", f"sweepctl.dev/sweep={sweep}", "-o", "json").stdout
        return {i["metadata"]["name"]: json.loads(i["metadata"]["annotations"]["sweepctl.dev/params"])["learningRate"]
                for i in json.loads(out)["items"]}

    @staticmethod
    def _must(res: subprocess.CompletedProcess[str]) -> None:
        assert res.returncode == 0, res.stdout + res.stderr

    def run(self, points: list[Point], tensorboard_url: str) -> None:
        """Kill every point's command at its request, side by side; then re-run them all at once."""
        pki = self.bed.run_dir / "pki"
        server = json.loads(self.bed.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        cert, key = mint_certificate(pki, self.work / "proxy-pki")
        proxies, procs = [], []
        try:
            for point in points:
                proxy = FaultProxy(server, pki / "ca.crt", cert, key).start()
                proxies.append(proxy)
                kubeconfig = proxy.kubeconfig(self.bed.kubeconfig, self.work / f"{point.sweep}-kubeconfig")
                proc = subprocess.Popen([str(SWEEPCTL), *point.argv(tensorboard_url), *AS_USER], cwd=self.work,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        stdin=subprocess.DEVNULL,
                                        env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(kubeconfig),
                                             "HOME": str(self.work)})
                proxy.set(kill_after=(point.at, proc.pid))  # before its first request: it is still importing
                procs.append(proc)
            for point, proc, proxy in zip(points, procs, proxies):
                proc.wait(timeout=300)
                point.killed_at = next((k.removeprefix("killed at ") for k in proxy.counts
                                        if k.startswith("killed at ")), "")
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            for proxy in proxies:
                proxy.stop()

        def rerun(point: Point) -> None:
            point.rerun = self.sweepctl(self.bed.kubeconfig, *point.argv(tensorboard_url), "--lock-timeout", "2m")

        threads = [threading.Thread(target=rerun, args=(p,)) for p in points]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for point in points:
            self.check(point)

    def check(self, point: Point) -> None:
        """Whether the point converged; what did not hold goes to point.failures."""
        res = point.rerun
        assert res is not None
        fail = point.failures
        if res.returncode != 0:
            fail.append(f"re-run exit {res.returncode}: {res.stderr.strip()[-500:]}")
        fail += [f"re-run printed {word}" for word in RAW if word in res.stdout + res.stderr]
        live, params = trial_uids(self.bed, self.ns, point.sweep), self._params(point.sweep)
        have = set(params.values())
        if have != point.expected:
            fail.append(f"live set: {len(have)} trials, {len(have - point.expected)} unexpected, "
                        f"{len(point.expected - have)} missing")
        if len(have) != len(live):
            fail.append(f"{len(live) - len(have)} duplicate trials")
        changed = [n for n, uid in point.kept.items() if live.get(n) != uid]
        if changed:
            fail.append(f"{len(changed)} kept trials recreated or gone")
        replan = self.sweepctl(self.bed.kubeconfig, "plan", point.spec, "--detailed-exitcode")
        if replan.returncode != 0:
            fail.append(f"re-plan exit {replan.returncode}")
