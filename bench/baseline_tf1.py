"""The lab's TF1 trainer, rebuilt from the project's brief in tf.compat.v1 graph mode, to time it.

What it keeps from the lab: inputs are the standardised (row, col), targets raw RGB 0-255,
N hidden layers of 20 ReLU units and a ReLU output of 3, weights uniform in [0, 1) and zero
biases, loss = squared error summed over RGB averaged over the batch, Adam, batch 50, a fresh
permutation per epoch and one session.run with a feed_dict per step. What it leaves out: the
lab also fetched its merged summary on every step and wrote one twice per epoch; dropping that
makes this baseline faster than the lab, never slower.

Usage: python bench/baseline_tf1.py --image PATH [--steps 4000] [--threads 1]
It prints one JSON object: steps/s and samples/s over --steps steps, after a warm-up, and the
PSNR it reached: its loss on the whole picture, in dB as the trainer reports it. The lab ran
400,000 steps (2,000 epochs of 200); `--steps 400000` measures what its recipe paints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from model.data import load_picture  # noqa: E402
from model.network import HIDDEN_UNITS, coordinate_features  # noqa: E402
from model.train import psnr_from_loss  # noqa: E402

BATCH = 50
WARMUP_STEPS = 200


def measure(image: str, size: int, hidden_layers: int, learning_rate: float, steps: int,
            threads: int, seed: int) -> dict:
    """Train the lab's graph for warm-up + steps steps; time the last steps, then score the whole picture."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import tensorflow as tf

    v1 = tf.compat.v1
    xs = coordinate_features(size, "standard")
    ys = load_picture(image, size).reshape(-1, 3).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(seed)
        x = v1.placeholder(tf.float32, (None, 2))
        y = v1.placeholder(tf.float32, (None, 3))
        h = x
        for width in [HIDDEN_UNITS] * hidden_layers + [3]:
            w = tf.Variable(v1.random_uniform([h.shape[1], width]))
            b = tf.Variable(tf.zeros([width]))
            h = tf.nn.relu(tf.matmul(h, w) + b)
        loss = tf.reduce_mean(tf.reduce_sum(tf.math.squared_difference(y, h), 1))
        train_op = v1.train.AdamOptimizer(learning_rate).minimize(loss)
        init = v1.global_variables_initializer()
    session_config = v1.ConfigProto(intra_op_parallelism_threads=threads,
                                    inter_op_parallelism_threads=threads)
    rng = np.random.default_rng(seed)
    batches = len(xs) // BATCH
    with v1.Session(graph=graph, config=session_config) as session:
        session.run(init)

        def run(count: int) -> float:
            done = 0
            last = 0.0
            while done < count:
                order = rng.permutation(len(xs))
                for i in range(min(batches, count - done)):
                    rows = order[i * BATCH:(i + 1) * BATCH]
                    _, last = session.run([train_op, loss], feed_dict={x: xs[rows], y: ys[rows]})
                done += min(batches, count - done)
            return float(last)

        run(WARMUP_STEPS)
        started = time.perf_counter()
        last_loss = run(steps)
        seconds = time.perf_counter() - started
        picture_loss = float(session.run(loss, feed_dict={x: xs, y: ys}))  # every pixel, as the trainer scores
    return {
        "psnr": psnr_from_loss(picture_loss),
        "picture_loss": picture_loss,
        "steps": steps,
        "warmup_steps": WARMUP_STEPS,
        "seconds": round(seconds, 3),
        "steps_per_second": round(steps / seconds, 1),
        "samples_per_second": round(steps * BATCH / seconds, 1),
        "last_batch_loss": last_loss,
        "threads": threads,
        "hidden_layers": hidden_layers,
        "learning_rate": learning_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="picture to train on")
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--hidden-layers", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--steps", type=int, default=4000, help="timed steps, after a warm-up of 200")
    parser.add_argument("--threads", type=int, default=1, help="session intra/inter-op threads, 0 = TF's choice")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(measure(args.image, args.size, args.hidden_layers, args.learning_rate,
                             args.steps, args.threads, args.seed)))


if __name__ == "__main__":
    main()
