"""Training: the whole epoch loop runs inside one compiled TensorFlow function.

At batch 50 a step is a few microseconds of arithmetic, so per-step Python (the lab's
session.run with a feed_dict) costs more than the maths. Here the picture lives in tensors,
each epoch is shuffled in the graph, and Python only wakes up at summary points.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from typing import Any, TextIO

import numpy as np

from model.data import encode_png
from model.network import coordinate_features, initial_weights

BETA1 = 0.9
BETA2 = 0.999
EPSILON = 1e-7
SUMMARY_POINTS = 100  # scalar summaries per run (plus one at step 0), whatever the epoch count
IMAGE_EVERY = 10  # one image summary per this many scalar summary points (and at the end)
# XLA fuses the step into a few kernels; measured faster than the plain graph on 2 CPU cores
# (bench/RESULTS.md).
JIT_COMPILE = True


@dataclasses.dataclass(frozen=True)
class Config:
    """What one training run does; every field is a command-line flag."""

    learning_rate: float
    hidden_layers: int
    log_dir: str
    image: str | None
    size: int
    epochs: int
    batch_size: int
    seed: int
    threads: int
    encoding: str


def import_tensorflow() -> Any:
    """TensorFlow, imported here so that --help and flag errors stay fast, and without Keras.

    TensorFlow imports Keras at import time (for its optimizers' registrations), and Keras
    imports matplotlib when it is installed, as it is beside sweepctl's `report`: 0.6 s of a
    2.4 s import, paid by every trial, for a trainer that uses neither. While TensorFlow is
    imported, `import keras` fails (a None entry in sys.modules), which TensorFlow expects and
    skips. In this process `tf.keras` still imports Keras on first use, but `import
    tensorflow.keras` fails: TensorFlow found no Keras to add to its search path.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's start-up INFO lines are noise here
    if "tensorflow" in sys.modules or "keras" in sys.modules:
        import tensorflow as tf

        return tf
    sys.modules["keras"] = None  # type: ignore[assignment]
    try:
        import tensorflow as tf
    finally:
        del sys.modules["keras"]
    return tf


def psnr_from_loss(loss: float) -> float:
    """PSNR in dB of 0-255 images from the lab's loss (squared error summed over RGB)."""
    return 10 * math.log10(255.0**2 * 3 / loss) if loss > 0 else math.inf


def train(config: Config, picture: np.ndarray, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Train on picture (size x size x 3 uint8), write summaries and files to config.log_dir.

    Returns the metrics also written to metrics.json.
    """
    started = time.perf_counter()
    tf = import_tensorflow()

    if config.threads:
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
        tf.config.threading.set_inter_op_parallelism_threads(config.threads)
    tf.config.experimental.enable_op_determinism()

    model = Model(tf, config, picture)
    writer = tf.summary.create_file_writer(config.log_dir)
    interval = max(1, math.ceil(config.epochs / SUMMARY_POINTS))
    train_started = time.perf_counter()
    epoch = point = 0
    with writer.as_default():
        while True:
            reconstruction, loss = model.evaluate()
            psnr = psnr_from_loss(loss)
            step = epoch * model.steps_per_epoch
            tf.summary.scalar("loss", loss, step=step)
            tf.summary.scalar("psnr", psnr, step=step)
            if point % IMAGE_EVERY == 0 or epoch == config.epochs:
                tf.summary.image("reconstruction", reconstruction[None], step=step, max_outputs=1)
            writer.flush()
            print(f"epoch={epoch} step={step} loss={loss:.2f} psnr={psnr:.3f}", file=out, flush=True)
            if epoch == config.epochs:
                break
            count = min(interval, config.epochs - epoch)
            model.train_epochs(count)
            epoch += count
            point += 1
    writer.close()
    finished = time.perf_counter()

    with open(os.path.join(config.log_dir, "reconstruction.png"), "wb") as png:
        png.write(encode_png(reconstruction))
    steps = config.epochs * model.steps_per_epoch
    seconds = finished - train_started
    metrics = {
        "loss": loss,
        "psnr": psnr,
        "steps": steps,
        "epochs": config.epochs,
        "seconds": round(seconds, 3),
        "wall_seconds": round(finished - started, 3),
        "steps_per_second": round(steps / seconds, 1),
        "samples_per_second": round(steps * config.batch_size / seconds, 1),
        "hyperparameters": dataclasses.asdict(config),
        "tensorflow": tf.__version__,
    }
    _write_json_atomically(os.path.join(config.log_dir, "metrics.json"), metrics)
    return metrics


class Model:
    """Variables, the compiled epoch loop and full-picture evaluation for one run."""

    def __init__(self, tf: Any, config: Config, picture: np.ndarray):
        self.tf = tf
        features = coordinate_features(config.size, config.encoding)
        self.targets = picture.reshape(-1, 3).astype(np.float64)
        self.shape = picture.shape
        pixels = len(features)
        self.steps_per_epoch = pixels // config.batch_size  # the last partial batch is dropped, as in the lab
        total_steps = float(config.epochs * self.steps_per_epoch)
        used = self.steps_per_epoch * config.batch_size

        inputs = tf.constant(features)
        targets = tf.constant(picture.reshape(-1, 3).astype(np.float32) / 255.0)
        self.params = [tf.Variable(w) for w in initial_weights(features.shape[1], config.hidden_layers, config.seed)]
        moments = [(tf.Variable(tf.zeros_like(p)), tf.Variable(tf.zeros_like(p))) for p in self.params]
        step = tf.Variable(0, dtype=tf.int64)
        seed = tf.constant(config.seed, tf.int64)

        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.reduce_sum(tf.square(self.forward(x) - y), axis=1))
            grads = tape.gradient(loss, self.params)
            # Cosine decay from --learning-rate to 0 over the run: late small steps settle detail.
            progress = tf.cast(step, tf.float32) / total_steps
            rate = config.learning_rate * 0.5 * (1.0 + tf.cos(math.pi * progress))
            t = tf.cast(step + 1, tf.float32)
            for param, (m, v), grad in zip(self.params, moments, grads):
                # One fused kernel per variable instead of a dozen element-wise ops.
                tf.raw_ops.ResourceApplyAdam(
                    var=param.handle, m=m.handle, v=v.handle,
                    beta1_power=BETA1**t, beta2_power=BETA2**t, lr=rate,
                    beta1=BETA1, beta2=BETA2, epsilon=EPSILON, grad=grad)
            step.assign_add(1)

        def one_epoch(done):
            epoch = step // self.steps_per_epoch
            # A permutation from sorting random 64-bit keys: XLA has no shuffle kernel.
            keys = tf.random.stateless_uniform([pixels], tf.stack([seed, epoch]), minval=None, maxval=None, dtype=tf.int64)
            order = tf.argsort(keys)[:used]
            xs = tf.reshape(tf.gather(inputs, order), (self.steps_per_epoch, config.batch_size, -1))
            ys = tf.reshape(tf.gather(targets, order), (self.steps_per_epoch, config.batch_size, 3))

            def one_step(i):
                train_step(xs[i], ys[i])
                return (i + 1,)

            tf.while_loop(lambda i: i < self.steps_per_epoch, one_step, (tf.constant(0),))
            return (done + 1,)

        # The loops are tf.while_loops written out, not Python loops for AutoGraph to convert: a
        # trial's start-up is mostly tracing and compiling these, and AutoGraph's conversion added
        # 0.2-0.3 s to it (bench/RESULTS.md). `count` is a loop bound, not a shape: XLA would take
        # tf.range(count) as a compile-time constant and compile again for every new value.
        @tf.function(jit_compile=JIT_COMPILE, autograph=False)
        def train_epochs(count):
            tf.while_loop(lambda done: done < count, one_epoch, (tf.constant(0, tf.int64),))

        self._train_epochs = train_epochs
        self._predict = tf.function(lambda: self.forward(inputs), jit_compile=JIT_COMPILE, autograph=False)

    def forward(self, x):
        """RGB in [0, 1] for a batch of encoded coordinates."""
        tf = self.tf
        h = x
        for layer in range(0, len(self.params) - 2, 2):
            h = tf.nn.relu(tf.nn.bias_add(tf.matmul(h, self.params[layer]), self.params[layer + 1]))
        return tf.sigmoid(tf.nn.bias_add(tf.matmul(h, self.params[-2]), self.params[-1]))

    def train_epochs(self, count: int) -> None:
        """Run count more epochs of training."""
        self._train_epochs(self.tf.constant(count, self.tf.int64))

    def evaluate(self) -> tuple[np.ndarray, float]:
        """The whole picture as the net paints it now (uint8) and the lab's loss on it."""
        prediction = self._predict().numpy().astype(np.float64) * 255.0
        loss = float(np.mean(np.sum((prediction - self.targets) ** 2, axis=1)))
        image = np.clip(np.round(prediction), 0, 255).astype(np.uint8).reshape(self.shape)
        return image, loss


def _write_json_atomically(path: str, data: dict[str, Any]) -> None:
    """Write JSON so that a reader polling the file never sees half of it."""
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(partial, path)
