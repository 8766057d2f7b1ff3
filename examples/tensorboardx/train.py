"""A one-hidden-layer network in plain NumPy, logged with tensorboardX's SummaryWriter.

It learns y = sin(3x) from generated points, so nothing is downloaded. Flags are snake_case,
as argparse scripts written for other sweep tools take them. The writer logs `loss/train` and
`loss/val` into the log folder itself: tags with a slash, as PyTorch users write them, stored as
tensorboardX's `simple_value` scalars. The spec ranks trials by `loss/val`.
"""

from __future__ import annotations

import argparse

import numpy as np
from tensorboardX import SummaryWriter


def curve(count: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points of sin(3x) with noise, x in [-1, 1], as column vectors."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (count, 1))
    return x, np.sin(3 * x) + rng.normal(0.0, 0.05, (count, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--hidden_units", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--log_dir", default="runs/sin")
    args = parser.parse_args()

    x, y = curve(512, seed=0)
    x_val, y_val = curve(128, seed=1)
    rng = np.random.default_rng(2)
    w1 = rng.normal(0.0, 1.0, (1, args.hidden_units))
    b1 = np.zeros(args.hidden_units)
    w2 = rng.normal(0.0, 1.0 / np.sqrt(args.hidden_units), (args.hidden_units, 1))
    b2 = np.zeros(1)

    def forward(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hidden = np.tanh(inputs @ w1 + b1)
        return hidden, hidden @ w2 + b2

    with SummaryWriter(args.log_dir) as writer:
        for epoch in range(args.epochs):
            for batch in np.array_split(rng.permutation(len(x)), len(x) // 32):
                hidden, out = forward(x[batch])
                grad_out = 2 * (out - y[batch]) / len(batch)
                grad_hidden = grad_out @ w2.T * (1 - hidden**2)
                w2 -= args.learning_rate * hidden.T @ grad_out
                b2 -= args.learning_rate * grad_out.sum(0)
                w1 -= args.learning_rate * x[batch].T @ grad_hidden
                b1 -= args.learning_rate * grad_hidden.sum(0)
            writer.add_scalar("loss/train", float(np.mean((forward(x)[1] - y) ** 2)), epoch)
            writer.add_scalar("loss/val", float(np.mean((forward(x_val)[1] - y_val) ** 2)), epoch)


if __name__ == "__main__":
    main()
