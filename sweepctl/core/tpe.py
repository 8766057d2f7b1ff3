"""TPE proposals: Optuna's TPESampler, warm-started in memory from the sweep's history.

Optuna is used through ask-and-tell on an in-memory study that lives for one
proposal round; nothing is stored, so the sweep's trials stay the only state.
Settings are pinned rather than left to Optuna's defaults (which changed in
Optuna 5): multivariate on, constant liar on (unfinished trials count as
pending, so parallel proposals spread out), `startupTrials` random proposals
first. A fresh sampler is seeded by (seed, the trial's index, attempt): TPE's
startup proposals ignore history, so a fixed seed would propose one point
again and again.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.plan import PRUNED
from sweepctl.core.points import point_key, unit
from sweepctl.core.space import round_value
from sweepctl.core.spec import HyperParam, Scalar, Spec, flag_value

__all__ = ["Observation", "observation", "propose"]

_ATTEMPTS = 16  # proposals tried for one trial before its space counts as used up


@dataclass(frozen=True, kw_only=True)
class Observation:
    """A past trial as the study sees it: Optuna's state name, its value, and its step when stopped."""

    name: str
    params: Mapping[str, Scalar]
    state: str  # COMPLETE, PRUNED, FAIL or RUNNING
    value: float | None = None
    step: int | None = None


def observation(params: Mapping[str, Scalar], past: Any, goal: str) -> Observation:
    """Map a PastTrial to the study: a finished trial with a finite value is COMPLETE, a stopped one
    PRUNED at its step, a failed or valueless finished one FAIL, anything else RUNNING (pending)."""
    value = past.value if past.value is not None and math.isfinite(past.value) else None
    if past.state == PRUNED:
        if value is None:
            return Observation(name=past.name, params=params, state="FAIL")
        return Observation(name=past.name, params=params, state="PRUNED", value=value, step=past.step or 0)
    if past.state == "Succeeded":
        return Observation(name=past.name, params=params, state="COMPLETE" if value is not None else "FAIL",
                           value=value)
    if past.state == "Failed":
        return Observation(name=past.name, params=params, state="FAIL")
    return Observation(name=past.name, params=params, state="RUNNING")


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise SweepctlError("search.algorithm tpe needs Optuna, which is not installed",
                            hint="install the search extra: pip install 'sweepctl[search]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _distribution(optuna: Any, hp: HyperParam) -> Any:
    d = optuna.distributions
    if hp.range is None:
        return d.CategoricalDistribution(list(hp.values))
    if hp.range.integer:
        return d.IntDistribution(int(hp.range.low), int(hp.range.high), log=hp.range.log)
    return d.FloatDistribution(float(hp.range.low), float(hp.range.high), log=hp.range.log)


def _as_optuna(hp: HyperParam, value: Scalar) -> Any:
    """The value as its distribution holds it: the listed choice itself, an int, or a float."""
    if hp.range is None:
        return next(v for v in hp.values if flag_value(v) == flag_value(value))
    return int(value) if hp.range.integer else float(value)


def _from_optuna(hp: HyperParam, value: Any) -> Scalar:
    if hp.range is None:
        return cast(Scalar, value)  # a listed choice, as _as_optuna gave it
    return int(value) if hp.range.integer else round_value(float(value), hp.range)


def _seed(seed: int, index: int, attempt: int) -> int:
    return int(unit("sweepctl-tpe", seed, index, attempt) * 2**32)


def propose(spec: Spec, history: Sequence[Observation], count: int, *, first_index: int) -> list[dict[str, Scalar]]:
    """Up to `count` new points, each unlike every trial in `history` and each other.

    Deterministic: the history is added in name order, and the sampler for the
    trial of index i (counting every trial the sweep started) is seeded by
    (seed, i, attempt). A proposal already taken (after rounding) is told as
    failed and asked again; each accepted one is then pending (RUNNING) for the
    next.
    """
    optuna = _optuna()
    state = optuna.trial.TrialState
    hps = {hp.name: hp for hp in spec.hyper_params}
    distributions = {name: _distribution(optuna, hp) for name, hp in hps.items()}
    direction = "maximize" if spec.goal == "maximize" else "minimize"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-feature notices (multivariate, constant_liar)
        study = optuna.create_study(direction=direction)
        taken = set()
        for obs in sorted(history, key=lambda o: o.name):
            params = {name: _as_optuna(hps[name], obs.params[name]) for name in hps}
            taken.add(point_key(params))
            study.add_trial(optuna.trial.create_trial(
                state=state[obs.state], value=obs.value if obs.state == "COMPLETE" else None, params=params,
                distributions=distributions,
                intermediate_values={obs.step or 0: obs.value} if obs.state == "PRUNED" else None))
        out: list[dict[str, Scalar]] = []
        for i in range(count):
            for attempt in range(_ATTEMPTS):
                study.sampler = optuna.samplers.TPESampler(
                    seed=_seed(spec.search.seed, first_index + i, attempt), multivariate=True, group=False,
                    constant_liar=True, n_startup_trials=spec.search.startup_trials)
                asked = study.ask(distributions)
                point = {name: _from_optuna(hps[name], asked.params[name]) for name in hps}
                study.tell(asked, state=state.FAIL)  # only the rounded point below is pending
                params = {name: _as_optuna(hps[name], point[name]) for name in hps}
                if point_key(params) not in taken:
                    break
            else:
                return out  # the space has no untried point left that TPE finds
            taken.add(point_key(params))
            out.append(point)
            study.add_trial(optuna.trial.create_trial(state=state.RUNNING, params=params,
                                                      distributions=distributions))
        return out

