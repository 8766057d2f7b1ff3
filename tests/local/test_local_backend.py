"""The local backend runs the real trainer: plan/apply/destroy behave as on Kubernetes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from local_helpers import cli, fork_servers, logs_of, spec_text, start, state, wait_for


def events(logs: Path) -> dict[str, float]:
    """A log folder's own event files (not an earlier attempt's), with their modification times."""
    return {f.name: f.stat().st_mtime for f in logs.glob("events.out.tfevents.*")}


def test_local_sweep_end_to_end(sweepctl, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text("  learningRate: [0.01, 0.1]\n  hiddenLayers: [2]\n"))
    res = sweepctl("plan", spec, "--detailed-exitcode")
    assert res.exit_code == 2 and "Plan: 2 to add" in res.stdout
    res = sweepctl("apply")
    assert res.exit_code == 0, res.output
    assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed." in res.stdout
    trials = state(tmp_path)["trials"]
    assert {t["state"] for t in trials.values()} == {"Succeeded"}
    for name in trials:
        logs = tmp_path / ".sweepctl" / "sweeps" / "tiny" / "logs" / name
        assert list(logs.glob("events.out.tfevents.*")), "TensorBoard events are written per trial"
        assert json.loads((logs / "metrics.json").read_text())["loss"] > 0
        assert "loss=" in (logs / "stdout.log").read_text()
    assert "sweepctl tensorboard" in res.stdout  # says how to look at the results

    res = sweepctl("plan", spec, "--detailed-exitcode")
    assert res.exit_code == 0, res.output
    assert "No changes." in res.stdout and res.stdout.count("(Succeeded)") == 2

    spec.write_text(spec_text("  learningRate: [0.01]\n  hiddenLayers: [2]\n"))
    res = sweepctl("apply", spec, "--auto-approve")
    assert "0 added, 0 changed, 1 destroyed" in res.stdout
    assert len(state(tmp_path)["trials"]) == 1
    gone = next(n for n in trials if "lr0p1-" in n)
    first = events(logs_of(tmp_path, gone))
    assert first, "a trial whose value left the spec keeps its logs"

    # The value comes back: it trains again, beside its earlier attempt's logs, not over them.
    spec.write_text(spec_text("  learningRate: [0.01, 0.1]\n  hiddenLayers: [2]\n"))
    res = sweepctl("apply", spec, "--auto-approve")
    assert "1 added, 0 changed, 0 destroyed" in res.stdout, res.output
    assert events(logs_of(tmp_path, gone) / "attempt-1") == first
    assert events(logs_of(tmp_path, gone)).keys().isdisjoint(first)
    rows = json.loads(sweepctl("status", spec, "-o", "json").stdout)
    metrics = json.loads((logs_of(tmp_path, gone) / "metrics.json").read_text())
    assert {r["name"]: r["step"] for r in rows}[gone] == metrics["steps"]  # one attempt's series, not two

    kept = {n: events(logs_of(tmp_path, n)) for n in trials}
    res = sweepctl("destroy", spec, "--auto-approve")
    assert res.exit_code == 0 and "2 destroyed" in res.stdout, res.output
    assert state(tmp_path)["trials"] == {}
    assert {n: events(logs_of(tmp_path, n)) for n in trials} == kept, "destroy keeps the logs"
    assert events(logs_of(tmp_path, gone) / "attempt-1") == first


def test_a_failing_trial_is_reported_and_rerun_only_with_replace(sweepctl, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    # --hidden-layers 0 is refused by the trainer: that trial fails, the other succeeds.
    spec.write_text(spec_text("  hiddenLayers: [0, 2]\n"))
    res = sweepctl("apply", spec, "--auto-approve")
    assert res.exit_code == 1
    failed = [n for n, t in state(tmp_path)["trials"].items() if t["state"] == "Failed"]
    assert len(failed) == 1 and "hl0" in failed[0]
    assert f"{failed[0]}: trainer exited with 2" in res.stderr
    assert "Apply incomplete" in res.stderr

    res = sweepctl("plan", spec, "--detailed-exitcode")
    assert res.exit_code == 0 and "(Failed)" in res.stdout
    res = sweepctl("plan", spec, "--replace", failed[0], "--detailed-exitcode")
    assert res.exit_code == 2 and "Plan: 0 to add, 1 to change, 0 to destroy." in res.stdout


def test_interrupted_apply_resumes_only_what_is_missing(tmp_path: Path, census) -> None:
    spec = tmp_path / "s.yaml"
    # One at a time: a quick trial, then one long enough to be interrupted.
    spec.write_text(spec_text("  epochs: [3, 800]\n", parallelism=1, args=["--size", "24", "--batch-size", "8"]))
    written = spec.read_bytes()
    first = start(tmp_path, "apply", spec, "--auto-approve")
    wait_for(lambda: "Running" in {t["state"] for t in state(tmp_path)["trials"].values()})

    # Meanwhile a second apply has nothing to do, and one with more to run is refused.
    second = cli(tmp_path, "apply", spec, "--auto-approve")
    assert second.returncode == 0 and "No changes." in second.stdout, second.stderr
    (tmp_path / "more.yaml").write_text(spec.read_text().replace("800]", "800, 5]"))
    second = cli(tmp_path, "apply", "more.yaml", "--auto-approve")
    assert second.returncode == 1
    assert "another apply of sweep tiny is running" in second.stderr
    assert len(state(tmp_path)["trials"]) == 2

    # Ctrl-C once the quick trial is done and the long one trains.
    wait_for(lambda: sorted(t["state"] for t in state(tmp_path)["trials"].values()) == ["Running", "Succeeded"])
    long = next(n for n, t in state(tmp_path)["trials"].items() if t["state"] == "Running")
    wait_for(lambda: b"epoch=0 " in (logs_of(tmp_path, long) / "stdout.log").read_bytes())
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    assert first.returncode == 130
    records = state(tmp_path)["trials"]
    done = next(n for n, t in records.items() if t["state"] == "Succeeded")
    cut = next(n for n, t in records.items() if t["state"] == "Interrupted")
    assert cut == long
    finished_logs = events(logs_of(tmp_path, done))
    cut_output = (logs_of(tmp_path, cut) / "stdout.log").read_bytes()

    plan = cli(tmp_path, "plan", spec)
    assert "(Interrupted)" in plan.stdout and "(Succeeded)" in plan.stdout and "Plan: 1 to add" in plan.stdout

    # Resume with the very same spec: only the interrupted trial runs again.
    assert spec.read_bytes() == written
    resumed = cli(tmp_path, "apply", spec, "--auto-approve")
    assert resumed.returncode == 0, resumed.stderr
    assert "1 added, 0 changed, 0 destroyed" in resumed.stdout
    records = state(tmp_path)["trials"]
    assert {t["state"] for t in records.values()} == {"Succeeded"}
    assert events(logs_of(tmp_path, done)) == finished_logs, "the finished trial is not run again"
    assert len(census.launches(done)) == 1 and len(census.launches(cut)) == 2
    assert census.most_per_trial() == 1
    # The interrupted attempt's logs are kept beside the new ones.
    assert (logs_of(tmp_path, cut) / "attempt-1" / "stdout.log").read_bytes() == cut_output
    assert events(logs_of(tmp_path, cut))


def test_an_apply_killed_with_sigkill_leaves_trainers_that_the_next_apply_adopts(tmp_path: Path, census) -> None:
    spec = tmp_path / "s.yaml"
    # One at a time: the long trial first, then a quick one.
    spec.write_text(spec_text("  epochs: [1500, 3]\n", parallelism=1, args=["--size", "24", "--batch-size", "8"]))
    apply = start(tmp_path, "apply", spec, "--auto-approve")
    wait_for(lambda: any(t["state"] == "Running" for t in state(tmp_path)["trials"].values()))
    long = next(n for n, t in state(tmp_path)["trials"].items() if t["params"]["epochs"] == 1500)
    quick = next(n for n in state(tmp_path)["trials"] if n != long)
    wait_for(lambda: b"epoch=0 " in (logs_of(tmp_path, long) / "stdout.log").read_bytes())
    apply.send_signal(signal.SIGKILL)
    apply.communicate(timeout=30)
    wait_for(lambda: not fork_servers(tmp_path), timeout=10)  # its fork server ends with it

    time.sleep(1)  # a trainer that outlives its apply keeps training, and status says so
    assert len(census.sample()) == 1
    rows = {r["name"]: r["state"] for r in json.loads(cli(tmp_path, "status", spec, "-o", "json").stdout)}
    assert rows == {long: "Running", quick: "Interrupted"}

    assert len(census.sample()) == 1, "the trainer still runs when the next apply starts"
    again = cli(tmp_path, "apply", spec, "--auto-approve")
    assert again.returncode == 0, again.stderr
    assert "Plan: 1 to add" in again.stdout and "1 added, 0 changed, 0 destroyed" in again.stdout
    records = state(tmp_path)["trials"]
    assert {n: t["state"] for n, t in records.items()} == {long: "Succeeded", quick: "Succeeded"}
    # Adopted, never run twice: one launch, one run's output; and parallelism 1 held throughout.
    assert len(census.launches(long)) == 1 and len(census.launches(quick)) == 1
    assert census.most_at_once() == 1
    assert records[quick]["started"] >= records[long]["finished"], "it waited for the adopted trainer"
    assert (logs_of(tmp_path, long) / "stdout.log").read_text().count("epoch=0 ") == 1
    assert not list(logs_of(tmp_path, long).glob("attempt-*"))


def test_parallelism_limits_how_many_trainers_run_at_once(sweepctl, tmp_path: Path, census) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text("  learningRate: [0.001, 0.01, 0.1]\n", parallelism=2))
    res = sweepctl("apply", spec, "--auto-approve")
    assert res.exit_code == 0, res.output
    assert census.most_at_once() == 2
    assert all(len(census.launches(n)) == 1 for n in state(tmp_path)["trials"])


@pytest.mark.parametrize("impostor", ["model.py", "model/__main__.py"])
def test_a_model_in_the_working_directory_never_stands_in_for_the_trainer(
        sweepctl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, impostor: str) -> None:
    marker = tmp_path / "impostor-ran"
    (tmp_path / impostor).parent.mkdir(exist_ok=True)
    (tmp_path / impostor).write_text(f"import sys\nopen({str(marker)!r}, 'w').close()\nsys.exit(3)\n")
    if impostor.startswith("model/"):
        (tmp_path / "model" / "__init__.py").write_text("")
    # Even with the working directory on PYTHONPATH, as "." or by its name.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), ".", str(tmp_path)])))
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text("  learningRate: [0.1]\n"))
    res = sweepctl("apply", spec, "--auto-approve")
    assert res.exit_code == 0, res.output
    assert not marker.exists()
    (name,) = state(tmp_path)["trials"]
    assert json.loads((logs_of(tmp_path, name) / "metrics.json").read_text())["epochs"] == 3


def test_tensorboard_serves_every_trial(sweepctl, tmp_path: Path) -> None:
    import urllib.request

    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text("  learningRate: [0.01, 0.1]\n"))
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    proc = subprocess.Popen([sys.executable, "-m", "sweepctl", "tensorboard", str(spec)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "TensorBoard for sweep tiny: http://127.0.0.1:" in line, proc.stderr.read() if proc.poll() else line
        url = line.split(": ", 1)[1].split()[0]
        wait_for(lambda: len(json.loads(urllib.request.urlopen(url + "data/runs").read())) == 3)
        runs = json.loads(urllib.request.urlopen(url + "data/runs").read())
        trials = sorted(r for r in runs if not r.startswith("_sweepctl-hparams-"))  # and the HParams experiment
        assert trials == sorted(state(tmp_path)["trials"]) and len(runs) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    # Terminated, sweepctl stops its TensorBoard too: nothing serving these logs outlives it.
    def serving() -> list[str]:
        found = []
        for p in Path("/proc").iterdir():
            try:
                if not p.name.isdigit() or Path(os.readlink(p / "cwd")) != tmp_path:
                    continue
                cmdline = (p / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "tensorboard" in cmdline and "--logdir" in cmdline:
                found.append(cmdline)
        return found

    wait_for(lambda: not serving())


def test_a_default_is_passed_and_can_never_relabel_a_finished_trial(sweepctl, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"

    def with_default(seed: int) -> str:
        return spec_text("  seed: [0, 1]\n").replace("hyperParamValues:", f"defaults: {{seed: {seed}}}\nhyperParamValues:")

    spec.write_text(with_default(0))
    res = sweepctl("apply", spec, "--auto-approve")
    assert res.exit_code == 0, res.output
    ran = {n: t for n, t in state(tmp_path)["trials"].items()}
    assert sorted(t["args"][t["args"].index("--seed") + 1] for t in ran.values()) == ["0", "1"]  # default passed too

    spec.write_text(with_default(1))
    res = sweepctl("plan", spec)
    assert res.exit_code == 1
    at_0 = next(n for n, t in ran.items() if t["params"]["seed"] == 0)
    at_1 = next(n for n, t in ran.items() if t["params"]["seed"] == 1)
    assert f"trial {at_0} ran with seed=0, but this spec would show it as seed=1" in res.stderr
    assert f"trial {at_1} ran with seed=1, which this spec names {at_0}" in res.stderr
    assert state(tmp_path)["trials"] == ran  # nothing changed
