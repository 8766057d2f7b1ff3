"""The event-file reader: TF1 and TF2 scalars, images, several files, bad data that never crashes,
the trainer's own files read as TensorBoard reads them, and resuming where the last read stopped."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sweepctl.metrics import cache, events
from sweepctl.metrics.events import read_run, read_runs

ROOT = Path(__file__).resolve().parents[2]


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
    runs, _ = read_runs({"tf2": tmp_path / "tf2", "tf1": tmp_path / "tf1"}, ["loss"], image_tag="reconstruction")
    assert runs["tf2"].scalars["loss"].points == ((0, 4.0), (10, 2.0))
    assert runs["tf2"].image == b"PNG-bytes"
    assert runs["tf1"].scalars["loss"].points == ((0, 3.0), (10, 1.5))


def test_a_restarted_trial_keeps_the_later_value_of_a_step(tmp_path: Path) -> None:
    write_events(tmp_path, [(0, 9.0), (10, 8.0)], suffix=".a")
    write_events(tmp_path, [(10, 5.0), (20, 4.0)], suffix=".b")
    assert read_run(tmp_path, ["loss"])[0].scalars["loss"].points == ((0, 9.0), (10, 5.0), (20, 4.0))


def test_missing_empty_corrupt_and_truncated_logs_give_no_metric(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "events.out.tfevents.1.host").write_bytes(b"\xff" * 100)
    good = write_events(tmp_path / "truncated", [(0, 2.0), (10, 1.0)])
    event_file = next(good.glob("events.out.tfevents.*"))
    event_file.write_bytes(event_file.read_bytes()[:-7])  # a trainer killed mid-write
    runs, _ = read_runs({n: tmp_path / n for n in ("missing", "empty", "corrupt", "truncated")}, ["loss"])
    assert runs["missing"].scalars["loss"].error == "no logs"
    assert runs["empty"].scalars["loss"].error == "no event files"
    assert runs["corrupt"].scalars["loss"].points == ()
    assert runs["truncated"].scalars["loss"].points == ((0, 2.0),)


def test_many_trials_are_read_in_worker_processes_with_the_same_result(tmp_path: Path, monkeypatch) -> None:
    dirs = {f"t{i}": write_events(tmp_path / f"t{i}", [(0, float(i))]) for i in range(130)}
    monkeypatch.setattr(events, "PARALLEL_BYTES", 100)  # as if each file were large
    runs, _ = read_runs(dirs, ["loss"])
    assert list(runs) == list(dirs)
    assert all(runs[f"t{i}"].scalars["loss"].points == ((0, float(i)),) for i in range(130))


@pytest.fixture(scope="module")
def trainer_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run of the real trainer: its event file has TF2 scalars and images as any run's has."""
    logs = tmp_path_factory.mktemp("trainer") / "run"
    subprocess.run([sys.executable, "-m", "model", "--size", "8", "--epochs", "20", "--batch-size", "16",
                    "--log-dir", str(logs)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return logs


def test_the_trainers_files_read_as_tensorboard_reads_them_without_decoding_a_proto(
        trainer_run: Path, monkeypatch) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    accumulator = EventAccumulator(str(trainer_run), size_guidance={"tensors": 0})
    accumulator.Reload()
    expected = {tag: tuple((e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag))
                for tag in ("loss", "psnr")}
    assert len(expected["loss"]) == 21

    def no_protos(*args: object) -> None:
        raise AssertionError("a record of the trainer's took the slow path")

    monkeypatch.setattr(events, "_decode", no_protos)  # the trainer's scalars never need TensorBoard's protos
    data, _ = read_run(trainer_run, ["loss", "psnr"])
    assert data.error is None
    assert {tag: data.scalars[tag].points for tag in expected} == expected


def test_only_records_that_can_hold_the_metric_are_checked(trainer_run: Path, tmp_path: Path) -> None:
    (source,) = events.event_files(trainer_run)
    data = bytearray(source.read_bytes())
    png = data.find(b"\x89PNG")
    data[png + 100] ^= 0xFF  # a flipped byte inside a picture: not what status reads
    (tmp_path / "picture").mkdir()
    (tmp_path / "picture" / source.name).write_bytes(data)
    assert read_run(tmp_path / "picture", ["loss"])[0].scalars["loss"].points == \
        read_run(trainer_run, ["loss"])[0].scalars["loss"].points
    data = bytearray(source.read_bytes())
    last_loss = data.rfind(b"\x0a\x04loss")
    data[last_loss + 14] ^= 0xFF  # the last loss value itself
    (tmp_path / "loss").mkdir()
    (tmp_path / "loss" / source.name).write_bytes(data)
    run = read_run(tmp_path / "loss", ["loss"])[0]
    assert run.error and "checksum mismatch" in run.error
    assert len(run.scalars["loss"].points) == 20  # those before the corrupt record


def append_records(target: Path, source: Path) -> None:
    """Append the records of source's event file to target's, as a trainer that goes on writing."""
    (a,) = events.event_files(target)
    (b,) = events.event_files(source)
    with a.open("ab") as out:
        out.write(b.read_bytes())


def test_a_grown_file_is_read_only_from_where_the_last_read_stopped(tmp_path: Path) -> None:
    write_events(tmp_path / "run", [(0, 9.0), (10, 8.0)])
    first, reads = read_run(tmp_path / "run", ["loss"])
    (path,) = events.event_files(tmp_path / "run")
    done = reads[path.name]
    assert done.offset == path.stat().st_size
    # Overwrite what was already read (keeping its last 4 bytes): a resumed read never looks at it.
    data = path.read_bytes()
    path.write_bytes(b"\x00" * (len(data) - 4) + data[-4:])
    write_events(tmp_path / "more", [(20, 7.0), (30, float("nan"))])
    append_records(tmp_path / "run", tmp_path / "more")
    second, reads = read_run(tmp_path / "run", ["loss"], previous=reads)
    assert second.error is None
    points = second.scalars["loss"].points
    assert points[:3] == ((0, 9.0), (10, 8.0), (20, 7.0)) and points[3][0] == 30 and math.isnan(points[3][1])
    assert reads[path.name].offset == path.stat().st_size


def test_the_signature_of_runs_changes_when_a_trainer_logs_and_only_then(tmp_path: Path) -> None:
    runs = [tmp_path / "a", tmp_path / "b", tmp_path / "missing"]
    write_events(runs[0], [(0, 9.0)])
    write_events(runs[1], [(0, 9.0)])
    before = events.signature(runs)
    assert len(before) == 2 and events.signature(runs) == before  # a missing folder has no files
    write_events(tmp_path / "more", [(10, 8.0)])
    append_records(runs[1], tmp_path / "more")
    assert events.signature(runs) != before


def test_a_file_with_its_size_and_mtime_unchanged_is_not_read_again(tmp_path: Path) -> None:
    write_events(tmp_path / "run", [(0, 9.0)])
    _, reads = read_run(tmp_path / "run", ["loss"])
    (path,) = events.event_files(tmp_path / "run")
    st = path.stat()
    path.write_bytes(b"\xff" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert read_run(tmp_path / "run", ["loss"], previous=reads)[0].scalars["loss"].points == ((0, 9.0),)
    path.touch()  # a new mtime: read again, and the garbage is seen
    assert read_run(tmp_path / "run", ["loss"], previous=reads)[0].scalars["loss"].points == ()


def test_a_rewritten_file_is_read_from_the_start(tmp_path: Path) -> None:
    write_events(tmp_path / "run", [(0, 9.0)])
    _, reads = read_run(tmp_path / "run", ["loss"])
    (path,) = events.event_files(tmp_path / "run")
    write_events(tmp_path / "other", [(5, 1.0), (6, 2.0), (7, 3.0)])
    (other,) = events.event_files(tmp_path / "other")
    path.write_bytes(other.read_bytes())  # longer, and different where the last read stopped
    assert read_run(tmp_path / "run", ["loss"], previous=reads)[0].scalars["loss"].points == \
        ((5, 1.0), (6, 2.0), (7, 3.0))


def test_the_cache_keeps_reads_exactly_and_ignores_what_it_cannot_use(tmp_path: Path) -> None:
    write_events(tmp_path / "a", [(0, 9.0), (-1, float("nan")), (2**40, float("inf"))])
    runs, reads = read_runs({"a": tmp_path / "a", "gone": tmp_path / "gone"}, ["loss"])
    where = cache.cache_file(tmp_path / "cache", ["loss"])
    cache.save(where, ["loss"], reads)
    kept = cache.load(where, ["loss"])
    assert list(kept) == ["a", "gone"] and kept["gone"] == {}
    ((name, read),) = kept["a"].items()
    assert (read.size, read.mtime_ns, read.offset, read.tail) == (reads["a"][name].size, reads["a"][name].mtime_ns,
                                                                  reads["a"][name].offset, reads["a"][name].tail)
    assert repr(read.points) == repr(reads["a"][name].points)  # NaN and infinities, exactly
    again, _ = read_runs({"a": tmp_path / "a"}, ["loss"], previous=kept)
    assert repr(again["a"]) == repr(runs["a"])
    assert cache.load(where, ["psnr"]) == {}  # kept for other tags
    where.write_bytes(b'{"format": 1, "tags": ["loss"], "trials": {"a": {"f": [1, 2]}}}')
    assert cache.load(where, ["loss"]) == {}
    where.write_bytes(b"\x00not json")
    assert cache.load(where, ["loss"]) == {}
