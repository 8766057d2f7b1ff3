"""Random and TPE search as plans: prefix stability, narrowing, determinism, continuation from a grid.

Pure: the sweep's history is given as the plain data a backend's observation
gives (live trials and pruned records), and plans are computed by the same
planner the commands use.
"""

from __future__ import annotations

import math

import pytest

from sweepctl.core.manifests import TEMPLATE_HASH, TRIAL, local_trial
from sweepctl.core.plan import PRUNED, LiveObject, Observed, compute_plan
from sweepctl.core.search import PastTrial, random_stream, select
from sweepctl.core.spec import load_spec

pytest.importorskip("optuna")

RANDOM = """\
name: rs
search: {{algorithm: random, trials: {trials}, seed: {seed}}}
hyperParamValues:
  learningRate: {{min: {lr_min}, max: 0.1, scale: log}}
  hiddenLayers: {{min: 3, max: 9, type: int}}
  activation: [relu, tanh]
"""


def random_spec(trials: int = 12, seed: int = 0, lr_min: str = "1.0e-4"):
    return load_spec(RANDOM.format(trials=trials, seed=seed, lr_min=lr_min))


def live(spec, trials, state: str = "Succeeded") -> Observed:
    """What a local backend observes after applying these trials."""
    objects = []
    for t in trials:
        manifest = local_trial(spec, t)
        objects.append(LiveObject(kind="Trial", name=t.name, uid=t.id, generation=1, labels={TRIAL: t.id},
                                  annotations={TEMPLATE_HASH: manifest["metadata"]["annotations"][TEMPLATE_HASH]},
                                  state=state, params=dict(t.params)))
    return Observed(objects=tuple(objects))


def history(observed: Observed, values: dict[str, float] | None = None) -> list[PastTrial]:
    values = values or {}
    out = [PastTrial(name=o.name, params=o.params, state=o.state, value=values.get(o.name))
           for o in observed.objects]
    out += [PastTrial(name=n, params=r["params"], state=PRUNED, value=r.get("metric"), step=r.get("step"))
            for n, r in observed.pruned.items()]
    return out


def plan(spec, observed: Observed, values: dict[str, float] | None = None):
    selection = select(spec, history(observed, values))
    trials = list(selection.trials)
    return selection, compute_plan(
        sweep=spec.name, namespace="", backend="local", target="t", spec_digest=spec.digest, trials=trials,
        desired_trials={t.name: local_trial(spec, t) for t in trials}, desired_support=[], observed=observed)


def test_trial_k_depends_only_on_seed_and_k() -> None:
    twelve = [t.name for t in select(random_spec(12), []).trials]
    twenty_four = [t.name for t in select(random_spec(24), []).trials]
    assert len(set(twenty_four)) == 24
    assert twenty_four[:12] == twelve
    assert [t.name for t in select(random_spec(12), []).trials] == twelve  # every run, every machine
    assert not set(twelve) & {t.name for t in select(random_spec(12, seed=1), []).trials}
    reordered = load_spec(RANDOM.format(trials=12, seed=0, lr_min="1.0e-4").replace(
        "  activation: [relu, tanh]\n", "").replace("hyperParamValues:\n", "hyperParamValues:\n  activation: [relu, tanh]\n"))
    assert [t.name for t in select(reordered, []).trials] == twelve


def test_sampled_values_are_rounded_and_inside_their_ranges() -> None:
    for t in select(random_spec(200), []).trials:
        lr, hl = t.params["learningRate"], t.params["hiddenLayers"]
        assert 1e-4 <= lr <= 0.1 and float(f"{lr:.3e}") == lr  # 4 significant digits
        assert isinstance(hl, int) and 3 <= hl <= 9
        assert t.params["activation"] in ("relu", "tanh")
        assert len(t.name) <= 63
    lrs = sorted(math.log10(t.params["learningRate"]) for t in select(random_spec(200), []).trials)
    assert lrs[0] < -3.5 and lrs[-1] > -1.5  # spread over the decades: a log scale


def test_raising_the_budget_adds_exactly_the_next_trials() -> None:
    first = select(random_spec(12), []).trials
    selection, p = plan(random_spec(24), live(random_spec(12), first))
    expected = [t.name for t in select(random_spec(24), []).trials][12:]
    assert [c.name for c in p.add] == expected
    assert p.delete == [] and len(p.unchanged) == 12
    assert (selection.started, len(selection.proposed), selection.left) == (12, 12, 0)


def test_lowering_the_budget_deletes_the_extra_trials() -> None:
    all_24 = select(random_spec(24), []).trials
    _, p = plan(random_spec(12), live(random_spec(24), all_24))
    assert sorted(c.name for c in p.delete) == sorted(t.name for t in all_24[12:])
    assert p.add == [] and {c.name for c in p.unchanged} == {t.name for t in all_24[:12]}


def test_narrowing_a_range_deletes_the_trials_outside_it_and_keeps_the_rest() -> None:
    wide = select(random_spec(12), []).trials
    narrow = random_spec(12, lr_min="0.001")
    _, p = plan(narrow, live(random_spec(12), wide))
    outside = {t.name for t in wide if t.params["learningRate"] < 0.001}
    assert outside and len(outside) < 12
    assert {c.name for c in p.delete} == outside
    assert {c.name for c in p.unchanged} == {t.name for t in wide} - outside
    assert len(p.add) == len(outside)  # the budget is still 12
    assert all(c.params["learningRate"] >= 0.001 for c in p.add)
    # Stable from there on: applied, the narrowed sweep plans no changes, and raising it only adds.
    after = live(narrow, [t for t in select(narrow, history(live(random_spec(12), wide))).trials])
    assert not plan(narrow, after)[1].has_changes
    _, raised = plan(random_spec(16, lr_min="0.001"), after)
    assert len(raised.add) == 4 and raised.delete == []


def test_a_list_only_space_is_never_sampled_twice() -> None:
    spec = load_spec("name: s\nsearch: {algorithm: random, trials: 6}\nhyperParamValues: {a: [1, 2, 3], b: [x, y]}\n")
    points = [tuple(p.values()) for p in random_stream(spec)]
    assert sorted(points) == sorted((a, b) for a in (1, 2, 3) for b in ("x", "y"))


TPE = """\
name: rs
search: {{algorithm: tpe, trials: {trials}, parallel: {parallel}, seed: 0, startupTrials: 4}}
hyperParamValues:
  learningRate: {{min: 1.0e-4, max: 0.1, scale: log}}
  hiddenLayers: {{min: 3, max: 9, type: int}}
"""


def tpe_spec(trials: int = 24, parallel: int = 3):
    return load_spec(TPE.format(trials=trials, parallel=parallel))


def loss(params) -> float:
    """A made-up objective with its best near lr 0.003, 7 layers."""
    return (math.log10(params["learningRate"]) + 2.5) ** 2 + 0.1 * (params["hiddenLayers"] - 7) ** 2


def finished_random(n: int):
    spec = load_spec(TPE.format(trials=n, parallel=1).replace("tpe", "random"))
    trials = select(spec, []).trials
    return live(tpe_spec(), trials), {t.name: loss(t.params) for t in trials}


def test_tpe_proposes_up_to_the_free_slots_and_the_budget() -> None:
    observed, values = finished_random(8)
    selection, p = plan(tpe_spec(parallel=3), observed, values)
    assert len(p.add) == 3 and p.delete == [] and len(p.unchanged) == 8
    assert (selection.started, selection.unfinished, selection.left) == (8, 0, 13)
    running = Observed(objects=observed.objects[:6] + tuple(
        LiveObject(**{**o.__dict__, "state": "Running"}) for o in observed.objects[6:]))
    assert len(plan(tpe_spec(parallel=3), running, values)[1].add) == 1  # 2 unfinished: 1 slot
    assert len(plan(tpe_spec(trials=9, parallel=3), observed, values)[1].add) == 1  # 1 left in the budget
    assert plan(tpe_spec(trials=8, parallel=3), observed, values)[1].has_changes is False


def test_tpe_is_deterministic_for_a_history_and_follows_it() -> None:
    observed, values = finished_random(8)
    first, p1 = plan(tpe_spec(), observed, values)
    again, p2 = plan(tpe_spec(), observed, values)
    assert [c.params for c in p1.add] == [c.params for c in p2.add]
    assert first.history == again.history
    assert len({tuple(c.params.items()) for c in p1.add}) == 3  # parallel proposals differ
    changed = dict(values)
    changed[next(iter(changed))] += 1.0
    moved, _ = plan(tpe_spec(), observed, changed)
    assert moved.history != first.history


def test_tpe_after_its_startup_trials_proposes_near_the_best() -> None:
    observed, values = finished_random(12)
    for _ in range(3):  # three rounds of proposals, each told its made-up result
        selection, p = plan(tpe_spec(parallel=4), observed, values)
        added = [t for t in selection.trials if t.name in selection.proposed]
        observed = Observed(objects=observed.objects + live(tpe_spec(), added).objects)
        values.update({t.name: loss(t.params) for t in added})
    best_random = min(v for n, v in values.items() if n in {o.name for o in finished_random(12)[0].objects})
    proposed_values = [v for n, v in values.items() if n not in {o.name for o in finished_random(12)[0].objects}]
    assert sorted(proposed_values)[len(proposed_values) // 2] < best_random * 4  # the median proposal is good


def test_grid_then_tpe_continues_from_the_grid() -> None:
    grid = load_spec("name: rs\nhyperParamValues:\n  learningRate: [0.001, 0.01, 0.1]\n  hiddenLayers: [5, 6, 7]\n")
    grid_trials = select(grid, []).trials
    observed = live(grid, grid_trials)
    values = {t.name: loss(t.params) for t in grid_trials}
    selection, p = plan(tpe_spec(trials=12, parallel=2), observed, values)
    assert {c.name for c in p.unchanged} == {t.name for t in grid_trials}  # same names: nothing restarts
    assert p.delete == [] and len(p.add) == 2
    assert (selection.started, selection.left) == (9, 1)
    pruned = Observed(objects=observed.objects[1:], pruned={grid_trials[0].name: {
        "params": dict(grid_trials[0].params), "metric": 5.0, "step": 100}})
    again, p = plan(tpe_spec(trials=12, parallel=2), pruned, values)
    assert [c.name for c in p.pruned] == [grid_trials[0].name]  # a stopped trial is history, never re-proposed
    assert again.started == 9 and grid_trials[0].name not in again.proposed


def test_trials_outside_the_tpe_space_are_deleted() -> None:
    grid = load_spec("name: rs\nhyperParamValues:\n  learningRate: [0.001, 0.3]\n  hiddenLayers: [5]\n")
    observed = live(grid, select(grid, []).trials)
    _, p = plan(tpe_spec(trials=4, parallel=1), observed, {})
    assert [c.params["learningRate"] for c in p.delete] == [0.3]
    assert [c.params["learningRate"] for c in p.unchanged] == [0.001]
