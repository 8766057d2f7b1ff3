"""Which trials a spec wants: the grid, a seeded random stream, or TPE's proposals from history.

Pure: the history comes in as plain data (`PastTrial`), gathered by the command
layer through the backend, and the result is a list of trials for the planner
to diff like any grid. Trials of the sweep that fit the spec's space are kept
(whichever algorithm made them); those that do not are left out, so the plan
deletes them: narrowing a range deletes the trials outside it.

- random: trial k's values depend only on (seed, k), each hyperparameter drawn
  from its own stream, so raising the budget adds trials k..n-1 and lowering it
  deletes them. Trials that fit the space but are not in the stream (from an
  earlier grid phase, or a wider range) count towards the budget first.
- tpe: up to min(parallel - unfinished, trials - started) new proposals from
  Optuna's TPE, warm-started from every trial that fits the space. The same
  history gives the same proposals; `Selection.history` is its digest.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sweepctl.core.plan import PRUNED, Plan
from sweepctl.core.points import point_key, unit
from sweepctl.core.spec import HyperParam, Scalar, Spec, canonical_value, flag_value
from sweepctl.core.trials import Trial, expand

__all__ = ["make_trial", "with_search", "FINISHED", "PastTrial", "Selection", "select", "random_stream", "fits", "history_digest", "tpe_history"]

# Live states of trials that will not run again; a pruned trial is finished too.
FINISHED = frozenset({"Succeeded", "Failed"})
_ATTEMPTS = 64  # draws for one stream position before a finite space counts as exhausted


@dataclass(frozen=True, kw_only=True)
class PastTrial:
    """One trial the sweep has or had: live (any state) or pruned.

    `value` is the objective as `status` ranks it (None: no value yet); for a
    pruned trial, `step` is the step it had reached.
    """

    name: str
    params: Mapping[str, Scalar]
    state: str
    value: float | None = None
    step: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED or self.state == PRUNED


@dataclass(frozen=True, kw_only=True)
class Selection:
    """The trials a spec wants now, and how its budget stands.

    `trials` holds kept trials and new ones alike (the planner tells them
    apart); `proposed` names the new ones; `history` is the digest of what TPE
    proposed from ("" for grid and random, whose trials do not depend on it).
    """

    algorithm: str
    trials: tuple[Trial, ...]
    proposed: tuple[str, ...] = ()
    budget: int | None = None
    started: int = 0
    unfinished: int = 0
    history: str = ""

    @property
    def left(self) -> int | None:
        """Trials the budget still allows, after this selection's proposals."""
        if self.budget is None:
            return None
        return max(0, self.budget - self.started - len(self.proposed))


def make_trial(spec: Spec, params: Mapping[str, Scalar]) -> Trial:
    """The trial of these values, named exactly as a grid of these single values would name it."""
    point = replace(spec, hyper_params=tuple(replace(hp, values=(params[hp.name],), range=None)
                                             for hp in spec.hyper_params))
    return expand(point)[0]


def _draw(hp: HyperParam, u: float) -> Scalar:
    if hp.range is not None:
        return hp.range.at(u)
    return hp.values[min(int(u * len(hp.values)), len(hp.values) - 1)]


def random_stream(spec: Spec) -> Iterator[dict[str, Scalar]]:
    """The random search's trials in order: point k from (seed, k) alone, never one twice.

    Each hyperparameter has its own stream, keyed by its name, so adding one
    keeps the others' values. A draw equal to an earlier point is drawn again
    (attempt 1, 2, ...); the stream ends when a finite space is exhausted.
    """
    seed, seen = spec.search.seed, set()
    for k in itertools.count():
        for attempt in range(_ATTEMPTS):
            point = {hp.name: _draw(hp, unit("sweepctl-random", seed, k, attempt, hp.name))
                     for hp in spec.hyper_params}
            if point_key(point) not in seen:
                seen.add(point_key(point))
                yield point
                break
        else:
            return


def _in_space(spec: Spec, params: Mapping[str, Scalar]) -> dict[str, Scalar] | None:
    """The params as this spec's space names them (a missing one at its default), or None if they do not fit."""
    names = {hp.name for hp in spec.hyper_params}
    if set(params) - names:
        return None
    out: dict[str, Scalar] = {}
    for hp in spec.hyper_params:
        value = params.get(hp.name, hp.default)
        if value is None:
            return None
        if hp.range is not None:
            if not hp.range.contains(value):
                return None
        elif flag_value(value) not in {flag_value(v) for v in hp.values}:
            return None
        out[hp.name] = canonical_value(value)
    return out


def fits(spec: Spec, params: Mapping[str, Scalar]) -> bool:
    """Whether a trial with these values belongs to the spec's space."""
    return _in_space(spec, params) is not None


def history_digest(rows: Sequence[tuple[Any, ...]]) -> str:
    """A short digest of what proposals were computed from."""
    return hashlib.sha256(repr(sorted(rows)).encode()).hexdigest()[:20]


def _fitting(spec: Spec, history: Sequence[PastTrial]) -> list[tuple[dict[str, Scalar], PastTrial]]:
    """The past trials inside the spec's space, by name, each with its values as the space names them."""
    return sorted(((p, past) for past in history if (p := _in_space(spec, past.params)) is not None),
                  key=lambda f: f[1].name)


def _observations(spec: Spec, fitting: list[tuple[dict[str, Scalar], PastTrial]]) -> list[Any]:
    from sweepctl.core import tpe

    return [tpe.observation(params, past, spec.goal) for params, past in fitting]


def tpe_history(spec: Spec, history: Sequence[PastTrial]) -> str:
    """The digest of what a TPE plan proposes from ("" for other algorithms): checked by saved plans."""
    if not spec.search.adaptive:
        return ""
    return _digest(_observations(spec, _fitting(spec, history)))


def _digest(observations: list[Any]) -> str:
    return history_digest([(o.name, o.state, _finite(o.value), o.step) for o in observations])


def select(spec: Spec, history: Sequence[PastTrial]) -> Selection:
    """The trials `spec` wants, given every trial the sweep has or had."""
    algorithm = spec.search.algorithm
    if algorithm == "grid":
        return Selection(algorithm=algorithm, trials=tuple(expand(spec)))
    fitting = _fitting(spec, history)
    budget = spec.search.trials or 0
    unfinished = sum(1 for _, past in fitting if not past.finished)
    if algorithm == "random":
        return _random(spec, fitting, budget, unfinished)
    return _tpe(spec, fitting, budget, unfinished)


def _random(spec: Spec, fitting: list[tuple[dict[str, Scalar], PastTrial]], budget: int,
            unfinished: int) -> Selection:
    # Long enough to recognise every stream trial the sweep can still have: one
    # made under a larger budget that was then lowered is deleted by that plan.
    window = budget + 4 * len(fitting) + 64
    stream = list(itertools.islice(random_stream(spec), window))
    in_stream = {point_key(p) for p in stream}
    extras = [params for params, _ in fitting if point_key(params) not in in_stream][:budget]
    chosen = extras + stream[: budget - len(extras)]
    trials = tuple(make_trial(spec, p) for p in chosen)
    had = {past.name for _, past in fitting}
    proposed = tuple(t.name for t in trials if t.name not in had)
    return Selection(algorithm="random", trials=trials, proposed=proposed, budget=budget,
                     started=len(trials) - len(proposed), unfinished=unfinished)


def _tpe(spec: Spec, fitting: list[tuple[dict[str, Scalar], PastTrial]], budget: int, unfinished: int) -> Selection:
    from sweepctl.core import tpe  # Optuna: only for a spec that uses it

    started = len(fitting)
    count = max(0, min(spec.search.parallel - unfinished, budget - started))
    observations = _observations(spec, fitting)
    new = tpe.propose(spec, observations, count, first_index=started) if count else []
    kept = [make_trial(spec, params) for params, _ in fitting]
    proposed = [make_trial(spec, params) for params in new]
    return Selection(algorithm="tpe", trials=(*kept, *proposed), proposed=tuple(t.name for t in proposed),
                     budget=budget, started=started, unfinished=unfinished,
                     history=_digest(observations))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def with_search(plan: Plan, selection: Selection) -> Plan:
    """The plan, with the budget's state for views and the history digest for staleness checks."""
    return replace(plan, history=selection.history, search={
        "algorithm": selection.algorithm, "budget": selection.budget, "started": selection.started,
        "unfinished": selection.unfinished, "proposed": len(selection.proposed), "left": selection.left})
