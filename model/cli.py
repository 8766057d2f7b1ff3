"""Command line of the tf-paint trainer: flags, their checks, and one-line errors.

Everything here runs before TensorFlow is imported, so --help and bad input answer at once.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from model.data import PictureError, draw_default_picture, load_picture
from model.network import ENCODINGS

PROG = "python -m model"
MAX_SIZE = 2048
MAX_SEED = 2**31 - 1


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are a single line on stderr (no usage dump), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(low: float, low_inclusive: bool):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        bound_ok = value >= low if low_inclusive else value > low
        if not math.isfinite(value) or not bound_ok:
            raise argparse.ArgumentTypeError(f"must be a finite number {'>=' if low_inclusive else '>'} {low:g}, got {text!r}")
        return value

    return parse


def _integer(low: int, high: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be {span}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The trainer's flags; the first three mean what they meant in the lab."""
    parser = _Parser(
        prog=PROG,
        description="tf-paint: learn (row, col) -> RGB for one picture with an MLP of "
        "N hidden layers x 20 ReLU units; write TensorBoard summaries, reconstruction.png "
        "and metrics.json to --log-dir, and print Katib-style 'loss=' lines.",
    )
    parser.add_argument("--learning-rate", type=_number(0, False), default=0.01,
                        help="Adam's peak learning rate, decayed to 0 by a cosine (default: %(default)s)")
    parser.add_argument("--hidden-layers", type=_integer(1, 100), default=6,
                        help="number of fully connected hidden layers of 20 ReLU units (default: %(default)s)")
    parser.add_argument("--log-dir", default="logs",
                        help="folder for event files, reconstruction.png and metrics.json (default: %(default)s)")
    parser.add_argument("--image", metavar="PATH",
                        help="picture to repaint, any format Pillow reads (default: a built-in night scene)")
    parser.add_argument("--size", type=_integer(2, MAX_SIZE), default=100,
                        help="training resolution: the picture is resized to SIZE x SIZE (default: %(default)s)")
    parser.add_argument("--epochs", type=_integer(1), default=300,
                        help="passes over all pixels (default: %(default)s)")
    parser.add_argument("--batch-size", type=_integer(1), default=50,
                        help="pixels per Adam step (default: %(default)s, the lab's)")
    parser.add_argument("--seed", type=_integer(0, MAX_SEED), default=0,
                        help="seed for the initial weights and the shuffling (default: %(default)s)")
    parser.add_argument("--threads", type=_integer(0, 256), default=1,
                        help="TensorFlow intra- and inter-op threads, 0 lets TensorFlow choose (default: %(default)s)")
    parser.add_argument("--encoding", choices=ENCODINGS, default="fourier",
                        help="input features: sin/cos octaves of the coordinates, or the lab's "
                        "standardised (row, col) (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse flags, load or draw the picture, train. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size > args.size * args.size:
        parser.error(f"argument --batch-size: must be at most SIZE x SIZE = {args.size * args.size}, got {args.batch_size}")
    if args.image is None:
        picture = draw_default_picture(args.size)
    else:
        try:
            picture = load_picture(args.image, args.size)
        except PictureError as exc:
            parser.error(f"argument --image: {exc}")
    try:
        os.makedirs(args.log_dir, exist_ok=True)
    except OSError as exc:
        parser.error(f"argument --log-dir: cannot create {args.log_dir!r}: {exc.strerror}")

    from model.train import Config, train

    config = Config(
        learning_rate=args.learning_rate, hidden_layers=args.hidden_layers, log_dir=args.log_dir,
        image=args.image, size=args.size, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, threads=args.threads, encoding=args.encoding)
    try:
        train(config, picture)
    except OSError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0
