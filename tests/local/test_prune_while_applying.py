"""`sweepctl prune` in a second terminal while `sweepctl apply` trains the sweep here."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from local_helpers import SLOW, cli, logs_of, spec_text, start, state, wait_for


def test_prune_stops_exactly_the_pruned_trials_and_the_apply_goes_on(tmp_path: Path, census) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text("  learningRate: [0.001, 0.01, 0.1]\n", parallelism=2, args=SLOW))
    apply = start(tmp_path, "apply", spec, "--auto-approve")
    try:
        # Two trainers run (each has written its first loss), the third waits its turn.
        def scored() -> list[dict]:
            res = cli(tmp_path, "status", spec, "-o", "json")
            return [r for r in json.loads(res.stdout) if r["metric"] is not None] if res.returncode == 0 else []
        wait_for(lambda: len(scored()) == 2)
        records = state(tmp_path)["trials"]
        running = {n: t["process"]["pid"] for n, t in records.items() if t["state"] == "Running"}
        (queued,) = [n for n, t in records.items() if t["state"] == "Queued"]
        assert len(running) == 2

        res = cli(tmp_path, "prune", "--keep", "best=1", "--include-unscored", "--auto-approve")
        assert res.returncode == 0, res.stdout + res.stderr
        assert "0 added, 0 changed, 2 destroyed" in res.stdout
        after = state(tmp_path)
        (kept,) = after["trials"]
        (cut,) = set(running) - {kept}
        assert sorted(after["pruned"]) == sorted([cut, queued])
        # Exactly the pruned trial's trainer is gone; the kept one trains on, the same process.
        assert not _alive(running[cut])
        assert _alive(running[kept]) and after["trials"][kept]["process"]["pid"] == running[kept]

        out, err = apply.communicate(timeout=300)
    finally:
        if apply.poll() is None:
            apply.send_signal(signal.SIGINT)
            apply.communicate(timeout=60)
    assert apply.returncode == 0, out + err
    assert "Apply complete! Resources: 1 added, 0 changed, 0 destroyed." in out
    assert "2 trials pruned by another command" in out
    final = state(tmp_path)
    assert {n: t["state"] for n, t in final["trials"].items()} == {kept: "Succeeded"}
    assert sorted(final["pruned"]) == sorted([cut, queued])
    # Nothing restarted, the queued trial never started, and the pruned trial's logs are kept.
    assert all(len(census.launches(n)) == 1 for n in (kept, cut)) and not census.launches(queued)
    assert not list(logs_of(tmp_path, kept).glob("attempt-*"))
    assert (logs_of(tmp_path, kept) / "stdout.log").read_text().count("epoch=0 ") == 1
    assert list(logs_of(tmp_path, cut).glob("events.out.tfevents.*"))
    plan = cli(tmp_path, "plan", spec, "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr  # pruned stays pruned


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
