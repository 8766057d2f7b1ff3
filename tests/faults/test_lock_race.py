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
    # Every change of the Lease, in order, as a watch delivers it from a version read before the
    # start: not sampled, none missed.
    listed = json.loads(bed.kubectl("get", "--raw", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases").stdout)
    version = listed["metadata"]["resourceVersion"]
    watch = subprocess.Popen([str(bed.bin_dir / "kubectl"), "--kubeconfig", str(bed.kubeconfig), "get", "--raw",
                              f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases?watch=1&resourceVersion={version}"
                              "&fieldSelector=metadata.name%3Dlocked-sweepctl-lock"],
                             stdout=subprocess.PIPE, text=True)
    events: list[tuple[str, dict]] = []

    def read() -> None:
        for line in watch.stdout:  # one JSON event per line
            event = json.loads(line)
            events.append((event["type"], event["object"]))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.ready-*"))) < PROCESSES:  # every process imported and waits
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.1)
    barrier.write_text("go")
    results = [(p.args[5], *p.communicate(timeout=400), p.returncode) for p in procs]
    won = sum(1 for r in results if r[3] == 0)
    deadline = time.monotonic() + 30  # until the watch delivered every winner's release
    while sum(1 for kind, _ in events if kind == "DELETED") < won and time.monotonic() < deadline:
        time.sleep(0.1)
    watch.terminate()
    watch.wait(timeout=30)
    reader.join(timeout=30)

    refused = [r for r in results if r[3] != 0]
    waiters = sum(1 for i in range(PROCESSES) if i % 4 == 1)
    assert won >= 1 + waiters - 1  # every waiter got its turn (one may have been the first winner)
    for _spec, out, err, code in results:
        assert "Traceback" not in err and "409" not in out + err, err
    for _spec, _out, err, _code in refused:
        assert "sweep locked is locked by `sweepctl apply" in err and "nothing was changed" in err, err
    # Exactly one holder at a time: each holder's Lease is created (or taken once expired, which
    # cannot happen here: no holder dies), renewed by it alone, and deleted before the next one's.
    holders: list[str] = []
    current = None
    for kind, obj in events:
        holder = obj["spec"].get("holderIdentity")
        if kind == "ADDED":
            assert current is None, f"{holder} took the lock while {current} held it"
            current = holder
            holders.append(holder)
        elif kind == "MODIFIED":
            assert holder == current, f"the Lease changed hands from {current} to {holder} while held"
        elif kind == "DELETED":
            assert holder == current
            current = None
    assert current is None and len(holders) == len(set(holders)) == won, (holders, won)
    assert lease(bed, ns) is None
    # The sweep is exactly one of the two specs (the last winner's), never a union or a mix.
    live = trial_names(bed, ns)
    assert len(live) in (3, 4)
    last = next(s for s in specs if len(json.loads(s.read_text().split("learningRate: ")[1])) == len(live))
    replan = subprocess.run([str(Path(sys.executable).parent / "sweepctl"), "plan", str(last),
                             "--detailed-exitcode", *AS_USER], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(bed.kubeconfig), "HOME": str(tmp_path)})
    assert replan.returncode == 0, replan.stdout + replan.stderr
