"""Event files written by the real libraries users train with: TensorFlow's tf.summary, Keras's
TensorBoard callback, tensorboardX (as PyTorch's SummaryWriter and Lightning write them).

TensorFlow runs in a child process (`keras_fit`): the test process never imports it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

_KERAS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf

    log_dir, seed, epochs, units = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")
    model = tf.keras.Sequential([tf.keras.Input((8,)), tf.keras.layers.Dense(units, activation="relu"),
                                 tf.keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    callback = tf.keras.callbacks.TensorBoard(log_dir, write_graph=False, profile_batch=0)
    history = model.fit(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=epochs, batch_size=32,
                        verbose=2, callbacks=[callback])
    with tf.summary.create_file_writer(log_dir + "/test").as_default():  # raw TF2 scalars, as in Katib's example
        for step, value in enumerate(history.history["val_loss"]):
            tf.summary.scalar("accuracy", 1.0 - value, step=step)
    print("HISTORY " + json.dumps(history.history))
""")


def keras_fit(log_dir: Path, *, seed: int = 0, epochs: int = 3, units: int = 8) -> dict[str, list[float]]:
    """Train a tiny Keras model with the TensorBoard callback into log_dir; its History (and stdout)."""
    proc = subprocess.run([sys.executable, "-c", _KERAS, str(log_dir), str(seed), str(epochs), str(units)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("HISTORY ")]
    (log_dir / "stdout.log").write_text(proc.stdout)
    history: dict[str, list[float]] = json.loads(line.removeprefix("HISTORY "))
    return history


def tensorboardx_scalars(log_dir: Path, series: dict[str, list[tuple[int, float]]], *, suffix: str = "") -> None:
    """tensorboardX's SummaryWriter (simple_value scalars, as torch writes them) into log_dir.

    Its file is named by the second and host: a second writer in the same second needs a suffix."""
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(log_dir), filename_suffix=suffix) as writer:
        for tag, points in series.items():
            for step, value in points:
                writer.add_scalar(tag, value, step)


def lightning_layout(save_dir: Path, version: int, series: dict[str, list[tuple[int, float]]]) -> Path:
    """Lightning's TensorBoardLogger layout: save_dir/lightning_logs/version_N, written by tensorboardX
    (Lightning's fallback writer), with its hparams.yaml beside the event file."""
    folder = save_dir / "lightning_logs" / f"version_{version}"
    tensorboardx_scalars(folder, series)
    (folder / "hparams.yaml").write_text("lr: 0.01\n")
    return folder
