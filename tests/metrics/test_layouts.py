"""Metrics from where real trainers write them: Keras's train/ and validation/ folders, raw TF2
tf.summary, tensorboardX (PyTorch's SummaryWriter encoding), Lightning's version_N folders.

Every file here is written by the library itself (tests/library_writers.py); the values read back are
compared with what the library says it logged (Keras's History), never with numbers typed in.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from library_writers import keras_fit, lightning_layout, tensorboardx_scalars

from sweepctl.metrics import events
from sweepctl.metrics.names import candidates, found_note, split


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[float]]]:
    log_dir = tmp_path_factory.mktemp("keras") / "trial"
    return log_dir, keras_fit(log_dir)


def values(run: events.RunData, metric: str) -> list[float]:
    return [v for _, v in run.scalars[metric].points]


def test_a_name_reads_as_the_longest_existing_run_then_the_tag() -> None:
    assert candidates("a/b/c") == (("a/b", "c"), ("a", "b/c"), ("", "a/b/c"))
    assert split("Loss/val", lambda run: False) == ("", "Loss/val")
    assert split("Loss/val", lambda run: run == "Loss") == ("Loss", "val")
    assert split("a/b/c", lambda run: run in {"a", "a/b"}) == ("a/b", "c")
    assert split("../other/loss", lambda run: True) == ("", "../other/loss")  # never leaves the trial's folder


def test_keras_validation_and_train_series_are_told_apart_by_their_folder(keras_run) -> None:
    log_dir, history = keras_run
    assert (log_dir / "train").is_dir() and (log_dir / "validation").is_dir()
    metrics = ["validation/epoch_accuracy", "train/epoch_accuracy", "validation/epoch_loss", "epoch_accuracy"]
    run, _ = events.read_run(log_dir, metrics)
    assert values(run, "validation/epoch_accuracy") == pytest.approx(history["val_accuracy"], rel=1e-6)
    assert values(run, "train/epoch_accuracy") == pytest.approx(history["accuracy"], rel=1e-6)
    assert values(run, "validation/epoch_loss") == pytest.approx(history["val_loss"], rel=1e-6)
    assert [s for s, _ in run.scalars["validation/epoch_accuracy"].points] == list(range(len(history["loss"])))
    assert not run.scalars["epoch_accuracy"].points  # no merging: the trial's own folder has no event file
    test, _ = events.read_run(log_dir, ["test/accuracy"])  # raw tf.summary.scalar in a writer's folder
    assert values(test, "test/accuracy") == pytest.approx([1 - v for v in history["val_loss"]], rel=1e-5)


def test_a_missing_metric_says_what_the_logs_hold(keras_run) -> None:
    log_dir, _ = keras_run
    runs, _ = events.read_runs({"t": log_dir}, ["validation/epoch_acc"], explain=["t"])
    note = runs["t"].scalars["validation/epoch_acc"].error
    assert note is not None and note.startswith("no 'validation/epoch_acc'; found validation/epoch_accuracy, "
                                                "validation/epoch_loss")
    assert "train/epoch_loss" in note and "test/accuracy" in note
    pending, _ = events.read_runs({"t": log_dir}, ["validation/epoch_acc"])  # not ended: no listing
    assert "found" not in (pending["t"].scalars["validation/epoch_acc"].error or "")


def test_tensorboardx_scalars_and_a_tag_with_a_slash_read_both_ways(tmp_path: Path) -> None:
    trial = tmp_path / "trial"
    val = [(0, 0.875), (1, 0.5), (2, 0.25)]  # exact in float32, as simple_value stores them
    tensorboardx_scalars(trial, {"Loss/val": val, "Loss/train": [(0, 1.0), (1, 0.75)]})
    run, _ = events.read_run(trial, ["Loss/val", "Loss/train"])
    assert run.scalars["Loss/val"].points == val  # no Loss/ folder: the tag Loss/val of the trial's own folder
    assert run.scalars["Loss/train"].points == [(0, 1.0), (1, 0.75)]
    # add_scalars writes a run per series; once a Loss/ run exists, Loss/val is its tag `val`.
    tensorboardx_scalars(trial / "Loss", {"val": [(0, 7.0), (1, 6.0)]})
    run, _ = events.read_run(trial, ["Loss/val"])
    assert run.scalars["Loss/val"].points == [(0, 7.0), (1, 6.0)]


def test_lightning_version_folders_are_runs(tmp_path: Path) -> None:
    trial = tmp_path / "trial"
    lightning_layout(trial, 0, {"val_loss": [(0, 2.0), (1, 1.0)], "hp_metric": [(0, -1.0)]})
    lightning_layout(trial, 1, {"val_loss": [(0, 3.0)]})
    run, _ = events.read_run(trial, ["lightning_logs/version_0/val_loss", "lightning_logs/version_1/val_loss",
                                     "val_loss"])
    assert run.scalars["lightning_logs/version_0/val_loss"].points == [(0, 2.0), (1, 1.0)]
    assert run.scalars["lightning_logs/version_1/val_loss"].points == [(0, 3.0)]
    assert not run.scalars["val_loss"].points  # exact: no folder suffix, no merging of versions
    assert events.runs_under(trial) == ["lightning_logs/version_0", "lightning_logs/version_1"]


def test_reads_resume_per_file_and_follow_a_run_that_appears(tmp_path: Path) -> None:
    trial = tmp_path / "trial"
    tensorboardx_scalars(trial / "validation", {"acc": [(0, 0.5)]})
    runs, reads = events.read_runs({"t": trial}, ["validation/acc"])
    assert list(reads["t"]) == [f"validation/{p.name}" for p in (trial / "validation").iterdir()]
    again, reread = events.read_runs({"t": trial}, ["validation/acc"], previous=reads)
    assert again == runs and reread == reads
    tensorboardx_scalars(trial / "validation", {"acc": [(1, 0.75)]}, suffix=".2")  # a second file in the run
    grown, _ = events.read_runs({"t": trial}, ["validation/acc"], previous=reads)
    assert grown["t"].scalars["validation/acc"].points == [(0, 0.5), (1, 0.75)]


def test_found_note_puts_the_addressed_folder_first_and_stays_short() -> None:
    found = {"train": {"epoch_loss"}, "validation": {"epoch_loss", "epoch_accuracy"}, "": {"lr"}}
    assert found_note("validation/epoch_acc", found) == (
        "no 'validation/epoch_acc'; found validation/epoch_accuracy, validation/epoch_loss, lr, train/epoch_loss")
    assert found_note("Loss/val", {"": {"Loss/train"}, "a": {"x"}}) == "no 'Loss/val'; found Loss/train, a/x"
    many = {"": {f"t{i:02d}" for i in range(20)}}
    assert found_note("x", many).endswith(", ... (20 in all)")
    assert found_note("x", {}) == "no 'x'; found no scalars in its logs"


def test_simple_value_scalars_read_alike_at_any_step(tmp_path: Path) -> None:
    points = [(0, 0.5), (1, 0.25), (300, 0.125), (70_000, 2.0), (2**40, -1.5)]  # one- to six-byte step varints
    tensorboardx_scalars(tmp_path / "t", {"val_loss": points, "val_loss_epoch": [(0, 9.0)]})
    run, _ = events.read_run(tmp_path / "t", ["val_loss", "val_loss_epoch"])
    assert run.scalars["val_loss"].points == points and run.scalars["val_loss_epoch"].points == [(0, 9.0)]
