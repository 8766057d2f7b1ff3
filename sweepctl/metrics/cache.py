"""What earlier commands read from a local sweep's event files, kept in the state folder.

One JSON file per set of asked-for metrics (`<folder>/events-<hash>.json`): for
each trial's event file (by its path in the trial's folder, `validation/events...`),
its size and mtime when read, how far it was read, and the points it held. `status` then opens only the files that changed, and
reads only what was appended to them; `status --watch` rereads a training
sweep for the price of its new records.

It is only a cache: a missing, unreadable or foreign file is ignored, and a
failed write changes nothing. Writes replace the file atomically, so two
commands never see half of one. Values are stored as packed float64s, which
keeps NaN and infinities exact.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from array import array
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import orjson

from sweepctl.metrics.events import FileRead
from sweepctl.metrics.ranking import Points

__all__ = ["cache_file", "load", "save"]

FORMAT = 3  # 2: points in step order; 3: files by path in the trial's folder (run subfolders)
Reads = Mapping[str, Mapping[str, FileRead]]  # trial name -> event file name -> read


def cache_file(folder: Path, tags: Collection[str]) -> Path:
    """Where the reads of these tags are kept."""
    key = hashlib.sha256("\n".join(sorted(tags)).encode()).hexdigest()[:12]
    return folder / f"events-{key}.json"


def _pack(values: array) -> str:
    return base64.b64encode(values.tobytes()).decode()


def _unpack(typecode: str, text: str) -> array:
    out = array(typecode)
    out.frombytes(binascii.a2b_base64(text))  # what b64decode does, without its Python-level checks
    return out


def load(path: Path, tags: Collection[str]) -> dict[str, dict[str, FileRead]]:
    """The reads kept in path, or none when it is missing, unreadable or for other tags."""
    try:
        doc = orjson.loads(path.read_bytes())
        if doc.get("format") != FORMAT or sorted(doc.get("tags", ())) != sorted(tags):
            return {}
        out: dict[str, dict[str, FileRead]] = {}
        for trial, files in doc["trials"].items():
            out[trial] = {}
            for name, (size, mtime_ns, offset, tail, error, points) in files.items():
                series = {tag: Points(_unpack("q", steps), _unpack("d", values))
                          for tag, (steps, values) in points.items()}
                out[trial][name] = FileRead(size=int(size), mtime_ns=int(mtime_ns), offset=int(offset),
                                            tail=binascii.a2b_base64(tail), points=series, error=error)
        return out
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def save(path: Path, tags: Collection[str], reads: Reads) -> None:
    """Keep these reads (those with an image are not kept); never fails."""
    trials: dict[str, Any] = {}
    for trial, files in reads.items():
        trials[trial] = {
            name: [r.size, r.mtime_ns, r.offset, base64.b64encode(r.tail).decode(), r.error,
                   {tag: [_pack(p.steps), _pack(p.values)] for tag, p in r.points.items()}]
            for name, r in files.items()
            if r.image is None
        }
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(orjson.dumps({"format": FORMAT, "tags": sorted(tags), "trials": trials}))
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
