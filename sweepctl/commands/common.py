"""What every command needs: read a spec, build its backend, plan, save plans.

This is where the pure core meets the disk and the backends; the command
modules stay a few lines long.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepctl.backends.base import Backend
from sweepctl.core import planfile
from sweepctl.core.diagnostics import SpecError, SweepctlError, did_you_mean
from sweepctl.core.manifests import local_trial, tensorboard_deployment, tensorboard_service, tfjob
from sweepctl.core.plan import Plan, compute_plan, with_specs
from sweepctl.core.schema import DEFAULT_MAX_TRIALS
from sweepctl.core.spec import Spec, load_spec
from sweepctl.core.search import with_search
from sweepctl.core.trials import Trial, expand

__all__ = [
    "Access",
    "DEFAULT_PLAN",
    "LAST_SWEEP",
    "SweepTarget",
    "backend_for",
    "check_fresh",
    "find_sweep",
    "last_sweep",
    "require_sweep",
    "is_saved_plan",
    "make_plan",
    "read_plan",
    "read_spec",
    "remember_sweep",
    "save_plan",
    "spec_of",
]

DEFAULT_PLAN = Path(".sweepctl") / "plan.json"
# The sweep of the last apply or destroy, for commands run without a spec (status, prune).
LAST_SWEEP = Path(".sweepctl") / "last-sweep.json"


@dataclass(frozen=True, kw_only=True)
class Access:
    """How to reach the backend, from the command line: flags win over the spec."""

    backend: str | None = None
    context: str | None = None
    namespace: str | None = None
    state_dir: Path | None = None


def read_spec(path: Path, *, max_trials: int = DEFAULT_MAX_TRIALS) -> Spec:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file", hint="pass the path of a sweep spec (YAML)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read the spec: {err}") from None
    return load_spec(text, filename=str(path), max_trials=max_trials)


def backend_for(spec: Spec, access: Access) -> Backend:
    """The backend named by the flag or the spec; Kubernetes is configured like kubectl."""
    backend = access.backend or spec.backend
    if backend == "kubernetes":
        from sweepctl.backends.kubernetes import Cluster, KubernetesBackend

        return KubernetesBackend(cluster=Cluster(context=access.context), namespace=access.namespace or spec.namespace)
    if backend == "local":
        from sweepctl.backends.local import LocalBackend

        return LocalBackend(state_dir=access.state_dir or LocalBackend.default_state_dir(),
                            parallelism=spec.parallelism, threads_per_trial=spec.threads_per_trial)
    raise SweepctlError(f"unknown backend {backend!r}", hint="use --backend local or --backend kubernetes")


def make_plan(
    spec: Spec,
    backend: Backend,
    *,
    replace: Collection[str] = (),
    replace_drifted: bool = False,
    destroy: bool = False,
    revive: Collection[str] = (),
    tensorboard_url: str | None = None,
) -> Plan:
    """Observe the sweep and diff it against the spec's desired objects.

    Observing waits on the network; the desired objects are rendered meanwhile.
    A TPE search reads the trials' metrics (`tensorboard_url` as for `status`).
    """
    from concurrent.futures import ThreadPoolExecutor

    ns = backend.namespace
    on_cluster = backend.name == "kubernetes"

    def render(trials: list[Trial]) -> dict[str, Any]:
        return {t.name: tfjob(spec, t, namespace=ns) if on_cluster else local_trial(spec, t) for t in trials}

    selection = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        observing = pool.submit(backend.observe, spec.name)
        grid = spec.search.algorithm == "grid"
        trials = expand(spec) if grid else []
        desired = render(trials)
        observed = observing.result()
    if not grid:  # random and TPE trials depend on what the sweep has
        from sweepctl.metrics.history import select_trials

        selection = select_trials(spec, backend, observed, tensorboard_url=tensorboard_url)
        trials = list(selection.trials)
        desired = render(trials)
    # Maybe drifted: the diff needs their live specs.
    observed = with_specs(desired, trials, observed,
                          lambda names: backend.specs(spec.name, names))  # type: ignore[attr-defined]
    plan = compute_plan(
        sweep=spec.name,
        namespace=ns,
        backend=backend.name,
        target=backend.target,
        spec_digest=spec.digest,
        trials=trials,
        desired_trials=desired,
        desired_support=(
            [tensorboard_deployment(spec, namespace=ns), tensorboard_service(spec, namespace=ns)] if on_cluster else []
        ),
        observed=observed,
        replace=replace,
        replace_drifted=replace_drifted,
        destroy=destroy,
        spec_path=os.path.abspath(spec.source),
        revive=revive,
    )
    return with_search(plan, selection) if selection else plan


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file, then rename: readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_plan(plan: Plan, path: Path) -> None:
    """A half-written plan must never be applied."""
    _write_atomically(path, planfile.dumps(plan))


def read_plan(path: Path) -> Plan:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if path == DEFAULT_PLAN:
            raise SweepctlError(
                f"no saved plan at {path}",
                hint="run `sweepctl plan SPEC` first, or `sweepctl apply SPEC` to plan and apply in one go",
            ) from None
        raise SweepctlError(f"{path}: no such file") from None
    return planfile.loads(text, source=str(path))


def is_saved_plan(path: Path) -> bool:
    """A saved plan is JSON with a format version; anything else is read as a spec."""
    try:
        with path.open("rb") as f:
            head = f.read(64).lstrip()
    except OSError:
        return False
    return head.startswith(b"{") and b"format_version" in head


def spec_of(plan: Plan) -> Spec:
    """The spec a saved plan was made from, unchanged since, or a stale-plan error."""
    stale = _stale(f"the spec {plan.spec_path} changed since the plan was made")
    try:
        spec = read_spec(Path(plan.spec_path or ""), max_trials=10**9)
    except SpecError:
        raise stale from None
    if spec.digest != plan.spec_digest:
        raise stale
    return spec


def check_fresh(plan: Plan, backend: Backend, *, tensorboard_url: str | None = None) -> None:
    """Refuse a saved plan made for another target, or whose sweep has changed since."""
    from sweepctl.core.plan import fingerprint

    if backend.target != plan.target:
        raise SweepctlError(
            f"the saved plan was made for {plan.target}, not {backend.target}",
            hint="use the same --context/--namespace/--state-dir as the plan, or plan again",
        )
    observed = backend.observe(plan.sweep)
    if fingerprint(observed) != plan.fingerprint:
        raise _stale(f"sweep {plan.sweep} changed in {plan.target} since the plan was made")
    if plan.history:  # TPE proposed from the trials' values: new values, other proposals
        from sweepctl.metrics.history import history_digest

        if history_digest(spec_of(plan), backend, observed, tensorboard_url=tensorboard_url) != plan.history:
            raise _stale(f"the history of sweep {plan.sweep} (its trials' states and objective values) changed "
                         "since the plan was made, and TPE proposes from it")


def _stale(why: str) -> SweepctlError:
    return SweepctlError(f"Saved plan is stale: {why}", hint="run `sweepctl plan` again; nothing was changed")


def remember_sweep(plan: Plan) -> None:
    """Note the sweep a plan was applied to, so that `status` and `prune` work without a spec."""
    import json

    data = {"sweep": plan.sweep, "backend": plan.backend, "namespace": plan.namespace, "spec_path": plan.spec_path}
    try:
        _write_atomically(LAST_SWEEP, json.dumps(data).encode())
    except OSError:
        pass  # only a convenience: commands can still be given the spec or --sweep


@dataclass(frozen=True, kw_only=True)
class SweepTarget:
    """A sweep to read or prune, found from a spec, --sweep NAME, or the last plan or apply.

    `spec` is None when the sweep was named without one; the objective then is
    the default (loss, minimized).
    """

    sweep: str
    backend: Backend
    spec: Spec | None

    @property
    def metric(self) -> str:
        return self.spec.metric if self.spec else "loss"

    @property
    def goal(self) -> str:
        return self.spec.goal if self.spec else "minimize"


def last_sweep() -> dict[str, str | None] | None:
    """The most recent of the last saved plan and the last apply."""
    import json

    found: list[tuple[float, dict[str, str | None]]] = []
    if LAST_SWEEP.is_file():
        try:
            found.append((LAST_SWEEP.stat().st_mtime, json.loads(LAST_SWEEP.read_text())))
        except (OSError, ValueError):
            pass
    if DEFAULT_PLAN.is_file():
        try:
            plan = read_plan(DEFAULT_PLAN)
            found.append((DEFAULT_PLAN.stat().st_mtime, {"sweep": plan.sweep, "backend": plan.backend,
                                                         "namespace": plan.namespace, "spec_path": plan.spec_path}))
        except (OSError, SweepctlError):
            pass
    return max(found, key=lambda f: f[0])[1] if found else None


def _backend_named(name: str, access: Access, namespace: str | None) -> Backend:
    """A backend for a sweep named without its spec (nothing is run, so no parallelism is needed)."""
    if name == "kubernetes":
        from sweepctl.backends.kubernetes import Cluster, KubernetesBackend

        return KubernetesBackend(cluster=Cluster(context=access.context), namespace=access.namespace or namespace)
    if name == "local":
        from sweepctl.backends.local import LocalBackend

        return LocalBackend(state_dir=access.state_dir or LocalBackend.default_state_dir())
    raise SweepctlError(f"unknown backend {name!r}", hint="use --backend local or --backend kubernetes")


def find_sweep(spec_path: Path | None, sweep: str | None, access: Access) -> SweepTarget:
    """The sweep a command without a required spec acts on, or an error that lists the candidates."""
    if spec_path is not None:
        spec = read_spec(spec_path, max_trials=10**9)
        if sweep and sweep != spec.name:
            raise SweepctlError(f"--sweep {sweep} does not match the spec's sweep {spec.name}",
                                hint="pass either the spec or --sweep")
        return SweepTarget(sweep=spec.name, backend=backend_for(spec, access), spec=spec)
    last = last_sweep()
    if last and (sweep is None or sweep == last.get("sweep")):
        name = str(last["sweep"])
        spec = None
        if last.get("spec_path"):
            try:
                spec = read_spec(Path(str(last["spec_path"])), max_trials=10**9)
            except SweepctlError:
                spec = None  # moved or broken since: the objective falls back to the default
        if spec is not None and spec.name == name:
            return SweepTarget(sweep=name, spec=spec, backend=backend_for(
                spec, Access(backend=access.backend or last.get("backend"), context=access.context,
                             namespace=access.namespace or last.get("namespace") or None,
                             state_dir=access.state_dir)))
        backend = _backend_named(access.backend or str(last.get("backend") or "local"), access,
                                 last.get("namespace") or None)
        return SweepTarget(sweep=name, backend=backend, spec=None)
    backend = _backend_named(access.backend or "local", access, None)
    if sweep is not None:
        return SweepTarget(sweep=sweep, backend=backend, spec=None)
    candidates = backend.sweeps()
    raise SweepctlError(
        f"which sweep? No spec was given, and no plan or apply was made here ({backend.target})",
        hint=("pass SPEC or --sweep NAME; sweeps found: " + ", ".join(candidates)) if candidates
        else "pass SPEC or --sweep NAME (no sweep found there; --backend kubernetes looks in the cluster)",
    )


def require_sweep(target: SweepTarget, observed: Any) -> None:
    """A sweep with nothing at all (no trial, no pruned record) was most likely misnamed."""
    if observed.objects or observed.pruned:
        return
    candidates = [s for s in target.backend.sweeps() if s != target.sweep]
    raise SweepctlError(
        f"sweep {target.sweep} has no trials in {target.backend.target}",
        hint=did_you_mean(target.sweep, candidates) or (
            ("sweeps found: " + ", ".join(candidates)) if candidates else "run `sweepctl apply SPEC` first"),
    )
