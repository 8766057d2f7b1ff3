"""The report: a contact sheet of every trial's latest reconstruction, and their objective curves.

Tiles are in ranking order, best first; the best K get a thick gold border and
their rank, so the settings that paint well stand out at a glance. A trial
with no picture (a user's own trainer) gets a blank tile, but its curve is
drawn: the objective's series, from the same source status ranks by.
matplotlib is imported here only, with the Agg backend (no display needed).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.spec import Scalar
from sweepctl.metrics.events import RunData
from sweepctl.metrics.ranking import SweepStatus

__all__ = ["IMAGE_TAG", "Sheet", "Tile", "draw"]

IMAGE_TAG = "reconstruction"  # the trainer's image summary
_GOLD = "#e0a800"
_TOP_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


@dataclass(frozen=True, kw_only=True)
class Tile:
    """One trial on the sheet."""

    name: str
    params: Mapping[str, Scalar]
    metric: float | None
    top: bool
    has_image: bool
    has_curve: bool = False  # its objective's series is drawn below the tiles


@dataclass(frozen=True, kw_only=True)
class Sheet:
    """What was drawn, and where: the JSON view lists the tiles."""

    path: str
    tiles: tuple[Tile, ...]
    notes: tuple[str, ...] = ()  # the status's: how the metrics were read


def _label(params: Mapping[str, Scalar]) -> str:
    return "\n".join(f"{k}={v}" for k, v in params.items())


def draw(status: SweepStatus, runs: Mapping[str, RunData], out: Path) -> Sheet:
    """Draw the live trials of `status` (in its order) with their pictures and objective curves into `out` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    trials = status.live
    n = max(1, len(trials))
    cols = min(n, max(3, math.ceil(math.sqrt(n * 1.5))))
    rows = math.ceil(n / cols)
    tile_in = 2.2
    fig = plt.figure(figsize=(cols * tile_in, rows * (tile_in + 0.5) + 4.2), dpi=100)
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[tile_in + 0.5] * rows + [4.0], hspace=0.55, wspace=0.15)
    fig.suptitle(f"sweep {status.sweep}: {len(trials)} trials by {status.metric} ({status.goal}, "
                 f"strategy {status.strategy}); gold border: the best {status.keep}", fontsize=12, fontweight="bold")
    metric = status.metric
    curve_points = {}
    for t in trials:
        data = runs.get(t.name)
        series = data.scalars.get(metric) if data else None
        curve_points[t.name] = [(s, v) for s, v in (series.points if series else ()) if math.isfinite(v)]
    tiles = []
    for i, t in enumerate(trials):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        ax.set_xticks([])
        ax.set_yticks([])
        data = runs.get(t.name)
        picture = None
        if data is not None and data.image:
            try:
                picture = mpimg.imread(io.BytesIO(data.image), format="png")
            except Exception:  # noqa: BLE001 - a broken picture is shown as missing
                picture = None
        if picture is not None:
            ax.imshow(picture, interpolation="nearest")
        else:
            ax.set_facecolor("#eeeeee")
            ax.text(0.5, 0.5, "no picture", ha="center", va="center", fontsize=8, color="#777777",
                    transform=ax.transAxes)
        score = "no metric" if t.metric is None else f"{status.metric} {t.metric:.4g}"
        rank = f"#{t.rank} " if t.rank else ""
        ax.set_title(f"{rank}{_label(t.params)}\n{score}", fontsize=8,
                     fontweight="bold" if t.top else "normal", color="black" if t.top or t.rank else "#777777")
        for spine in ax.spines.values():
            spine.set_edgecolor(_GOLD if t.top else "#bbbbbb")
            spine.set_linewidth(6 if t.top else 1)
        tiles.append(Tile(name=t.name, params=t.params, metric=t.metric, top=t.top, has_image=picture is not None,
                          has_curve=bool(curve_points[t.name])))

    curves = fig.add_subplot(grid[rows, :])
    drawn: list[list[float]] = []
    for t in reversed(trials):  # the best drawn last, on top
        points = curve_points[t.name]
        if not points:
            continue
        steps, values = zip(*points)
        drawn.append(list(values))
        if t.top:
            curves.plot(steps, values, color=_TOP_COLOURS[((t.rank or 1) - 1) % len(_TOP_COLOURS)], linewidth=2.5,
                        zorder=3, label=f"#{t.rank} " + " ".join(f"{k}={v}" for k, v in t.params.items()))
        else:
            curves.plot(steps, values, color="#999999", linewidth=0.8, alpha=0.6, zorder=1)
    # Each on its own: a log scale needs positive values (a loss, not a score that can be 0 or negative);
    # the legend needs a top trial drawn. Neither waits on the other.
    log = bool(drawn) and all(v > 0 for values in drawn for v in values)
    if log:
        curves.set_yscale("log")
    handles, labels = curves.get_legend_handles_labels()
    if handles:
        curves.legend(handles[::-1], labels[::-1], fontsize=8, loc="upper right", title=f"best {status.keep}")
    if not drawn:
        curves.text(0.5, 0.5, f"no {metric} values yet", ha="center", va="center", transform=curves.transAxes)
    curves.set_xlabel("step")
    curves.set_ylabel(f"{metric} (log scale)" if log else metric)
    curves.set_title(f"{metric} of every trial (grey: the others)", fontsize=10)
    curves.grid(True, which="both", alpha=0.3)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png", bbox_inches="tight")
    except OSError as err:
        raise SweepctlError(f"cannot write {out}: {err}") from None
    finally:
        plt.close(fig)
    return Sheet(path=str(out), tiles=tuple(tiles), notes=status.notes)
