"""The HParams dashboard of a local sweep, as a user sees it in sweepctl's own TensorBoard."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from local_helpers import logs_of, spec_text, state, wait_for
from tensorboard_helpers import hparams_experiment, hparams_sessions, serve

from sweepctl.backends import hparams_writer


@contextmanager
def sweepctl_tensorboard(cwd: Path, spec: Path) -> Iterator[str]:
    """`sweepctl tensorboard SPEC`, as a user starts it; yields its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "sweepctl", "tensorboard", str(spec)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "TensorBoard for sweep" in line, proc.stderr.read() if proc.poll() is not None else line
        yield line.split(": ", 1)[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def sessions_when(url: str, ready) -> dict[str, dict]:
    """The dashboard's sessions, once TensorBoard has loaded what `ready(sessions)` needs."""
    found: dict[str, dict] = {}

    def check() -> bool:
        nonlocal found
        found = hparams_sessions(url)
        return ready(found)

    wait_for(check, timeout=120)
    return found


def test_every_trial_is_a_row_with_its_typed_values_status_and_objective_and_stays_when_pruned(
        sweepctl, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text("  learningRate: [0.01, 0.1]\n  hiddenLayers: [2]\n  encoding: [fourier]\n"))
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    trials = state(tmp_path)["trials"]
    status = {r["name"]: r for r in json.loads(sweepctl("status", spec, "-o", "json").stdout)}

    with sweepctl_tensorboard(tmp_path, spec) as url:
        experiment = hparams_experiment(url)
        domains = {h["name"]: (h["type"], h.get("domainDiscrete")) for h in experiment["hparamInfos"]}
        assert domains == {"learningRate": ("DATA_TYPE_FLOAT64", [0.01, 0.1]),
                           "hiddenLayers": ("DATA_TYPE_FLOAT64", [2.0]),
                           "encoding": ("DATA_TYPE_STRING", ["fourier"])}
        assert [m["name"]["tag"] for m in experiment["metricInfos"]] == ["loss"]
        rows = sessions_when(url, lambda s: set(s) == set(trials) and all(r["metrics"] for r in s.values()))
        for name, rec in trials.items():
            assert rows[name]["hparams"] == rec["params"]  # numbers as numbers, strings as strings
            assert rows[name]["status"] == "STATUS_SUCCESS"
            assert rows[name]["metrics"]["loss"] == pytest.approx(status[name]["latest"], rel=1e-6)

    worst = max(status, key=lambda n: status[n]["metric"])
    assert sweepctl("prune", spec, "--keep", "best=1", "--auto-approve").exit_code == 0
    assert list(state(tmp_path)["pruned"]) == [worst]
    with sweepctl_tensorboard(tmp_path, spec) as url:
        rows = sessions_when(url, lambda s: set(s) == set(trials) and all(r["metrics"] for r in s.values()))
        assert rows[worst]["metrics"]["loss"] == pytest.approx(status[worst]["latest"], rel=1e-6)
        assert rows[worst]["hparams"] == trials[worst]["params"]


def test_status_never_reads_the_hparams_summaries(sweepctl, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text("  learningRate: [0.01, 0.1]\n"))
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    before = json.loads(sweepctl("status", spec, "-o", "json").stdout)
    for name in state(tmp_path)["trials"]:
        summaries = [logs_of(tmp_path, name) / hparams_writer.SESSION_START, logs_of(tmp_path, name) /
                     hparams_writer.SESSION_END]
        assert all(p.is_file() for p in summaries)
        for path in summaries:  # were status to read them, these trials would have no metric
            path.write_bytes(b"\xff" * 64)
    (tmp_path / ".sweepctl" / "cache").rename(tmp_path / "old-cache")  # read everything again
    after = json.loads(sweepctl("status", spec, "-o", "json").stdout)
    assert after == before and all(r["metric"] is not None for r in after)


def test_summaries_carry_bools_ranges_and_a_changed_experiment(tmp_path: Path) -> None:
    """The writer alone, read by a real TensorBoard: every value type, both kinds of domain, a domain changed."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    experiment = {"hparams": [{"name": "batchNorm", "values": [True, False]},
                              {"name": "depth", "min": 3, "max": 9, "integer": True},
                              {"name": "lr", "min": 0.0001, "max": 0.1, "integer": False},
                              {"name": "mixed", "values": [1, "one"]}],
                  "metrics": ["loss"]}
    data = {"experiment": experiment, "sessions": {
        "a": {"params": {"batchNorm": True, "depth": 4, "lr": 0.001, "mixed": "one"}, "state": "Failed"},
        "b": {"params": {"batchNorm": False, "depth": 9, "lr": 0.01, "mixed": 1}, "state": "Running"},
        "c": {"params": {"batchNorm": False, "depth": 3, "lr": 0.1, "mixed": 1}, "state": ""},  # no folder yet
    }}
    assert hparams_writer.sync(tmp_path, data) == 4  # the experiment, two starts, one end
    assert not (tmp_path / "c").exists() and hparams_writer.sync(tmp_path, data) == 0
    with serve(tmp_path) as url:
        infos = {h["name"]: h for h in hparams_experiment(url)["hparamInfos"]}
        assert infos["batchNorm"]["type"] == "DATA_TYPE_BOOL" and infos["batchNorm"]["domainDiscrete"] == [False, True]
        assert infos["depth"]["domainInterval"] == {"minValue": 3, "maxValue": 9}
        assert infos["lr"]["domainInterval"] == {"minValue": 0.0001, "maxValue": 0.1}
        assert "domainDiscrete" not in infos["mixed"] and "domainInterval" not in infos["mixed"]
        rows = sessions_when(url, lambda s: set(s) == {"a", "b"})
        assert rows["a"]["hparams"] == data["sessions"]["a"]["params"] and rows["a"]["status"] == "STATUS_FAILURE"
        assert rows["b"]["hparams"] == data["sessions"]["b"]["params"] and rows["b"]["status"] == "STATUS_UNKNOWN"

        experiment["hparams"][0]["values"] = [True]  # the sweep's spec changed: the dashboard follows
        assert hparams_writer.sync(tmp_path, data) == 1
        assert len(list(tmp_path.glob(hparams_writer.EXPERIMENT_PREFIX + "*"))) == 1
        wait_for(lambda: {h["name"]: h for h in hparams_experiment(url)["hparamInfos"]}["batchNorm"].get(
            "domainDiscrete") == [True], timeout=60)


def test_an_objective_in_a_run_subfolder_is_the_dashboards_metric(tmp_path: Path) -> None:
    """A trainer of the user's own, as Keras's callback writes: `train/` and `validation/` in the trial's folder."""
    from events_helpers import write_loss

    experiment = {"hparams": [{"name": "lr", "values": [0.1, 0.01]}], "metrics": ["validation/epoch_accuracy"]}
    data = {"experiment": experiment,
            "sessions": {"a": {"params": {"lr": 0.1}, "state": "Succeeded"},
                         "b": {"params": {"lr": 0.01}, "state": "Succeeded"}}}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    hparams_writer.sync(tmp_path, data)  # before any trainer wrote: a plain tag, for now
    for name, accuracy in (("a", 0.5), ("b", 0.75)):
        write_loss(tmp_path / name / "train", [(1, accuracy - 0.1)], tag="epoch_accuracy")
        write_loss(tmp_path / name / "validation", [(1, accuracy)], tag="epoch_accuracy")
    assert hparams_writer.sync(tmp_path, data) == 1  # the experiment again, now that validation/ is there
    with serve(tmp_path) as url:
        (metric,) = hparams_experiment(url)["metricInfos"]
        assert (metric["name"], metric["displayName"]) == ({"tag": "epoch_accuracy", "group": "validation"},
                                                          "validation/epoch_accuracy")
        rows = sessions_when(url, lambda s: set(s) == {"a", "b"} and all(r["metrics"] for r in s.values()))
        assert {n: r["metrics"]["epoch_accuracy"] for n, r in rows.items()} == {"a": 0.5, "b": 0.75}
