"""What the commands that plan share: read a spec, open its backend, plan, check a saved plan.

This is where the pure core meets the backends; the command modules stay a
few lines long. Files of the `.sweepctl/` workspace are `sweepctl.workspace`'s;
finding the sweep of a command without a spec is `commands.target`'s.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import shlex
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sweepctl.backends import open_backend
from sweepctl.backends.base import Backend
from sweepctl.core.diagnostics import SpecError, SweepctlError
from sweepctl.core.manifests import check_trial_names
from sweepctl.core.plan import Plan, as_recorded, compute_plan, fingerprint, with_specs
from sweepctl.core.schema import DEFAULT_MAX_TRIALS
from sweepctl.core.search import with_search
from sweepctl.core.spec import Spec, load_spec
from sweepctl.core.trials import expand

__all__ = [
    "Access",
    "backend_for",
    "check_fresh",
    "command_line",
    "make_plan",
    "paused_gc",
    "read_spec",
    "spec_of",
]


@dataclass(frozen=True, kw_only=True)
class Access:
    """How to reach the backend, from the command line: flags win over the spec."""

    backend: str | None = None
    context: str | None = None
    namespace: str | None = None
    state_dir: Path | None = None
    # Seconds: the command's overall deadline for the API server (--timeout; None: the default),
    # and how long a command that writes waits for another's lock of the sweep (--lock-timeout).
    timeout: float | None = None
    lock_timeout: float = 0.0

    def flags(self) -> list[str]:
        """The flags that reach the same backend again, for commands sweepctl suggests."""
        out: list[str] = []
        for flag, value in (("--backend", self.backend), ("--context", self.context), ("-n", self.namespace),
                            ("--state-dir", self.state_dir)):
            if value is not None:
                out += [flag, str(value)]
        return out


def command_line(*words: str | Path, access: Access) -> str:
    """A sweepctl command to suggest, with the flags that reach the same backend, quoted for a shell."""
    return shlex.join(["sweepctl", *map(str, words), *access.flags()])


def read_spec(path: Path, *, max_trials: int = DEFAULT_MAX_TRIALS) -> Spec:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file", hint="pass the path of a sweep spec (YAML)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read the spec: {err}") from None
    return load_spec(text, filename=str(path), max_trials=max_trials)


def backend_for(spec: Spec, access: Access) -> Backend:
    """The spec's backend, unless a flag names another."""
    return open_backend(access.backend or spec.backend, context=access.context,
                        namespace=access.namespace or spec.namespace, state_dir=access.state_dir, spec=spec,
                        timeout=access.timeout)


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic GC while a plan's objects are built and diffed.

    A plan holds every live object at once; the cyclic GC would rescan them
    all, again and again, while they are built (half of a 10,000-trial plan).
    Only around that: applies and --watch run for hours with the GC on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # Everything made meanwhile sits in the youngest generation, which the
            # next allocations would collect at once: a full scan of the plan (0.1 s
            # for 10,000 trials). Moved to the oldest, it waits for a full collection.
            gc.freeze()
            gc.unfreeze()
            gc.enable()


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
    A random or TPE search selects its trials from what the sweep has (a TPE
    search reads the trials' metrics; `tensorboard_url` as for `status`).
    A spec that would show a trial under values it did not run with is refused
    (plan.as_recorded).
    """
    from concurrent.futures import ThreadPoolExecutor

    selection = None
    with paused_gc(), ThreadPoolExecutor(max_workers=2) as pool:
        observing = pool.submit(backend.observe, spec.name)
        checking = pool.submit(lambda: [] if destroy else backend.requirements(spec))
        grid = spec.search.algorithm == "grid"
        trials = expand(spec) if grid else []
        desired = {t.name: backend.desired(spec, t) for t in trials}
        observed = observing.result()
        if not grid:  # random and TPE trials depend on what the sweep has
            from sweepctl.metrics.history import select_trials

            selection = select_trials(spec, backend, observed, tensorboard_url=tensorboard_url)
            trials = list(selection.trials)
            desired = {t.name: backend.desired(spec, t) for t in trials}
        if not destroy:
            check_trial_names(spec, trials)
            trials = as_recorded(trials, observed, source=spec.source)
            for trial in trials:
                if trial.unpassed:  # ran before a hyperparameter was swept: its flags stay as they ran
                    desired[trial.name] = backend.desired(spec, trial)
        # Maybe drifted: the diff needs their live specs.
        observed = with_specs(desired, trials, observed, lambda names: backend.specs(spec.name, names))
        plan = compute_plan(
            sweep=spec.name,
            namespace=backend.namespace,
            backend=backend.name,
            target=backend.target,
            spec_digest=spec.digest,
            trials=trials,
            desired_trials=desired,
            desired_support=backend.support(spec),
            observed=observed,
            replace=replace,
            replace_drifted=replace_drifted,
            destroy=destroy,
            spec_path=os.path.abspath(spec.source),
            revive=revive,
        )
        plan = dataclasses.replace(plan, requires=tuple(checking.result()))
    return with_search(plan, selection) if selection else plan


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


def check_target(plan: Plan, backend: Backend) -> None:
    """Refuse a saved plan made for another target: before any request, the lock's included."""
    if backend.target != plan.target:
        raise SweepctlError(
            f"the saved plan was made for {plan.target}, not {backend.target}",
            hint="use the same --context/--namespace/--state-dir as the plan, or plan again",
        )


def check_fresh(plan: Plan, backend: Backend, *, tensorboard_url: str | None = None) -> None:
    """Refuse a saved plan made for another target, or whose sweep has changed since."""
    check_target(plan, backend)
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
