"""The examples of examples/ as the tests run them, and what a user would read of their trials.

Each example's objective is read here independently of sweepctl: event files by
TensorBoard's own EventAccumulator, stdout lines by a regular expression of the
README's format. The tests compare what `status` says with these numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
_LOSS_LINE = re.compile(r"^loss=([-+0-9.eE]+|nan|inf)$", re.M)


@dataclass(frozen=True)
class Example:
    name: str
    sweep: str
    run: str  # the run folder under the trial's log folder that holds the objective ("" for the folder itself)
    tag: str
    goal: str
    stdout: bool = False

    @property
    def folder(self) -> Path:
        return EXAMPLES / self.name

    @property
    def spec(self) -> Path:
        return self.folder / "spec.yaml"

    def series(self, *, log_dir: Path | None = None, output: str | None = None) -> list[tuple[int, float]]:
        """The objective's (step, value) points: from a trial's log folder, or from its output."""
        if self.stdout:
            assert output is not None
            return [(i, float(v)) for i, v in enumerate(_LOSS_LINE.findall(output), 1)]
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.util import tensor_util

        assert log_dir is not None
        acc = EventAccumulator(str(log_dir / self.run), size_guidance={"tensors": 0, "scalars": 0})
        acc.Reload()
        tags = acc.Tags()
        if self.tag in tags["tensors"]:  # TF2 summaries (Keras): rank-0 tensors
            return [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(self.tag)]
        assert self.tag in tags["scalars"], f"no {self.tag} in {log_dir / self.run}: {tags}"
        return [(e.step, e.value) for e in acc.Scalars(self.tag)]  # simple_value (tensorboardX)

    def best(self, points: list[tuple[int, float]]) -> float:
        values = [v for _, v in points if not math.isnan(v)]
        assert values, "a series with no value"
        return max(values) if self.goal == "maximize" else min(values)


KERAS = Example("keras", "keras-rings", "validation", "epoch_accuracy", "maximize")
TENSORBOARDX = Example("tensorboardx", "tbx-sine", "", "loss/val", "minimize")
STDOUT = Example("stdout", "stdout-line", "", "loss", "minimize", stdout=True)
ALL = (KERAS, TENSORBOARDX, STDOUT)


def example_files() -> dict[str, bytes]:
    """Every file under examples/: running an example must leave its folder as it was."""
    return {str(p.relative_to(EXAMPLES)): p.read_bytes() for p in sorted(EXAMPLES.rglob("*")) if p.is_file()}
