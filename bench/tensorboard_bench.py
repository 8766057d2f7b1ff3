"""Benchmark reading 1,000 trials' metric from a real TensorBoard: one request per trial, or one for all.

Run:  .venv/bin/python bench/tensorboard_bench.py [--trials 1000] [--repeat 3] [--events DIR]
The runs are status_bench.py's: the real trainer's event file (run once here,
or `--events DIR`) copied into one folder per trial. A real TensorBoard serves
them (`--load_fast true`: its Rust data server). Then, against it directly:
  - what `sweepctl status --tensorboard-url` does today: the scalars plugin's
    tag index, then one GET of `/data/plugin/scalars/scalars` per trial;
  - the tag index, then one POST of `/data/plugin/scalars/scalars_multirun`
    naming every trial (TensorBoard serves that route to POST only).
Through the API server's service proxy a POST needs the `create` verb on
`services/proxy`, which the README's Role does not grant; that path is not
measured here. Prints a Markdown table with the machine's load.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from plan_bench import print_table  # noqa: E402
from status_bench import arguments, make_sweep, trainer_run  # noqa: E402


def main() -> None:
    args = arguments(repeat=3)
    load_before = os.getloadavg()
    from sweepctl.metrics.tensorboard import read_runs, url_fetch

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = args.events or trainer_run(root)[0]
        make_sweep(root, source, args.trials)
        logs = root / ".sweepctl" / "sweeps" / "bench" / "logs"
        names = sorted(p.name for p in logs.iterdir())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}/"
        started = time.perf_counter()
        tensorboard = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logs), "--host", "127.0.0.1",
             "--port", str(port), "--load_fast", "true", "--reload_interval", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                assert tensorboard.poll() is None, "TensorBoard exited"
                try:
                    tags = json.loads(urllib.request.urlopen(url + "data/plugin/scalars/tags", timeout=5).read())
                    if sum("loss" in t for t in tags.values()) == len(names):
                        break
                except OSError:
                    pass
                time.sleep(0.5)
            rows.append((f"TensorBoard loading the {len(names):,} runs (from its start)",
                         f"{time.perf_counter() - started:.1f} s", ""))

            def per_trial() -> float:
                t0 = time.perf_counter()
                runs = read_runs(url_fetch(url), names, ["loss"], where=url)
                assert all(r.scalars["loss"].points for r in runs.values())
                return time.perf_counter() - t0

            def bulk() -> float:
                t0 = time.perf_counter()
                json.loads(urllib.request.urlopen(url + "data/plugin/scalars/tags", timeout=60).read())
                body = urllib.parse.urlencode([("tag", "loss"), *(("runs", n) for n in names)]).encode()
                data = json.loads(urllib.request.urlopen(url + "data/plugin/scalars/scalars_multirun", data=body,
                                                         timeout=60).read())
                assert len(data) == len(names) and all(data[n] for n in names)
                return time.perf_counter() - t0

            single = [per_trial() for _ in range(args.repeat)]
            many = [bulk() for _ in range(args.repeat)]
        finally:
            tensorboard.terminate()
            tensorboard.wait(timeout=30)
        floor = statistics.median(many)
        rows.append((f"one GET per trial (sweepctl today): {len(names) + 1:,} requests",
                     f"{min(single):.2f} s (median {statistics.median(single):.2f} s)",
                     f"{statistics.median(single) / floor:.1f}x the bulk request"))
        rows.append(("the tag index, then one POST scalars_multirun for every trial: 2 requests",
                     f"{min(many):.2f} s (median {floor:.2f} s)", "1"))
    print_table(rows, load_before)


if __name__ == "__main__":
    main()
