"""A sweep of the user's own training script on the local backend: real processes, run as `sweepctl apply` runs them."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
from local_helpers import cli, logs_of, start, state, wait_for

# What the script saw, for the test to check: its argv, folder and environment.
RECORDER = """\
import json, os, sys
log = os.environ["SWEEPCTL_LOG_DIR"]
seen = {"argv": sys.argv[1:], "cwd": os.getcwd(), "python": sys.executable,
        "env": {k: v for k, v in os.environ.items() if k.startswith("SWEEPCTL_")}}
with open(os.path.join(log, "seen.json"), "w") as f:
    json.dump(seen, f)
with open("launches.txt", "a") as f:  # in the spec's folder: one line a launch, kept across replacements
    f.write(os.environ["SWEEPCTL_TRIAL"] + "\\n")
print("loss=0.5", flush=True)
"""
FAILING = """\
import os, sys
with open("launches.txt", "a") as f:  # in the spec's folder: one line a launch
    f.write(os.environ["SWEEPCTL_TRIAL"] + "\\n")
print("epoch 0: loss=0.9", flush=True)
print("Traceback (most recent call last):", file=sys.stderr)
print("ValueError: the learning rate", sys.argv[1], "diverged", file=sys.stderr)
sys.exit(3)
"""
# Logs a falling loss as event files (tensorboard's writer: no TensorFlow), a step every 0.1 s, for a minute.
SLOW = """\
import os, sys, time
import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.scalar import metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util
lr = float(sys.argv[1].split("=")[1])
writer = EventFileWriter(os.environ["SWEEPCTL_LOG_DIR"])
for step in range(600):
    v = summary_pb2.Summary.Value(tag="loss", tensor=tensor_util.make_tensor_proto(np.float32(lr / (step + 1))),
                                  metadata=metadata.create_summary_metadata("", ""))
    writer.add_event(event_pb2.Event(step=step, wall_time=time.time(), summary=summary_pb2.Summary(value=[v])))
    writer.flush()
    print(f"loss={lr / (step + 1)}", flush=True)
    time.sleep(0.1)
writer.close()
"""


@pytest.fixture(autouse=True)
def venv_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """`python` in a command is found on the caller's PATH: here, this venv's, as after `source .venv/bin/activate`."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def project(tmp_path: Path, script: str, spec: str, *, name: str = "train.py") -> Path:
    """A user's project folder, beside (not under) the folder sweepctl runs in."""
    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(script)
    (folder / "sweep.yaml").write_text(spec)
    return folder / "sweep.yaml"


def seen(tmp_path: Path, trial: str, sweep: str) -> dict:
    return json.loads((logs_of(tmp_path, trial, sweep) / "seen.json").read_text())


def test_named_placeholders_reach_the_script_in_the_spec_folder_with_the_sweepctl_environment(tmp_path: Path) -> None:
    spec = project(tmp_path, RECORDER, """\
name: named
command: [python, train.py, "--learning_rate=${learningRate}", --units, "${units}", --log_dir, "${logDir}"]
args: ["--note=$${not a placeholder}"]
local: {parallelism: 2}
hyperParamValues:
  learningRate: [0.010, 1.0e-3]
  units: [32]
""")
    res = cli(tmp_path, "apply", spec, "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed." in res.stdout
    trials = state(tmp_path, "named")["trials"]
    assert {t["state"] for t in trials.values()} == {"Succeeded"}
    for name, rec in trials.items():
        logs = logs_of(tmp_path, name, "named").resolve()
        got = seen(tmp_path, name, "named")
        lr = "0.01" if rec["params"]["learningRate"] == 0.01 else "0.001"
        assert got["argv"] == [f"--learning_rate={lr}", "--units", "32", "--log_dir", str(logs),
                               "--note=${not a placeholder}"]
        assert got["cwd"] == str(spec.parent.resolve())
        assert got["env"] == {"SWEEPCTL_LOG_DIR": str(logs), "SWEEPCTL_TRIAL": name, "SWEEPCTL_SWEEP": "named"}
        assert Path(got["python"]).parent == Path(sys.executable).parent  # the caller's PATH
        assert (logs / "stdout.log").read_text() == "loss=0.5\n"  # the script's own output, nothing added


def test_args_placeholder_passes_every_hyperparameter_as_written(tmp_path: Path) -> None:
    spec = project(tmp_path, RECORDER, """\
name: every
command: [python, train.py, "${args}"]
hyperParamValues:
  learning_rate: [0.1]
  useBias: [true]
  optimizer: [SGD]
""")
    assert cli(tmp_path, "plan", spec).returncode == 0
    res = cli(tmp_path, "apply", "--auto-approve")  # the saved plan: it knows the spec's folder too
    assert res.returncode == 0, res.stdout + res.stderr
    (trial,) = state(tmp_path, "every")["trials"]
    assert seen(tmp_path, trial, "every")["cwd"] == str(spec.parent.resolve())
    assert trial.startswith("every-lr0p1-")  # snake_case names make DNS-safe trial names too
    assert seen(tmp_path, trial, "every")["argv"] == ["--learning_rate=0.1", "--useBias=true", "--optimizer=SGD"]


def test_a_script_that_fails_is_failed_not_retried_and_status_shows_its_last_lines(tmp_path: Path) -> None:
    spec = project(tmp_path, FAILING, "name: failing\ncommand: [python, fail.py, '${lr}']\n"
                   "hyperParamValues: {lr: [10]}\n", name="fail.py")
    res = cli(tmp_path, "apply", spec, "--auto-approve")
    assert res.returncode != 0
    (name,) = state(tmp_path, "failing")["trials"]
    assert "trainer exited with 3" in res.stdout + res.stderr
    status = cli(tmp_path, "status", spec)
    assert status.returncode == 0, status.stderr
    assert f"{name} exited with 3; last output" in status.stdout
    assert "ValueError: the learning rate 10 diverged" in status.stdout
    row = json.loads(cli(tmp_path, "status", spec, "-o", "json").stdout)[0]
    assert row["state"] == "Failed"
    assert row["failure"].splitlines()[1:] == ["epoch 0: loss=0.9", "Traceback (most recent call last):",
                                               "ValueError: the learning rate 10 diverged"]
    again = cli(tmp_path, "apply", spec, "--auto-approve")
    assert again.returncode == 0 and "No changes" in again.stdout, again.stdout + again.stderr
    assert launches(spec, name) == 1  # the script's own record: sampling /proc misses a trainer this short


def test_a_missing_program_fails_the_trial_with_the_reason(tmp_path: Path) -> None:
    spec = project(tmp_path, RECORDER, "name: missing\ncommand: [no-such-trainer-here, '${args}']\n"
                   "hyperParamValues: {lr: [1]}\n")
    assert cli(tmp_path, "apply", spec, "--auto-approve").returncode != 0
    row = json.loads(cli(tmp_path, "status", spec, "-o", "json").stdout)[0]
    assert row["state"] == "Failed" and row["failure"].startswith("exited with 127")
    assert "cannot run 'no-such-trainer-here'" in row["failure"] and "No such file or directory" in row["failure"]


def launches(spec: Path, trial: str) -> int:
    """How many times the recorder ran for a trial (each run appends its name)."""
    return (spec.parent / "launches.txt").read_text().split().count(trial)


def test_a_follow_up_value_adds_only_new_trials_and_a_changed_command_is_drift(tmp_path: Path) -> None:
    text = "name: follow\ncommand: [python, train.py, '--units=${units}']\nhyperParamValues: {units: [1, 2]}\n"
    spec = project(tmp_path, RECORDER, text)
    assert cli(tmp_path, "apply", spec, "--auto-approve").returncode == 0
    first = set(state(tmp_path, "follow")["trials"])

    spec.write_text(text.replace("[1, 2]", "[1, 2, 3]"))
    res = cli(tmp_path, "apply", spec, "--auto-approve")
    assert res.returncode == 0 and "1 added, 0 changed, 0 destroyed" in res.stdout, res.stdout + res.stderr
    trials = set(state(tmp_path, "follow")["trials"])
    assert first < trials and len(trials) == 3
    assert all(launches(spec, n) == 1 for n in trials)

    spec.write_text(text.replace("[1, 2]", "[1, 2, 3]").replace("train.py", "train.py, --seed=7"))
    plan = json.loads(cli(tmp_path, "plan", spec, "-o", "json").stdout)
    assert plan["summary"] == {"add": 0, "change": 0, "destroy": 0}
    assert sorted(d["name"] for d in plan["drift"]) == sorted(trials)
    diff = next(d["diff"] for d in plan["drift"] if d["params"] == {"units": 3})
    assert diff == ["spec.command[2]: only in the spec: '--seed=7'"]
    assert "No changes" in cli(tmp_path, "apply", spec, "--auto-approve").stdout  # drift is left alone

    res = cli(tmp_path, "apply", spec, "--auto-approve", "--replace-drifted")
    assert res.returncode == 0 and "0 added, 3 changed, 0 destroyed" in res.stdout, res.stdout + res.stderr
    assert set(state(tmp_path, "follow")["trials"]) == trials  # same names: identity is the values
    for name in trials:
        assert seen(tmp_path, name, "follow")["argv"][0] == "--seed=7"
        assert (logs_of(tmp_path, name, "follow") / "attempt-1" / "seen.json").exists()
        assert launches(spec, name) == 2
    assert cli(tmp_path, "plan", spec, "--detailed-exitcode").returncode == 0


def test_prune_while_a_sweep_of_a_script_runs_stops_exactly_the_pruned_processes(tmp_path: Path, census) -> None:
    spec = project(tmp_path, SLOW, "name: slow\ncommand: [python, slow.py, '--lr=${lr}']\nlocal: {parallelism: 2}\n"
                   "hyperParamValues: {lr: [1, 2, 3]}\n", name="slow.py")
    apply = start(tmp_path, "apply", spec, "--auto-approve")
    try:
        def scored() -> list[dict]:
            res = cli(tmp_path, "status", spec, "-o", "json")
            return [r for r in json.loads(res.stdout) if r["metric"] is not None] if res.returncode == 0 else []
        wait_for(lambda: len(scored()) == 2)
        records = state(tmp_path, "slow")["trials"]
        running = {n: t["process"]["pid"] for n, t in records.items() if t["state"] == "Running"}
        (queued,) = [n for n, t in records.items() if t["state"] == "Queued"]
        scripts = {n: census.launches(n) for n in running}

        res = cli(tmp_path, "prune", spec, "--keep", "best=1", "--include-unscored", "--auto-approve")
        assert res.returncode == 0, res.stdout + res.stderr
        after = state(tmp_path, "slow")
        (kept,) = after["trials"]
        (cut,) = set(running) - {kept}
        assert after["trials"][kept]["params"] == {"lr": 1}  # the lowest loss
        assert not _alive(running[cut]) and _alive(running[kept])
        assert len(scripts[kept]) == 1 and all(_alive(pid) for pid in census.sample()[str(
            logs_of(tmp_path, kept, "slow").resolve())])
        out, err = apply.communicate(timeout=300)
    finally:
        if apply.poll() is None:
            apply.send_signal(signal.SIGINT)
            apply.communicate(timeout=60)
    assert apply.returncode == 0, out + err
    assert "Apply complete! Resources: 1 added, 0 changed, 0 destroyed." in out
    assert {n: t["state"] for n, t in state(tmp_path, "slow")["trials"].items()} == {kept: "Succeeded"}
    assert all(len(census.launches(n)) == 1 for n in (kept, cut)) and not census.launches(queued)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_tf_paint_trainers_get_the_sweepctl_environment_too(tmp_path: Path) -> None:
    """The fork server's tf-paint path, speaking its protocol, with a stand-in `model` that records its environment.

    A stand-in, not tf-paint: the real trainer does not say what environment it saw.
    """
    import subprocess

    from sweepctl.backends import forkserver

    model = tmp_path / "root" / "model"
    model.mkdir(parents=True)
    (model / "__init__.py").write_text("")
    (model / "__main__.py").write_text("import json, os, sys\nopen(sys.argv[1], 'w').write(json.dumps("
                                       "{k: v for k, v in os.environ.items() if k.startswith('SWEEPCTL_')}))\n")
    server = subprocess.Popen([sys.executable, "-P", forkserver.__file__, str(model.parent)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert json.loads(server.stdout.readline()) == {"ready": True}
        env = {"SWEEPCTL_LOG_DIR": str(tmp_path), "SWEEPCTL_TRIAL": "t-1", "SWEEPCTL_SWEEP": "t"}
        server.stdin.write(json.dumps({"exit_file": str(tmp_path / "exit-code"), "log": str(tmp_path / "stdout.log"),
                                       "args": [str(tmp_path / "env.json")], "env": env}) + "\n")
        server.stdin.flush()
        pid = json.loads(server.stdout.readline())["pid"]
        server.stdin.write(json.dumps({"go": pid}) + "\n")
        server.stdin.flush()
        wait_for(lambda: (tmp_path / "exit-code").exists(), timeout=60)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    assert (tmp_path / "exit-code").read_text() == "0\n"
    assert json.loads((tmp_path / "env.json").read_text()) == env
