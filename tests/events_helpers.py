"""Writing TensorBoard event files with known curves, as the trainer writes them (TF2 scalar tensors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_loss(log_dir: Path, points: list[tuple[int, float]], *, tag: str = "loss") -> None:
    """One event file in log_dir with one scalar point per (step, value)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    writer = EventFileWriter(str(log_dir))
    for step, value in points:
        v = summary_pb2.Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(np.float32(value)),
                                      metadata=metadata.create_summary_metadata("", ""))
        writer.add_event(event_pb2.Event(step=step, wall_time=1.0, summary=summary_pb2.Summary(value=[v])))
    writer.close()
