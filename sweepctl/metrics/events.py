"""Reading a trial's TensorBoard event files here, fast, without TensorFlow.

An event file is a sequence of TFRecords: an 8-byte length, a masked CRC32C of
the length, the payload (one serialized `Event`), a masked CRC32C of the
payload. The trainer's files are mostly pictures (11 images make 85% of the
bytes) and scalars that status does not ask for, so the reader walks the
record headers (each length is checked) and looks only inside records that
can hold an asked-for tag: those containing the tag's encoded bytes. Only
those have their payload's checksum verified (compiled CRC32C) and are
decoded; the shapes TensorFlow 2 writes a float32 scalar in, and a simple_value
scalar (TF1, PyTorch, tensorboardX, Lightning), are read by comparing bytes,
anything else by TensorBoard's own protos.

A trial's runs are its folder and any subfolder holding event files (Keras's
`train/` and `validation/`, Lightning's `lightning_logs/version_N/`); a metric
name addresses one run and one tag (`sweepctl.metrics.names`). Only the runs
the asked-for metrics name are listed and read: one directory listing per
run, as for the flat layout.

`read_file` can resume from a `FileRead`: how far a file was read and what it
held. An unchanged file (same size and mtime) is not opened; a grown one is
read from where the last read stopped. `sweepctl.metrics.cache` keeps those
under the state folder between commands.
"""

from __future__ import annotations

import os
import struct
import sys
import types
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from google_crc32c import value as _crc32c

from sweepctl.metrics.names import found_note, split
from sweepctl.metrics.ranking import Points, Series

__all__ = ["RunData", "FileRead", "read_file", "read_run", "read_runs", "locate", "runs_under", "scalar_tags",
           "event_files", "masked_crc32c", "frame", "payloads", "signature"]

# TensorBoard's lazy `tf` (tensorboard.compat.tf) imports TensorFlow when it is
# installed, unless a module named tensorboard.compat.notf can be imported: that
# is TensorBoard's own no-TensorFlow switch (its build's
# //tensorboard/compat:no_tensorflow target). Registering it makes TensorBoard
# use its TensorFlow stub when its protos are needed (unusual records, images).
sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))

PARALLEL_BYTES = 32 << 20  # below this much to read, one process is faster than starting workers
_HEADER = struct.Struct("<QI")
_CRC = struct.Struct("<I")
_FLOAT = struct.Struct("<f")
_FLOAT_DTYPES = {1: "float_val", 2: "double_val", 19: "half_val"}  # DT_FLOAT, DT_DOUBLE, DT_HALF


def masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum: CRC32C (compiled, from google-crc32c), rotated and offset."""
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(payload: bytes) -> bytes:
    """One TFRecord, as TensorFlow writes it: length, its checksum, the payload, its checksum."""
    header = struct.pack("<Q", len(payload))
    return header + _CRC.pack(masked_crc32c(header)) + payload + _CRC.pack(masked_crc32c(payload))


def payloads(data: bytes) -> list[bytes]:
    """The payloads of an event file's whole records, unchecked (for tools that rewrite event files)."""
    out, pos = [], 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        if pos + 16 + length > len(data):
            break
        out.append(data[pos + 12:pos + 12 + length])
        pos += 16 + length
    return out


@dataclass(frozen=True, kw_only=True)
class RunData:
    """What one trial's logs hold: the asked-for scalars, and its latest image if asked for."""

    scalars: Mapping[str, Series] = field(default_factory=dict)
    image: bytes | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class FileRead:
    """One event file read up to `offset` (the end of its last whole record).

    `tail` is the 4 bytes before `offset` (the last record's checksum): a file
    whose bytes there changed was rewritten, not appended to, and is read
    again from the start. `error` says why reading stopped early (a corrupt
    record); a truncated last record is no error (a trainer still writing).
    """

    size: int
    mtime_ns: int
    offset: int = 0
    tail: bytes = b""
    points: Mapping[str, Points] = field(default_factory=dict)  # tag -> its points in this file, by step
    image: tuple[int, bytes] | None = None
    error: str | None = None


def event_files(log_dir: Path) -> list[Path]:
    """The run's event files, oldest first (their names start with a timestamp)."""
    return [log_dir / name for name, _, _ in _listing(log_dir)]


def signature(log_dirs: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime_ns) of every event file under these trial folders: it changes whenever a trainer logs.

    A few stat calls per run folder, no reading: cheap enough to ask several times a second.
    """
    return tuple((f"{log_dir}/{run}/{name}", size, mtime) for log_dir in log_dirs
                 for run in sorted(runs_under(log_dir)) for name, size, mtime in _listing(log_dir / run))


def runs_under(log_dir: Path) -> list[str]:
    """Every run under a trial's log folder: the folders holding event files, by path ("" is the folder itself)."""
    out = []
    for folder, _, files in os.walk(log_dir):
        if any(f.startswith("events.out.tfevents.") for f in files):
            rel = os.path.relpath(folder, log_dir)
            out.append("" if rel == "." else rel.replace(os.sep, "/"))
    return sorted(out)


def _listing(log_dir: Path | str) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of the run's event files, by name; a file that vanishes meanwhile is left out."""
    out = []
    try:
        with os.scandir(log_dir) as entries:
            for entry in entries:
                if entry.name.startswith("events.out.tfevents."):
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    out.append((entry.name, st.st_size, st.st_mtime_ns))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(out)


@lru_cache(maxsize=64)
def _needle(tag: str) -> bytes:
    """How a Summary.Value's tag field starts: field 1, length-delimited, then the tag."""
    raw = tag.encode()
    return b"\x0a" + _varint(len(raw)) + raw


# How TensorFlow 2 writes a float32 scalar summary, after the Event's wall_time
# and step: one Summary holding one Value with the tag, a rank-0 DT_FLOAT tensor
# whose 4 bytes are in tensor_content, and the scalars plugin's metadata.
_TF2_TENSOR = b"\x42\x0a\x08\x01\x12\x00\x22\x04"  # tensor { dtype: DT_FLOAT tensor_shape {} tensor_content: 4 bytes }
_TF2_METADATA = b"\x4a\x0b\x0a\x09\x0a\x07scalars"  # metadata { plugin_data { plugin_name: "scalars" } }


@lru_cache(maxsize=64)
def _tf2_prefix(tag: str) -> bytes:
    """The bytes of such an Event from its summary field to its float."""
    value = _needle(tag) + _TF2_TENSOR
    value_length = len(value) + 4 + len(_TF2_METADATA)
    inner = b"\x0a" + _varint(value_length)
    return b"\x2a" + _varint(len(inner) + value_length) + inner + value


@lru_cache(maxsize=64)
def _simple_prefix(tag: str) -> bytes:
    """The bytes of a simple_value scalar Event (TF1, PyTorch, tensorboardX, Lightning) from its summary
    field to its float: one Summary holding one Value with the tag and simple_value (field 2, fixed32)."""
    value = _needle(tag) + b"\x15"
    inner = b"\x0a" + _varint(len(value) + 4)
    return b"\x2a" + _varint(len(inner) + len(value) + 4) + inner + value


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _fast_scalar(buf: bytes, start: int, stop: int, prefix: bytes, simple: bytes) -> tuple[int, float] | None:
    """(step, value) of an Event laid out exactly as TensorFlow 2 writes a float32 scalar, or as a
    simple_value scalar is written (`simple`), else None: anything else is decoded by the protos."""
    if buf[start] != 0x09:  # wall_time
        return None
    pos, step = start + 9, 0
    if buf[pos] == 0x10:  # step, a varint
        shift = 0
        while True:
            pos += 1
            byte = buf[pos]
            step |= (byte & 0x7F) << shift
            if byte < 0x80 or shift > 63:
                break
            shift += 7
        pos += 1
        if step >= 1 << 63:
            step -= 1 << 64  # int64, as protobuf encodes a negative one
    at = pos + len(prefix)
    if at + 4 + len(_TF2_METADATA) == stop and buf.startswith(prefix, pos) and buf.startswith(_TF2_METADATA, at + 4):
        return step, _FLOAT.unpack_from(buf, at)[0]
    at = pos + len(simple)
    if at + 4 == stop and buf.startswith(simple, pos):
        return step, _FLOAT.unpack_from(buf, at)[0]
    return None


def read_file(path: Path, tags: Collection[str], *, image_tag: str | None = None,
              previous: FileRead | None = None) -> FileRead:
    """Read an event file's `tags` scalars (and latest `image_tag` picture), resuming from `previous`.

    Raises OSError when the file cannot be read; bad data is an `error`, never
    an exception. A step written twice keeps the later value.
    """
    st = os.stat(path)
    if previous is not None and not all(t in previous.points for t in tags):
        previous = None  # read for other tags (the metric's run changed): read again
    if previous is not None and (previous.size, previous.mtime_ns) == (st.st_size, st.st_mtime_ns):
        return previous
    with open(path, "rb") as f:
        start = 0
        if previous is not None and previous.error is None and previous.offset <= st.st_size:
            f.seek(previous.offset - len(previous.tail))
            if f.read(len(previous.tail)) == previous.tail:
                start = previous.offset
            else:
                f.seek(0)
        buf = f.read()
    resumed = previous if start else None
    points = {t: dict(resumed.points.get(t, ())) if resumed else {} for t in tags}
    image = resumed.image if resumed else None
    pos, image, error = _scan(buf, start, points, image_tag, image, path.name)
    end = pos - start
    tail = buf[max(0, end - 4):end] if end else (resumed.tail if resumed else b"")
    return FileRead(size=start + len(buf), mtime_ns=st.st_mtime_ns, offset=pos, tail=tail,
                    points={t: Points.of(sorted(p.items())) for t, p in points.items()}, image=image, error=error)


def _scan(buf: bytes, base: int, points: dict[str, dict[int, float]], image_tag: str | None,
          image: tuple[int, bytes] | None, name: str) -> tuple[int, tuple[int, bytes] | None, str | None]:
    """Walk the records of buf (which starts at file offset base); returns where it stopped."""
    needles = [(_needle(t), _tf2_prefix(t), _simple_prefix(t), points[t]) for t in points]
    image_needle = _needle(image_tag) if image_tag else None
    find = buf.find
    unpack = _HEADER.unpack_from
    pos, end = 0, len(buf)
    while pos + 12 <= end:
        length, length_crc = unpack(buf, pos)
        crc = _crc32c(buf[pos:pos + 8])  # masked_crc32c, inlined: this runs for every record
        if (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF != length_crc:
            return base + pos, image, f"{name}: corrupt record header at byte {base + pos}"
        start, stop = pos + 12, pos + 12 + length
        if stop + 4 > end:
            break  # the last record is not all there yet: a trainer still writing
        checked = False
        for needle, prefix, simple, series in needles:
            if find(needle, start, stop) < 0:
                continue
            if not checked:
                if masked_crc32c(buf[start:stop]) != _CRC.unpack_from(buf, stop)[0]:
                    return base + pos, image, f"{name}: corrupt record at byte {base + pos} (checksum mismatch)"
                checked = True
            try:
                point = _fast_scalar(buf, start, stop, prefix, simple)
                if point is None:
                    _decode(buf[start:stop], points, None, None)
                    break  # every asked-for tag of this record is read
                series[point[0]] = point[1]
            except ModuleNotFoundError:
                raise  # TensorBoard's protos are missing: the machine's problem, not the record's
            except Exception as err:  # noqa: BLE001 - an undecodable record is reported, never fatal
                return base + pos, image, f"{name}: record at byte {base + pos}: {err.__class__.__name__}: {err}"
        if image_needle is not None and find(image_needle, start, stop) >= 0:
            if not checked and masked_crc32c(buf[start:stop]) != _CRC.unpack_from(buf, stop)[0]:
                return base + pos, image, f"{name}: corrupt record at byte {base + pos} (checksum mismatch)"
            try:
                image = _decode(buf[start:stop], {}, image_tag, image)
            except ModuleNotFoundError:
                raise
            except Exception as err:  # noqa: BLE001
                return base + pos, image, f"{name}: record at byte {base + pos}: {err.__class__.__name__}: {err}"
        pos = stop + 4
    return base + pos, image, None


def _decode(payload: bytes, points: dict[str, dict[int, float]], image_tag: str | None,
            image: tuple[int, bytes] | None) -> tuple[int, bytes] | None:
    """Any Event, with TensorBoard's protos: TF1 simple_value, other dtypes, several values, images."""
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event.FromString(payload)
    if not event.HasField("summary"):
        return image
    for value in event.summary.value:
        if value.tag in points:
            number = _scalar(value)
            if number is not None:
                points[value.tag][event.step] = number
        elif value.tag == image_tag and (image is None or event.step >= image[0]):
            picture = _image(value)
            if picture is not None:
                image = (event.step, picture)
    return image


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


def read_run(log_dir: Path, metrics: Collection[str], *, image_tag: str | None = None,
             previous: Mapping[str, FileRead] | None = None) -> tuple[RunData, dict[str, FileRead]]:
    """Every point of `metrics` in a trial's event files, and how far each file was read.

    A metric is `<run subfolder>/<tag>` or a tag of the folder itself
    (`sweepctl.metrics.names`). `previous` maps files (by path in the trial's
    folder) to earlier reads to resume from. Missing, empty or corrupt files
    give empty series with an error saying why. Points are ordered by step; a
    step written twice (a restarted trial, whose new file sorts later) keeps
    the later value.
    """
    where, listings = locate(log_dir, metrics, image=image_tag is not None)
    return _read_files(log_dir, where, _files(listings), image_tag=image_tag, previous=previous or {})


def locate(log_dir: Path, metrics: Collection[str], *, image: bool = False
           ) -> tuple[dict[str, tuple[str, str]], dict[str, list[tuple[str, int, int]]]]:
    """Each metric's (run, tag) in this trial's folder, and the event files of the runs they name.

    One directory listing per run looked at: a plain tag lists the trial's
    folder only, `validation/epoch_loss` its `validation/` folder.
    """
    base = str(log_dir)
    listings: dict[str, list[tuple[str, int, int]]] = {}

    def listing(run: str) -> list[tuple[str, int, int]]:
        if run not in listings:
            listings[run] = _listing(f"{base}/{run}" if run else base)
        return listings[run]

    where = {m: split(m, lambda run: bool(listing(run))) if "/" in m else ("", m) for m in metrics}
    needed = {run for run, _ in where.values()} | ({""} if image else set())
    for run in needed:
        listing(run)
    return where, {run: listings[run] for run in sorted(needed)}


def _files(listings: Mapping[str, list[tuple[str, int, int]]]) -> list[tuple[str, str]]:
    """(key, run) of each listed event file; a file's key is its path in the trial's folder."""
    return [(f"{run}/{name}" if run else name, run) for run, files in listings.items() for name, _, _ in files]


def _read_files(log_dir: Path, where: Mapping[str, tuple[str, str]], files: list[tuple[str, str]], *,
                image_tag: str | None, previous: Mapping[str, FileRead]) -> tuple[RunData, dict[str, FileRead]]:
    if not files:
        error = "no logs" if not log_dir.is_dir() else "no event files"
        return RunData(scalars={m: Series(error=error) for m in where}, error=error), {}
    reads: dict[str, FileRead] = {}
    problems: list[str] = []
    for key, run in files:
        tags = [tag for r, tag in where.values() if r == run]
        try:
            reads[key] = read_file(log_dir / key, tags, image_tag=image_tag if run == "" else None,
                                   previous=previous.get(key))
        except OSError as err:
            problems.append(f"{key}: {err.strerror or err}")
    return run_data(reads, where, problems), reads


def run_data(reads: Mapping[str, FileRead], where: Mapping[str, tuple[str, str]],
             problems: list[str] | None = None) -> RunData:
    """One trial's series from its files' reads (by key), the later file of a run winning a step both hold."""
    problems = [*(problems or []), *(r.error for r in reads.values() if r.error)]
    error = "; ".join(problems) or None
    by_run: dict[str, list[FileRead]] = {}
    for key in sorted(reads):
        by_run.setdefault(key.rpartition("/")[0], []).append(reads[key])
    scalars = {}
    for metric, (run, tag) in where.items():
        files = by_run.get(run, ())
        if len(files) == 1:  # one event file, as most runs have: its points as they are
            points = files[0].points.get(tag) or Points.of(())
        else:
            merged: dict[int, float] = {}
            for read in files:
                merged.update(read.points.get(tag, ()))
            points = Points.of(sorted(merged.items()))
        scalars[metric] = Series(points=points, error=None if points else error or f"no '{metric}' values")
    images = [r.image for r in by_run.get("", ()) if r.image]
    image = max(images, key=lambda i: i[0])[1] if images else None
    return RunData(scalars=scalars, image=image, error=error)


def scalar_tags(log_dir: Path) -> dict[str, set[str]]:
    """Every run under a trial's folder and the scalar tags its event files hold: what a missing metric's note lists.

    Decodes every record (slow for big logs): only for a trial that ended
    without its objective.
    """
    from tensorboard.compat.proto import event_pb2

    found: dict[str, set[str]] = {}
    for run in runs_under(log_dir):
        tags = found.setdefault(run, set())
        for name, _, _ in _listing(log_dir / run):
            try:
                data = (log_dir / run / name).read_bytes()
            except OSError:
                continue
            for payload in payloads(data):
                try:
                    event = event_pb2.Event.FromString(payload)
                except Exception:  # noqa: BLE001 - a broken record lists nothing
                    continue
                for value in event.summary.value:
                    kind = value.WhichOneof("value")
                    if kind == "simple_value" or (kind == "tensor"
                                                  and value.metadata.plugin_data.plugin_name == "scalars"):
                        tags.add(value.tag)
    return {run: tags for run, tags in found.items() if tags}


Job = tuple[str, Path, dict[str, tuple[str, str]], list[tuple[str, str]], dict[str, FileRead]]
# trial, log folder, where each metric is, its event files (key, run), earlier reads


def _read_jobs(jobs: list[Job], image_tag: str | None) -> list[tuple[str, RunData, dict[str, FileRead]]]:
    return [(name, *_read_files(path, where, files, image_tag=image_tag, previous=earlier))
            for name, path, where, files, earlier in jobs]


def read_runs(log_dirs: Mapping[str, Path], metrics: Collection[str], *, image_tag: str | None = None,
              previous: Mapping[str, Mapping[str, FileRead]] | None = None, explain: Collection[str] = (),
              ) -> tuple[dict[str, RunData], dict[str, dict[str, FileRead]]]:
    """read_run for many trials (name -> log folder), over every CPU core when there is much to read.

    `previous` maps a trial's name to its files' earlier reads (by key); a
    trial whose files all have the size and mtime they had then is not read
    again. A trial named in `explain` (one that has ended) and lacking a
    metric gets a note saying which runs and tags its logs do hold. Returns
    the runs' data and their files' reads, by trial name.
    """
    metrics = tuple(metrics)
    previous = previous or {}
    results: list[tuple[str, RunData, dict[str, FileRead]]] = []
    jobs: list[Job] = []
    pending = 0
    for name, path in log_dirs.items():
        earlier = previous.get(name) or {}
        where, listings = locate(path, metrics, image=image_tag is not None)
        todo = 0
        files = 0
        for run, listing in listings.items():
            tags = [tag for r, tag in where.values() if r == run]
            for file, size, mtime_ns in listing:
                files += 1
                done = earlier.get(f"{run}/{file}" if run else file)
                if done is None or (done.size, done.mtime_ns) != (size, mtime_ns) \
                        or not all(t in done.points for t in tags):
                    todo += size - (done.offset if done is not None and done.offset <= size else 0) or 1
        if files and todo == 0:  # nothing changed since the last read
            reads = {key: earlier[key] for key, _ in _files(listings)}
            results.append((name, run_data(reads, where), reads))
            continue
        jobs.append((name, path, where, _files(listings), dict(earlier)))
        pending += todo
    workers = min(os.cpu_count() or 1, 1 + pending // PARALLEL_BYTES, len(jobs))
    if workers < 2:
        results += _read_jobs(jobs, image_tag)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        chunks = [jobs[i::workers] for i in range(workers)]
        # fork: the workers start with everything already imported.
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results += [r for part in pool.map(_read_jobs, chunks, [image_tag] * workers) for r in part]
    runs = {name: data for name, data, _ in results}
    reads = {name: r for name, _, r in results}
    for name in explain:
        data = runs.get(name)
        missing = [m for m, series in (data.scalars.items() if data else ()) if not series.points]
        if data is not None and missing:
            found = scalar_tags(log_dirs[name])
            runs[name] = replace(data, scalars={**data.scalars, **{m: Series(error=found_note(m, found))
                                                                   for m in missing}})
    return {name: runs[name] for name in log_dirs}, reads
