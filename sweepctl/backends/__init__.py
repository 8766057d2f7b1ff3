"""Backends: where a sweep's trials live (`base.Backend` is their protocol).

`open_backend` is the one place that turns a backend's name into a backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sweepctl.backends.base import Backend
    from sweepctl.core.spec import Spec

__all__ = ["open_backend"]


def open_backend(name: str, *, context: str | None = None, namespace: str | None = None,
                 state_dir: Path | None = None, spec: Spec | None = None, timeout: float | None = None) -> Backend:
    """The named backend; Kubernetes is configured like kubectl, the local one from the spec (if any).

    `timeout` is the command's deadline for the API server (--timeout; None: the default)."""
    from sweepctl.core.diagnostics import SweepctlError

    if name == "kubernetes":
        from sweepctl.backends.kubernetes import Cluster, KubernetesBackend

        return KubernetesBackend(cluster=Cluster(context=context, timeout=timeout), namespace=namespace,
                                 kind=spec.kind if spec is not None else None)
    if name == "local":
        from sweepctl.backends.local import LocalBackend
        from sweepctl.workspace import DEFAULT_STATE_DIR

        if spec is None:  # reading a sweep, not running one: no parallelism needed
            return LocalBackend(state_dir=state_dir or DEFAULT_STATE_DIR)
        return LocalBackend(state_dir=state_dir or DEFAULT_STATE_DIR, parallelism=spec.parallelism,
                            threads_per_trial=spec.threads_per_trial)
    raise SweepctlError(f"unknown backend {name!r}", hint="use --backend local or --backend kubernetes")
