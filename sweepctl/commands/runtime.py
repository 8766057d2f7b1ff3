"""`sweepctl runtime [SPEC]`: print sweepctl's ClusterTrainingRuntime for TrainJob trials, or create it.

Kubeflow Trainer v2 ships no TensorFlow runtime; a single-process trainer
needs only one pod. The runtime is cluster-scoped, so creating it is a cluster
administrator's step, apart from the sweep: `--apply`, or the printed YAML
through `kubectl apply -f -`.
"""

from __future__ import annotations

from pathlib import Path

from sweepctl.commands.common import read_spec
from sweepctl.core.manifests import training_runtime
from sweepctl.core.schema import DEFAULT_RUNTIME, SCHEMA
from sweepctl.views import View

__all__ = ["run"]


def run(view: View, *, spec_path: Path | None, apply: bool, context: str | None) -> int:
    if spec_path is not None:
        spec = read_spec(spec_path, max_trials=10**9)
        name, image = spec.runtime, spec.image
    else:
        name, image = DEFAULT_RUNTIME, SCHEMA["properties"]["image"]["default"]
    manifest = training_runtime(name, image=image)
    if not apply:
        view.manifest(manifest)
        return 0
    from sweepctl.backends.kubernetes import Cluster, KubernetesBackend

    backend = KubernetesBackend(cluster=Cluster(context=context), namespace=None)
    done = backend.apply_runtime(manifest)
    view.message(f"ClusterTrainingRuntime {name} {done} ({backend.cluster.server}).")
    return 0
