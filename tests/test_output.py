"""What sweepctl prints: one JSON document with -o json, one clear line for what the machine lacks,
commands to run next that work as printed, and -o meaning --output everywhere.

The trials here fail at once (the trainer refuses --hidden-layers 0 before it
imports TensorFlow), so a whole apply takes a second.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

FAILS_FAST = "name: tiny\nbackend: local\nhyperParamValues:\n  hiddenLayers: [0]\n"


def one_document(text: str) -> object:
    """The output parsed as exactly one JSON document (json.loads refuses 'Extra data')."""
    return json.loads(text)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(FAILS_FAST)
    return path


def test_apply_prints_one_json_document_with_its_plan(sweepctl, spec: Path) -> None:
    res = sweepctl("apply", spec, "--auto-approve", "-o", "json")
    assert res.exit_code == 1  # the trial failed
    doc = one_document(res.stdout)
    assert doc["sweep"] == "tiny" and doc["added"] == 0 and len(doc["errors"]) == 1
    assert doc["plan"]["summary"] == {"add": 1, "change": 0, "destroy": 0}


@pytest.mark.parametrize("args", [
    ("plan", "missing.yaml"),
    ("apply", "s.yaml"),  # -o json cannot ask for confirmation
    ("status", "--sweep", "nope"),
    ("status", "s.yaml", "--watch"),
    ("prune", "--keep", "best=0"),
    ("report", "--sweep", "../x"),
    ("destroy", "missing.yaml"),
])
def test_every_error_is_one_json_document(sweepctl, spec: Path, args: tuple[str, ...]) -> None:
    res = sweepctl(*args, "-o", "json")
    assert res.exit_code == 1, res.output
    assert one_document(res.stdout)["error"]["diagnostics"][0]["message"]


@pytest.mark.parametrize("out", ["/", "/proc/sweepctl-plan.json", "/proc/sweepctl/plan.json"])
def test_an_unwritable_plan_file_is_a_clean_error(sweepctl, spec: Path, out: str) -> None:
    res = sweepctl("plan", spec, "-out", out)
    assert res.exit_code == 1
    assert res.stderr.startswith(f"Error: cannot save the plan to {out}: "), res.stderr
    assert "Traceback" not in res.output


def suggested(stdout: str) -> list[str]:
    line = stdout.split("To apply exactly these actions, run: ")[1].splitlines()[0]
    return shlex.split(line)


def test_the_suggested_apply_works_as_printed(sweepctl, spec: Path, tmp_path: Path) -> None:
    res = sweepctl("plan", spec, "-out", "my plan.json", "--state-dir", "elsewhere")
    assert res.exit_code == 0, res.output
    command = suggested(res.stdout)
    assert command == ["sweepctl", "apply", "my plan.json", "--state-dir", "elsewhere"]
    res = sweepctl(*command[1:])
    assert "Apply incomplete: 1 failed. Resources: 0 added" in res.stderr, res.output  # it ran the trial
    assert (tmp_path / "elsewhere" / "sweeps" / "tiny" / "state.json").is_file()

    res = sweepctl("plan", spec)
    assert suggested(res.stdout) == ["sweepctl", "apply"]  # the default plan file


def test_o_means_output_for_report_too(sweepctl, spec: Path) -> None:
    res = sweepctl("report", "--sweep", "nope", "-o", "json", "--out", "x.png")
    assert res.exit_code == 1
    assert "sweep nope has no trials" in one_document(res.stdout)["error"]["diagnostics"][0]["message"]
    res = sweepctl("report", "-o", "x.png")
    assert res.exit_code == 2 and "'x.png' is not one of" in res.stderr


def run_without(module: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """sweepctl in a Python where `module` cannot be imported, as without the train extra.

    In a session of its own, stopped with whatever it started if it does not end by itself.
    """
    probe = (f"import sys\nsys.modules[{module!r}] = None\nfrom sweepctl.cli import main\n"
             f"sys.argv = ['sweepctl', *{list(args)!r}]\nmain()\n")
    proc = subprocess.Popen([sys.executable, "-c", probe], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"sweepctl {' '.join(args)} did not stop without {module}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("module, command", [
    ("tensorboard", ("status", "s.yaml")),
    ("matplotlib", ("report", "s.yaml")),
    ("tensorboard", ("tensorboard", "s.yaml")),
])
def test_a_missing_optional_dependency_is_one_line_naming_the_extra(spec: Path, tmp_path: Path, module: str,
                                                                    command: tuple[str, ...]) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    state = tmp_path / ".sweepctl" / "sweeps" / "tiny"
    # A record only TensorBoard's protos decode (two values in one summary; one scalar alone is read without).
    writer = EventFileWriter(str(state / "logs" / "tiny-hl0-0123456789"))
    writer.add_event(event_pb2.Event(step=1, wall_time=1.0, summary=summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag="loss", simple_value=1.0),
               summary_pb2.Summary.Value(tag="accuracy", simple_value=0.5)])))
    writer.close()
    (state / "state.json").write_text(json.dumps({"trials": {"tiny-hl0-0123456789": {
        "id": "0123456789", "uid": "u", "params": {"hiddenLayers": 0}, "args": [], "template_hash": "x",
        "state": "Failed"}}, "pruned": {}}))
    proc = run_without(module, tmp_path, *command)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr == (f"Error: `sweepctl {command[0]}` needs {module}, from the train extra: "
                           "pip install 'sweepctl[train]'\n")
