"""`status` keeps what it read of the event files under the sweep's folder, and rereads only what changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sweepctl.metrics import events

SWEEP = "paint"  # the sweep of conftest.py's `trained`


def status_json(sweepctl, *args: object) -> list[dict]:
    res = sweepctl("status", *args, "-o", "json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_status_reads_each_event_file_once_and_then_only_what_was_appended(sweepctl, sweep_here: Path) -> None:
    sweep_dir = sweep_here.parent / ".sweepctl" / "sweeps" / SWEEP
    first = status_json(sweepctl, sweep_here)
    (cache,) = (sweep_here.parent / ".sweepctl" / "cache" / SWEEP).glob("events-*.json")
    assert status_json(sweepctl, sweep_here) == first

    # The worst trial goes on training: its file grows by a record with a better loss at a later step.
    worst = first[-1]
    (event_file,) = (sweep_dir / "logs" / worst["name"]).glob("events.out.tfevents.*")
    best = next((sweep_dir / "logs" / first[0]["name"]).glob("events.out.tfevents.*")).read_bytes()
    record = next(r for r in reversed(events.payloads(best)) if b"\x0a\x04loss" in r)  # the best's last loss
    with event_file.open("ab") as out:
        out.write(events.frame(record))
    rows = {r["name"]: r for r in status_json(sweepctl, sweep_here)}
    assert rows[worst["name"]]["metric"] == first[0]["metric"]  # the appended value was read
    assert rows[worst["name"]]["rank"] in (1, 2)  # a tie with the best, broken by name

    # A broken cache is only a cache: the same answer, and it is rewritten.
    cache.write_text("{not json")
    assert {r["name"]: r["metric"] for r in status_json(sweepctl, sweep_here)} == \
        {n: r["metric"] for n, r in rows.items()}
    json.loads(cache.read_text())
    shutil.rmtree(cache.parent)
    assert status_json(sweepctl, sweep_here) == list(rows.values())

