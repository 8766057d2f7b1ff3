"""The tf-paint trainer end to end: real TensorFlow runs as `python -m model` subprocesses.

Four tiny trainings (16 x 16 pixels) start together in one fixture so that the module stays
well under a minute on two cores; flag and picture errors never reach TensorFlow and are fast.
"""

from __future__ import annotations

import glob
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from model.data import draw_default_picture, load_picture

REPO = Path(__file__).resolve().parents[2]
KATIB_REGEX = re.compile(r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)")
SIZE = 16
EPOCHS = 10
BATCH = 8
STEPS_PER_EPOCH = SIZE * SIZE // BATCH
TINY = ["--size", str(SIZE), "--epochs", str(EPOCHS), "--batch-size", str(BATCH), "--hidden-layers", "3"]


def trainer(*args: str) -> list[str]:
    return [sys.executable, "-m", "model", *args]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Start the four tiny trainings at once; wait for all of them."""
    root = tmp_path_factory.mktemp("runs")
    picture = root / "gradient.png"
    ramp = np.linspace(0, 255, 40, dtype=np.float64)
    pixels = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:30, None], 128.0), axis=-1)  # 30 x 40, not square
    Image.fromarray(pixels.astype(np.uint8)).save(picture)
    plans = {
        "a": ["--seed", "3"],
        "a_again": ["--seed", "3"],
        "other_seed": ["--seed", "4"],
        "file": ["--seed", "3", "--image", str(picture), "--encoding", "standard", "--learning-rate", "0.003"],
    }
    started = {}
    for name, extra in plans.items():
        log_dir = root / name
        command = trainer(*TINY, "--log-dir", str(log_dir), *extra)
        started[name] = (log_dir, command, subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = {}
    for name, (log_dir, command, process) in started.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = (log_dir, subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    return results


def metrics(log_dir: Path) -> dict:
    return json.loads((log_dir / "metrics.json").read_text())


def events(log_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator


def scalars(accumulator: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(event.step, float(tensor_util.make_ndarray(event.tensor_proto)))
            for event in accumulator.Tensors(tag)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255**2 / mse)


def test_runs_succeed_quietly(runs):
    for log_dir, result in runs.values():
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr


def test_event_files_hold_loss_psnr_and_reconstruction(runs):
    log_dir, _ = runs["a"]
    assert glob.glob(str(log_dir / "events.out.tfevents.*")), "event file must sit directly in --log-dir"
    assert not [p for p in log_dir.iterdir() if p.is_dir()]
    accumulator = events(log_dir)
    assert {"loss", "psnr", "reconstruction"} <= set(accumulator.Tags()["tensors"])

    loss = scalars(accumulator, "loss")
    quality = scalars(accumulator, "psnr")
    expected_steps = [epoch * STEPS_PER_EPOCH for epoch in range(EPOCHS + 1)]
    assert [step for step, _ in loss] == expected_steps
    assert [step for step, _ in quality] == expected_steps
    for (_, l), (_, p) in zip(loss, quality):  # psnr is the same error as loss, in dB
        assert p == pytest.approx(10 * math.log10(3 * 255**2 / l), abs=1e-3)
    assert quality[-1][1] > quality[0][1] + 3, "ten epochs must improve the picture"

    images = accumulator.Tensors("reconstruction")
    assert [event.step for event in images] == [0, EPOCHS * STEPS_PER_EPOCH]
    width, height, png = tensor_util.make_ndarray(images[-1].tensor_proto)
    assert (int(width), int(height)) == (SIZE, SIZE)
    assert Image.open(io.BytesIO(png)).size == (SIZE, SIZE)


def test_metrics_json_and_reconstruction_agree(runs):
    log_dir, result = runs["a"]
    data = metrics(log_dir)
    assert data["steps"] == EPOCHS * STEPS_PER_EPOCH and data["epochs"] == EPOCHS
    assert 0 < data["loss"] < 3 * 255**2
    assert 0 < data["seconds"] <= data["wall_seconds"]
    assert data["hyperparameters"] == {
        "learning_rate": 0.01, "hidden_layers": 3, "log_dir": str(log_dir), "image": None,
        "size": SIZE, "epochs": EPOCHS, "batch_size": BATCH, "seed": 3, "threads": 1,
        "encoding": "fourier"}
    with Image.open(log_dir / "reconstruction.png") as image:
        assert image.size == (SIZE, SIZE) and image.mode == "RGB"
        painted = np.asarray(image)
    # The PNG is the final prediction rounded to 8 bits: its PSNR matches metrics.json.
    assert psnr(painted, draw_default_picture(SIZE)) == pytest.approx(data["psnr"], abs=0.05)


def test_stdout_has_katib_parsable_loss_lines(runs):
    log_dir, result = runs["a"]
    lines = result.stdout.splitlines()
    assert len(lines) == EPOCHS + 1
    for line in lines:
        assert re.fullmatch(r"epoch=\d+ step=\d+ loss=\d+\.\d+ psnr=\d+\.\d+", line), line
    found = {name: float(value) for name, value, *_ in KATIB_REGEX.findall(lines[-1])}
    assert found["loss"] == pytest.approx(metrics(log_dir)["loss"], abs=0.01)
    assert found["psnr"] == pytest.approx(metrics(log_dir)["psnr"], abs=0.001)


def test_same_seed_same_result_other_seed_differs(runs):
    first, again, other = (metrics(runs[name][0]) for name in ("a", "a_again", "other_seed"))
    assert again["loss"] == pytest.approx(first["loss"], rel=1e-6)
    assert runs["a"][1].stdout == runs["a_again"][1].stdout
    assert abs(other["loss"] - first["loss"]) > 1e-3 * first["loss"]


def test_trains_on_a_picture_file(runs):
    log_dir, _ = runs["file"]
    data = metrics(log_dir)
    assert data["hyperparameters"]["encoding"] == "standard"
    with Image.open(log_dir / "reconstruction.png") as image:
        painted = np.asarray(image)
    target = load_picture(data["hyperparameters"]["image"], SIZE)
    assert painted.shape == (SIZE, SIZE, 3)
    assert psnr(painted, target) == pytest.approx(data["psnr"], abs=0.05)
    assert data["psnr"] > 15, "a smooth gradient is easy to paint"


def run_fast(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(trainer(*args), cwd=cwd, capture_output=True, text=True, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m model: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("args, needle", [
    (["--learning-rate", "0"], "--learning-rate"),
    (["--learning-rate", "abc"], "--learning-rate"),
    (["--learning-rate", "nan"], "--learning-rate"),
    (["--hidden-layers", "0"], "--hidden-layers"),
    (["--hidden-layers", "2.5"], "--hidden-layers"),
    (["--size", "1"], "--size"),
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--size", "4", "--batch-size", "17"], "--batch-size"),
    (["--seed", "-1"], "--seed"),
    (["--threads", "-2"], "--threads"),
    (["--encoding", "polar"], "--encoding"),
    (["--no-such-flag"], "--no-such-flag"),
])
def test_bad_flags_fail_with_one_line(args, needle, tmp_path):
    result = run_fast(*args, "--log-dir", str(tmp_path / "logs"))
    assert_one_line_error(result, needle)
    assert not (tmp_path / "logs").exists()


def test_missing_picture(tmp_path):
    result = run_fast("--image", str(tmp_path / "nope.jpg"), "--log-dir", str(tmp_path / "logs"))
    assert_one_line_error(result, "picture not found", "nope.jpg")


def test_text_file_named_png(tmp_path):
    fake = tmp_path / "fake.png"
    fake.write_text("not a picture\n")
    result = run_fast("--image", str(fake), "--log-dir", str(tmp_path / "logs"))
    assert_one_line_error(result, "not a picture Pillow can read", "fake.png")


def test_log_dir_blocked_by_a_file(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("")
    result = run_fast("--size", "8", "--log-dir", str(blocker / "logs"))
    assert_one_line_error(result, "--log-dir")


def test_help_and_flag_errors_do_not_import_tensorflow():
    probe = ("import runpy, sys\n"
             "for argv in (['model', '--help'], ['model', '--size', '1']):\n"
             "    sys.argv = argv\n"
             "    try:\n"
             "        runpy.run_module('model', run_name='__main__')\n"
             "    except SystemExit:\n"
             "        pass\n"
             "print('tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "False"
    assert "--hidden-layers" in result.stdout
