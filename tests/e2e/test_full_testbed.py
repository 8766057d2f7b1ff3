"""`up --full` and `down` leave the host as they found it, and only one full cluster runs at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "tests" / "cluster"
sys.path.insert(0, str(CLUSTER))
import node  # noqa: E402


def host_state() -> dict:
    """What a user's machine would show of the test bed: sysctls, links, mounts, cgroups, processes."""
    return {
        "sysctls": {k: Path("/proc/sys", k).read_text().strip() for k in node.SYSCTLS},
        "links": sorted(Path("/sys/class/net").iterdir()),
        "mounts": sorted(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()),
        "cgroups": [str(d) for d in node._cgroup_dirs() if d.exists()],
        "dirs": {str(d): d.exists() for d in node.FOREIGN_DIRS},
        "host_record": node.HOST_RECORD.exists(),
    }


def processes_under(folder: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(folder) in cmdline:
                found.append(cmdline)
    return found


def up(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CLUSTER / "up"), "--full", "--dir", str(run_dir)],
                          capture_output=True, text=True)


def down(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CLUSTER / "down"), "--dir", str(run_dir)],
                          capture_output=True, text=True)


def test_up_full_then_down_leaves_nothing_behind(tmp_path: Path) -> None:
    reason = node.why_not_here()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the full test cluster cannot run here: {reason}")
        pytest.skip(f"the full test cluster cannot run here: {reason}; run the tests as root")
    before = host_state()
    run_dir = tmp_path / "run"
    try:
        started = up(run_dir)
        assert started.returncode == 0, started.stderr[-3000:]
        kubeconfig = Path(started.stdout.strip().splitlines()[-1])
        kubectl = [str(run_dir / "bin" / "kubectl"), "--kubeconfig", str(kubeconfig)]
        nodes = json.loads(subprocess.run([*kubectl, "get", "nodes", "-o", "json"], capture_output=True,
                                          text=True, check=True).stdout)["items"]
        assert sorted(n["metadata"]["name"] for n in nodes) == sorted([node.NODE, *node.GPU_NODES])
        gpus = {n["metadata"]["name"]: n["status"]["allocatable"].get("nvidia.com/gpu") for n in nodes}
        assert gpus == {node.NODE: None, **{g: "1" for g in node.GPU_NODES}}
        assert processes_under(run_dir)

        # A second full cluster would share the bridge: refused, naming the first.
        other = up(tmp_path / "other")
        assert other.returncode == 1
        assert f"a full test cluster already runs from {run_dir}" in other.stderr
    finally:
        stopped = down(run_dir)
    assert stopped.returncode == 0, stopped.stderr
    assert processes_under(run_dir) == []
    assert not run_dir.exists()
    assert host_state() == before
    again = down(run_dir)  # safe to run twice
    assert again.returncode == 0 and "nothing to stop" in again.stderr
