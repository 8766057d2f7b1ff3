"""A small Keras classifier, logged by Keras's own TensorBoard callback.

The data is generated (three noisy concentric rings in the plane), so nothing is downloaded.
The callback writes `<log dir>/train/` and `<log dir>/validation/`, both with the tags
`epoch_loss` and `epoch_accuracy`; the spec ranks trials by `validation/epoch_accuracy`.
The log folder comes from sweepctl's SWEEPCTL_LOG_DIR, so the command needs no flag for it.
"""

from __future__ import annotations

import argparse
import os

import numpy as np


def rings(count: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points on three rings of radius 1, 2 and 3 with noise; the label is the ring."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    radius = labels + 1 + rng.normal(0.0, 0.25, count)
    angle = rng.uniform(0.0, 2 * np.pi, count)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return points.astype("float32"), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--units", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--log-dir", default=os.environ.get("SWEEPCTL_LOG_DIR", "logs"))
    args = parser.parse_args()

    import tensorflow as tf  # after parsing: --help stays fast

    tf.keras.utils.set_random_seed(0)
    x_train, y_train = rings(1500, seed=0)
    x_val, y_val = rings(500, seed=1)
    model = tf.keras.Sequential([
        tf.keras.Input(shape=(2,)),
        tf.keras.layers.Dense(args.units, activation="relu"),
        tf.keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(args.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=False)  # XLA would compile for longer than this model trains
    tensorboard = tf.keras.callbacks.TensorBoard(args.log_dir, write_graph=False, profile_batch=0)
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=args.epochs, batch_size=64,
              callbacks=[tensorboard], verbose=2)


if __name__ == "__main__":
    main()
