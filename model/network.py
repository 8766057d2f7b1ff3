"""Inputs and network: pixel coordinates in, an MLP of N hidden layers x 20 ReLU units, RGB out.

The network keeps the lab's shape (--hidden-layers N fully connected layers of 20 units, then
3 outputs); what changed is how coordinates are encoded, how weights start and the output
squashing (see model/README.md for why).
"""

from __future__ import annotations

import math

import numpy as np

HIDDEN_UNITS = 20
ENCODINGS = ("fourier", "standard")


def octaves(size: int) -> int:
    """How many sine/cosine octaves fit below the Nyquist limit of a size-pixel axis.

    Octave k has frequency pi * 2**k on [-1, 1], a period of size / 2**k pixels; the last one
    kept has a period of at least 2 pixels.
    """
    return int(math.floor(math.log2(size / 2))) + 1


def coordinate_features(size: int, encoding: str) -> np.ndarray:
    """One float32 row of input features per pixel, row-major, for a size x size picture.

    "standard" is the lab's input: (row, col) standardised to zero mean and unit variance.
    "fourier" is (row, col) scaled to [-1, 1] followed by sin/cos of pi * 2**k times each, for
    k < octaves(size), so the first layer sees fine detail that a 20-wide ReLU net on raw
    coordinates struggles to build.
    """
    index = np.arange(size, dtype=np.float64)
    rows, cols = np.meshgrid(index, index, indexing="ij")
    coords = np.stack([rows.ravel(), cols.ravel()], axis=1)
    if encoding == "standard":
        features = (coords - coords.mean(axis=0)) / coords.std(axis=0)
    elif encoding == "fourier":
        unit = (coords + 0.5) / size * 2 - 1
        columns = [unit]
        for k in range(octaves(size)):
            angle = math.pi * 2**k * unit
            columns += [np.sin(angle), np.cos(angle)]
        features = np.concatenate(columns, axis=1)
    else:
        raise ValueError(f"unknown encoding {encoding!r}; choose from {', '.join(ENCODINGS)}")
    return features.astype(np.float32)


def initial_weights(inputs: int, hidden_layers: int, seed: int) -> list[np.ndarray]:
    """Starting [W0, b0, W1, b1, ...] for the MLP, drawn from numpy with this seed.

    He-uniform weights for the ReLU layers and Glorot-uniform for the sigmoid output, biases
    zero: unlike the lab's uniform [0, 1) start, units begin alive and outputs near 0.5.
    """
    rng = np.random.default_rng(seed)
    widths = [inputs] + [HIDDEN_UNITS] * hidden_layers + [3]
    weights: list[np.ndarray] = []
    for layer, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        is_output = layer == hidden_layers
        limit = math.sqrt(6 / (fan_in + fan_out)) if is_output else math.sqrt(6 / fan_in)
        weights.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
        weights.append(np.zeros(fan_out, dtype=np.float32))
    return weights


def parameter_count(inputs: int, hidden_layers: int) -> int:
    """Number of trainable numbers (weights and biases) in the MLP."""
    widths = [inputs] + [HIDDEN_UNITS] * hidden_layers + [3]
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(widths[:-1], widths[1:]))
