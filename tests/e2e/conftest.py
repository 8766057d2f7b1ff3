"""The end-to-end tier: a real one-node cluster (`tests/cluster/up --full`).

Every TFJob here is run by the real Kubeflow training operator, and every
TrainJob by Kubeflow Trainer v2 and JobSet, in a real pod on a real kubelet over
containerd, with the trainer image built from the repository's Dockerfile. The three GPU nodes are kwok's: they are the only
fake part, since this machine has no GPU, and pods placed on them never train.

The tier needs root. Where it cannot run it is skipped with the reason and how
to run it; in CI (CI=true) that is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "tests" / "cluster"
sys.path.insert(0, str(CLUSTER))
import node  # noqa: E402
from realcluster import FullCluster, Namespace  # noqa: E402

@pytest.fixture(scope="module")
def full_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullCluster]:
    """Started per module, so it runs only while its tests do."""
    reason = node.why_not_here()
    if reason:
        message = (f"the end-to-end tier needs a real one-node cluster and cannot run here: {reason}. "
                   "Run it as root on Linux: `sudo make test`, or start the cluster by hand with "
                   "`sudo tests/cluster/up --full` (see README, Development).")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    existing = os.environ.get("SWEEPCTL_TEST_FULL_KUBECONFIG")
    if existing:
        kubeconfig = Path(existing)
        yield FullCluster(kubeconfig, (kubeconfig.parent / "bin").resolve(), kubeconfig.parent)
        return
    run_dir = tmp_path_factory.mktemp("cluster") / "run"
    proc = subprocess.run([sys.executable, str(CLUSTER / "up"), "--full", "--dir", str(run_dir)],
                          stdout=subprocess.PIPE, text=True)
    try:
        if proc.returncode != 0:
            pytest.fail(f"tests/cluster/up --full failed with exit {proc.returncode}; see its output above")
        kubeconfig = Path(proc.stdout.strip().splitlines()[-1])
        yield FullCluster(kubeconfig, (run_dir / "bin").resolve(), run_dir)
    finally:
        subprocess.run([sys.executable, str(CLUSTER / "down"), "--dir", str(run_dir)], check=False)


@pytest.fixture
def e2e_namespace(full_cluster: FullCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Namespace]:
    """A fresh namespace with the log volume a sweep needs: a ReadWriteMany claim
    `sweepctl-logs`, bound to a host-path volume the trainer (uid 1000) can write."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    volume = full_cluster.run_dir / "volumes" / name
    objects = node.log_volume(name, volume)
    full_cluster.kubectl("create", "namespace", name)
    full_cluster.kubectl("create", "-f", "-", input="\n".join(json.dumps(o) for o in objects))
    monkeypatch.setenv("KUBECONFIG", str(full_cluster.kubeconfig))
    try:
        yield Namespace(name, volume)
    finally:
        full_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
        full_cluster.kubectl("delete", "pv", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def runtime(full_cluster: FullCluster) -> Iterator[str]:
    """sweepctl's ClusterTrainingRuntime, created as the README says: `sweepctl runtime --apply`."""
    env = {**os.environ, "KUBECONFIG": str(full_cluster.kubeconfig)}
    proc = subprocess.run([sys.executable, "-m", "sweepctl", "runtime", "--apply"], env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "ClusterTrainingRuntime sweepctl-tensorflow created" in proc.stdout
    yield "sweepctl-tensorflow"
    full_cluster.kubectl("delete", "clustertrainingruntime", "sweepctl-tensorflow", check=False)
