"""Each running trial is named in ps: its supervisor and its trainer carry the sweep and trial names.

Trainers are forks of one fork server, so without a title every one would read
`python -P .../forkserver.py ROOT` and `pkill -f TRIAL` would find nothing.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from local_helpers import SLOW, cli, spec_text, start, state, wait_for


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


def test_ps_names_every_running_trial(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text("  learningRate: [0.001, 0.01]\n", name="titled", parallelism=2, args=SLOW))
    apply = start(tmp_path, "apply", spec, "--auto-approve")
    try:
        def trainers() -> dict[str, tuple[int, int]]:
            """trial -> (supervisor, trainer), once both run."""
            out = {}
            for name, record in state(tmp_path, "titled")["trials"].items():
                supervisor = (record.get("process") or {}).get("pid")
                children = _children(supervisor) if supervisor and Path(f"/proc/{supervisor}").exists() else []
                if children and "sweepctl-trainer" in _cmdline(children[0]):
                    out[name] = (supervisor, children[0])
            return out

        wait_for(lambda: len(trainers()) == 2, timeout=120)
        running = trainers()
        ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
        titles = {int(line.split(None, 1)[0]): line.split(None, 1)[1] for line in ps.splitlines()[1:]}
        for trial, (supervisor, trainer) in running.items():
            assert _cmdline(trainer) == f"sweepctl-trainer titled {trial}"
            assert _cmdline(supervisor) == f"sweepctl-supervisor titled {trial}"
            assert titles[trainer] == f"sweepctl-trainer titled {trial}"
            found = subprocess.run(["pgrep", "-f", trial], capture_output=True, text=True).stdout.split()
            assert sorted(map(int, found)) == sorted([supervisor, trainer])  # what pkill -f TRIAL would stop
    finally:
        res = cli(tmp_path, "destroy", spec, "--auto-approve")
        if apply.poll() is None:
            apply.send_signal(signal.SIGINT)
        apply.communicate(timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pair in running.values() for pid in pair), timeout=60)
