"""The event-file reader: TF1 and TF2 scalars, images, several files, and bad data that never crashes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sweepctl.metrics.events import read_run, read_runs


def write_events(log_dir: Path, points: list[tuple[int, float]], *, tf2: bool = True, image: bytes | None = None,
                 suffix: str = "") -> Path:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    writer = EventFileWriter(str(log_dir), filename_suffix=suffix)
    for step, value in points:
        if tf2:
            v = summary_pb2.Summary.Value(tag="loss", tensor=tensor_util.make_tensor_proto(np.float32(value)),
                                          metadata=metadata.create_summary_metadata("", ""))
        else:
            v = summary_pb2.Summary.Value(tag="loss", simple_value=value)
        writer.add_event(event_pb2.Event(step=step, wall_time=1.0, summary=summary_pb2.Summary(value=[v])))
    if image is not None:
        tensor = tensor_util.make_tensor_proto([b"8", b"8", image])
        writer.add_event(event_pb2.Event(step=points[-1][0], wall_time=1.0, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag="reconstruction", tensor=tensor)])))
    writer.close()
    return Path(writer.get_logdir())


def test_tf2_tensors_and_tf1_simple_values_both_count(tmp_path: Path) -> None:
    write_events(tmp_path / "tf2", [(0, 4.0), (10, 2.0)], image=b"PNG-bytes")
    write_events(tmp_path / "tf1", [(0, 3.0), (10, 1.5)], tf2=False)
    runs = read_runs({"tf2": tmp_path / "tf2", "tf1": tmp_path / "tf1"}, ["loss"], image_tag="reconstruction")
    assert runs["tf2"].scalars["loss"].points == ((0, 4.0), (10, 2.0))
    assert runs["tf2"].image == b"PNG-bytes"
    assert runs["tf1"].scalars["loss"].points == ((0, 3.0), (10, 1.5))


def test_a_restarted_trial_keeps_the_later_value_of_a_step(tmp_path: Path) -> None:
    write_events(tmp_path, [(0, 9.0), (10, 8.0)], suffix=".a")
    write_events(tmp_path, [(10, 5.0), (20, 4.0)], suffix=".b")
    assert read_run(tmp_path, ["loss"]).scalars["loss"].points == ((0, 9.0), (10, 5.0), (20, 4.0))


def test_missing_empty_corrupt_and_truncated_logs_give_no_metric(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "events.out.tfevents.1.host").write_bytes(b"\xff" * 100)
    good = write_events(tmp_path / "truncated", [(0, 2.0), (10, 1.0)])
    event_file = next(good.glob("events.out.tfevents.*"))
    event_file.write_bytes(event_file.read_bytes()[:-7])  # a trainer killed mid-write
    runs = read_runs({n: tmp_path / n for n in ("missing", "empty", "corrupt", "truncated")}, ["loss"])
    assert runs["missing"].scalars["loss"].error == "no logs"
    assert runs["empty"].scalars["loss"].error == "no event files"
    assert runs["corrupt"].scalars["loss"].points == ()
    assert runs["truncated"].scalars["loss"].points == ((0, 2.0),)


def test_many_trials_are_read_in_worker_processes_with_the_same_result(tmp_path: Path) -> None:
    dirs = {f"t{i}": write_events(tmp_path / f"t{i}", [(0, float(i))]) for i in range(130)}
    runs = read_runs(dirs, ["loss"])
    assert list(runs) == list(dirs)
    assert all(runs[f"t{i}"].scalars["loss"].points == ((0, float(i)),) for i in range(130))
