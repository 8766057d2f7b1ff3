"""Fits a line to noisy points by stochastic gradient descent and prints `loss=<value>` once an epoch.

Standard library only: sweepctl reads the objective from these lines (`objective.source: stdout`),
so the script needs no logging library, no log folder and no flag from sweepctl.
"""

from __future__ import annotations

import argparse
import random


def points(count: int, *, seed: int) -> list[tuple[float, float]]:
    """y = 3x - 1 plus noise, for x in [-1, 1]: the same points for every trial."""
    rng = random.Random(seed)
    xs = [rng.uniform(-1.0, 1.0) for _ in range(count)]
    return [(x, 3.0 * x - 1.0 + rng.gauss(0.0, 0.1)) for x in xs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learningRate", type=float, default=0.01)
    parser.add_argument("--batchSize", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    data = points(256, seed=0)
    rng = random.Random(1)
    w = b = 0.0
    for _ in range(args.epochs):
        rng.shuffle(data)
        for start in range(0, len(data), args.batchSize):
            batch = data[start:start + args.batchSize]
            grad_w = sum(2 * (w * x + b - y) * x for x, y in batch) / len(batch)
            grad_b = sum(2 * (w * x + b - y) for x, y in batch) / len(batch)
            w -= args.learningRate * grad_w
            b -= args.learningRate * grad_b
        loss = sum((w * x + b - y) ** 2 for x, y in data) / len(data)
        print(f"loss={loss:.6f}", flush=True)


if __name__ == "__main__":
    main()
