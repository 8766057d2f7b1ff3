"""Benchmark what the HParams summaries cost: writing them, and `sweepctl status` beside them (issue 20).

Run:  .venv/bin/python bench/hparams_bench.py [--trials 1000] [--repeat 5] [--events DIR]

The sweep is status_bench's: n finished local trials whose event files are
copies of one real trainer run (a short recipe is run once, or `--events DIR`).
It measures:
  - importing what writing takes (hparams_writer.prepare), in a fresh process,
    beside that process doing nothing (the floor);
  - writing every trial's session start and end and the experiment (sync),
    then a sync that finds everything written (as each later apply does);
  - `sweepctl status`, cold and warm, on the sweep without the summaries (the
    baseline) and with them, alternating, in the same run: status never reads
    them, so the two should not differ beyond noise.
Prints a Markdown table for bench/RESULTS.md, with the machine's load.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from status_bench import ROOT, SWEEPCTL, arguments, make_sweep, timed  # noqa: E402

from sweepctl.backends import hparams_writer  # noqa: E402


def short_trainer_run(work: Path) -> Path:
    logs = work / "trainer-run"
    subprocess.run([sys.executable, "-m", "model", "--log-dir", str(logs), "--epochs", "30", "--size", "24"],
                   check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return logs


def main() -> None:
    args = arguments(repeat=5)
    load_before = os.getloadavg()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = args.events or short_trainer_run(root)
        spec, files, _ = make_sweep(root, source, args.trials)
        sweep = root / ".sweepctl" / "sweeps" / "bench"
        state = json.loads((sweep / "state.json").read_text())["trials"]
        data = {"experiment": {"hparams": [{"name": "learningRate", "values": sorted({t["params"]["learningRate"]
                                                                                    for t in state.values()})},
                                           {"name": "hiddenLayers", "values": sorted({t["params"]["hiddenLayers"]
                                                                                    for t in state.values()})}],
                               "metrics": ["loss"]},
                "sessions": {name: {"params": t["params"], "state": "Succeeded"} for name, t in state.items()}}

        floor = [timed([sys.executable, "-c", "pass"], root)[0] for _ in range(args.repeat)]
        imports = [timed([sys.executable, "-c", "from sweepctl.backends import hparams_writer as w; w.prepare()"],
                         root)[0] for _ in range(args.repeat)]
        rows.append(("a fresh Python process (floor)", min(floor), statistics.median(floor)))
        rows.append(("the same, importing what writing takes (`prepare`)", min(imports), statistics.median(imports)))

        hparams_writer.prepare()
        started = time.perf_counter()
        written = hparams_writer.sync(sweep / "logs", data)
        first = time.perf_counter() - started
        assert written == 2 * len(state) + 1, written
        again = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            assert hparams_writer.sync(sweep / "logs", data) == 0
            again.append(time.perf_counter() - started)
        rows.append((f"write {len(state)} trials' start and end and the experiment (`sync`)", first, first))
        rows.append(("`sync` again: everything there already", min(again), statistics.median(again)))

        summaries = [p for f in files for p in (f.parent / hparams_writer.SESSION_START,
                                                f.parent / hparams_writer.SESSION_END)]
        aside = root / "aside"
        aside.mkdir()

        def without() -> None:
            for i, p in enumerate(summaries):
                if p.exists():
                    p.rename(aside / str(i))

        def with_them() -> None:
            for i, p in enumerate(summaries):
                if (aside / str(i)).exists():
                    (aside / str(i)).rename(p)

        cache = root / ".sweepctl" / "cache" / "bench"
        status = [*SWEEPCTL, "status", str(spec)]
        for label, cold in (("cold", True), ("warm", False)):
            times: dict[str, list[float]] = {"without": [], "with": []}
            for _ in range(args.repeat):
                for kind, arrange in (("without", without), ("with", with_them)):
                    arrange()
                    if cold:
                        shutil.rmtree(cache, ignore_errors=True)
                    else:
                        timed(status, root)
                    times[kind].append(timed(status, root)[0])
            rows.append((f"`sweepctl status`, {label}, without HParams summaries (baseline)", min(times["without"]),
                         statistics.median(times["without"])))
            rows.append((f"`sweepctl status`, {label}, with them", min(times["with"]), statistics.median(times["with"])))
    load_after = os.getloadavg()
    print(f"\n{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores, {args.trials} trials, repeat "
          f"{args.repeat}; load average {' '.join(f'{x:.2f}' for x in load_before)} before, "
          f"{' '.join(f'{x:.2f}' for x in load_after)} after\n")
    print("| what | best | median |\n|---|---|---|")
    for label, best, median in rows:
        print(f"| {label} | {best:.3f} s | {median:.3f} s |")


if __name__ == "__main__":
    main()
