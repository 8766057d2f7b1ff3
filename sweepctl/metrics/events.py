"""Reading a trial's TensorBoard event files here, with TensorBoard's own reader.

TensorFlow is never imported: importing it takes seconds, and a status of a
thousand trials must take less. Reading is spread over processes when there
are many trials, since TensorBoard's reader without TensorFlow is pure Python
(it checks every record's CRC byte by byte).
"""

from __future__ import annotations

import os
import struct
import sys
import types
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweepctl.metrics.ranking import Series

__all__ = ["RunData", "read_run", "read_runs", "event_files"]

# TensorBoard's lazy `tf` (tensorboard.compat.tf) imports TensorFlow when it is
# installed, unless a module named tensorboard.compat.notf can be imported: that
# is TensorBoard's own no-TensorFlow switch (its build's
# //tensorboard/compat:no_tensorflow target). Registering it makes the reader
# use TensorBoard's TensorFlow stub. Must run before tensorboard.compat.tf is
# first used, hence before the event_processing import.
sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))

PARALLEL_FROM = 64  # below this many trials, one process reads faster than starting workers
_FLOAT_DTYPES = {1: "float_val", 2: "double_val", 19: "half_val"}  # DT_FLOAT, DT_DOUBLE, DT_HALF


@dataclass(frozen=True, kw_only=True)
class RunData:
    """What one trial's logs hold: the asked-for scalars, and its latest image if asked for."""

    scalars: Mapping[str, Series] = field(default_factory=dict)
    image: bytes | None = None
    error: str | None = None


def event_files(log_dir: Path) -> list[Path]:
    """The run's event files, oldest first (their names start with a timestamp)."""
    return sorted(log_dir.glob("events.out.tfevents.*"))


def _scalar(value: Any) -> float | None:
    """A scalar summary's value, whether written as simple_value (TF1) or as a tensor (TF2)."""
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind != "tensor":
        return None
    tensor = value.tensor
    repeated = _FLOAT_DTYPES.get(tensor.dtype)
    if repeated == "float_val" and len(tensor.float_val) == 1:  # the common case, without numpy
        return float(tensor.float_val[0])
    if repeated == "double_val" and len(tensor.double_val) == 1:
        return float(tensor.double_val[0])
    if tensor.dtype == 1 and len(tensor.tensor_content) == 4:
        return float(struct.unpack("<f", tensor.tensor_content)[0])
    from tensorboard.util import tensor_util

    array = tensor_util.make_ndarray(tensor)
    return float(array.reshape(-1)[0]) if array.size == 1 and array.dtype.kind in "fiu" else None


def _image(value: Any) -> bytes | None:
    """The encoded picture of an image summary: TF2 writes [width, height, png, ...] strings."""
    kind = value.WhichOneof("value")
    if kind == "image":
        return bytes(value.image.encoded_image_string)
    if kind == "tensor" and len(value.tensor.string_val) >= 3:
        return bytes(value.tensor.string_val[2])
    return None


def read_run(log_dir: Path, tags: Collection[str], *, image_tag: str | None = None) -> RunData:
    """Every point of `tags` in the run's event files; never raises for bad data.

    Missing, empty or corrupt files give empty series with an error saying why;
    a truncated last record (a trainer still writing) ends the file quietly, as
    in TensorBoard. Points are ordered by step; a step written twice (a
    restarted trial) keeps the later value.
    """
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    files = event_files(log_dir)
    if not files:
        error = "no logs" if not log_dir.is_dir() else "no event files"
        return RunData(scalars={t: Series(error=error) for t in tags}, error=error)
    points: dict[str, dict[int, float]] = {t: {} for t in tags}
    image: tuple[int, bytes] | None = None
    problems: list[str] = []
    for path in files:
        try:
            for event in LegacyEventFileLoader(str(path)).Load():
                if not event.HasField("summary"):
                    continue
                for value in event.summary.value:
                    if value.tag in points:
                        number = _scalar(value)
                        if number is not None:
                            points[value.tag][event.step] = number
                    elif value.tag == image_tag and (image is None or event.step >= image[0]):
                        picture = _image(value)
                        if picture is not None:
                            image = (event.step, picture)
        except Exception as err:  # noqa: BLE001 - a corrupt file is reported, never fatal
            problems.append(f"{path.name}: {err.__class__.__name__}: {err}")
    error = "; ".join(problems) or None
    scalars = {
        tag: Series(points=tuple(sorted(p.items())), error=None if p else error or f"no '{tag}' values")
        for tag, p in points.items()
    }
    return RunData(scalars=scalars, image=image[1] if image else None, error=error)


def _read_chunk(jobs: list[tuple[str, str]], tags: tuple[str, ...], image_tag: str | None) -> dict[str, RunData]:
    return {name: read_run(Path(path), tags, image_tag=image_tag) for name, path in jobs}


def read_runs(log_dirs: Mapping[str, Path], tags: Collection[str], *,
              image_tag: str | None = None) -> dict[str, RunData]:
    """read_run for many trials (name -> log folder), over every CPU core when there are many."""
    tags = tuple(tags)
    jobs = [(name, str(path)) for name, path in log_dirs.items()]
    workers = min(os.cpu_count() or 1, len(jobs) // PARALLEL_FROM)
    if workers < 2:
        return _read_chunk(jobs, tags, image_tag)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = [jobs[i::workers * 4] for i in range(workers * 4)]
    out: dict[str, RunData] = {}
    # fork: the workers start with TensorBoard already imported.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        for part in pool.map(_read_chunk, chunks, [tags] * len(chunks), [image_tag] * len(chunks)):
            out.update(part)
    return {name: out[name] for name, _ in jobs}
