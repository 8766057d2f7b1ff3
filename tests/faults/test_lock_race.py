"""Commands racing for one sweep, released together: one holder at a time, each loser refused or waiting.

Without the lock, two applies of different specs both succeeded and the later
deleted the other's trials, or left the union of both (the issue's measurements).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from lockhelpers import AS_USER, lease, trial_names, write_spec

# Each process imports what is slow to import first, then waits for the barrier file: they start together.
_LAUNCH = """
import os, sys, time
from sweepctl.cli import app
import kubernetes.client, sweepctl.backends.kubernetes, sweepctl.backends.lease
barrier = sys.argv[1]
open(barrier + f".ready-{os.getpid()}", "w").close()
while not os.path.exists(barrier):
    time.sleep(0.002)
app(sys.argv[2:])
"""

PROCESSES = 20


def test_concurrent_applies_of_two_specs_one_holder_at_a_time_losers_refused_or_waiting(
        bed, ns: str, tmp_path: Path) -> None:
    specs = [write_spec(tmp_path / "a.yaml", ns, [0.1, 0.2, 0.3, 0.4]),
             write_spec(tmp_path / "b.yaml", ns, [0.5, 0.6, 0.7])]
    barrier = tmp_path / "go"
    procs = []
    for i in range(PROCESSES):
        wait = ["--lock-timeout", "3m"] if i % 4 == 1 else []  # a few wait, the others are refused at once
        procs.append(subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, str(barrier), "apply", str(specs[i % 2]), "--auto-approve", *wait,
             *AS_USER], cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(bed.kubeconfig), "HOME": str(tmp_path),
                 "COLUMNS": "200"}))
    holders: list[str] = []
    stop = threading.Event()

    def watch() -> None:  # who holds the Lease, sampled as often as kubectl answers
        while not stop.is_set():
            found = lease(bed, ns)
            holder = (found or {}).get("spec", {}).get("holderIdentity")
            if holder and (not holders or holders[-1] != holder):
                holders.append(holder)

    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.ready-*"))) < PROCESSES:  # every process imported and waits
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.1)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    barrier.write_text("go")
    results = [(p.args[5], *p.communicate(timeout=400), p.returncode) for p in procs]
    stop.set()
    watcher.join()

    won = [r for r in results if r[3] == 0]
    refused = [r for r in results if r[3] != 0]
    waiters = sum(1 for i in range(PROCESSES) if i % 4 == 1)
    assert len(won) >= 1 + waiters - 1  # every waiter got its turn (one may have been the first winner)
    for _spec, out, err, code in results:
        assert "Traceback" not in err and "409" not in out + err, err
    for _spec, _out, err, _code in refused:
        assert "sweep locked is locked by `sweepctl apply" in err and "nothing was changed" in err, err
    # Each winner held its own lock, one after another; none is left behind.
    assert len(holders) == len(set(holders)) <= len(won)
    assert lease(bed, ns) is None
    # The sweep is exactly one of the two specs (the last winner's), never a union or a mix.
    live = trial_names(bed, ns)
    assert len(live) in (3, 4)
    last = next(s for s in specs if len(json.loads(s.read_text().split("learningRate: ")[1])) == len(live))
    replan = subprocess.run([str(Path(sys.executable).parent / "sweepctl"), "plan", str(last),
                             "--detailed-exitcode", *AS_USER], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(bed.kubeconfig), "HOME": str(tmp_path)})
    assert replan.returncode == 0, replan.stdout + replan.stderr
