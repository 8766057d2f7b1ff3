"""Ranking is pure: strategies, goals, ties, unscored and pruned trials."""

from __future__ import annotations

import math

import pytest

from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.plan import LiveObject, Observed
from sweepctl.metrics.ranking import Points, Series, build_status, parse_keep, select_for_prune


def trial(name: str) -> LiveObject:
    return LiveObject(kind="Trial", name=name, uid=f"uid-{name}", labels={"sweepctl.dev/trial": name},
                      params={"lr": name}, state="Succeeded")


def status(series: dict[str, Series], *, goal: str = "minimize", strategy: str = "min", keep: int = 2,
           pruned: dict | None = None):
    observed = Observed(objects=tuple(trial(n) for n in series), pruned=pruned or {})
    return build_status(sweep="s", backend="local", target="here", metric="loss", goal=goal, strategy=strategy,
                        keep=keep, observed=observed, series=series)


def pts(*values: float) -> Series:
    return Series(points=tuple((i * 10, v) for i, v in enumerate(values)))


def test_strategies_pick_min_max_or_latest() -> None:
    series = {"a": pts(5, 1, 3), "b": pts(4, 2, 2)}
    assert [(t.name, t.metric) for t in status(series).trials] == [("a", 1), ("b", 2)]
    assert [(t.name, t.metric) for t in status(series, strategy="latest").trials] == [("b", 2), ("a", 3)]
    assert [(t.name, t.metric) for t in status(series, goal="maximize", strategy="max").trials] == [("a", 5), ("b", 4)]
    a = status(series).trials[0]
    assert (a.step, a.latest, a.best) == (20, 3, 1)


def test_ties_are_broken_by_name_and_nan_ranks_last() -> None:
    series = {"c": pts(1.0), "a": pts(1.0), "nan": pts(math.nan), "b": pts(1.0)}
    ranked = status(series, keep=2).trials
    assert [t.name for t in ranked] == ["a", "b", "c", "nan"]
    assert [t.top for t in ranked] == [True, True, False, False]


def test_prune_keeps_the_best_and_unscored_unless_asked() -> None:
    s = status({"a": pts(3), "b": pts(1), "c": pts(2), "new": Series(error="no logs")}, keep=2)
    sel = select_for_prune(s, include_unscored=False)
    assert [t.name for t in sel.keep] == ["b", "c"]
    assert [t.name for t in sel.delete] == ["a"]
    assert [t.name for t in sel.unscored_kept] == ["new"] and sel.unscored_kept[0].note == "no logs"
    assert [t.name for t in select_for_prune(s, include_unscored=True).delete] == ["a", "new"]


def test_pruned_trials_are_listed_last_with_their_record_and_never_ranked() -> None:
    s = status({"a": pts(3)}, pruned={"old": {"params": {"lr": 1}, "metric": 0.5, "step": 7}})
    assert [(t.name, t.state, t.metric, t.rank) for t in s.trials] == [("a", "Succeeded", 3, 1),
                                                                      ("old", "pruned", 0.5, None)]
    assert [t.name for t in select_for_prune(s, include_unscored=True).delete] == []


@pytest.mark.parametrize("text", ["best=0", "best=x", "worst=2", "best=1.5", "", "best=-3"])
def test_parse_keep_refuses_anything_but_best_k(text: str) -> None:
    with pytest.raises(SweepctlError, match="expected best=K"):
        parse_keep(text)
    assert parse_keep(" best=12 ") == 12


@pytest.mark.parametrize("values", [(5.0, 1.0, 3.0), (2.0, math.nan, 1.0), (math.inf, -math.inf, 0.5), (math.nan,)])
@pytest.mark.parametrize("goal,strategy", [("minimize", "min"), ("maximize", "max"), ("minimize", "latest")])
def test_packed_points_rank_as_tuples_do(values: tuple[float, ...], goal: str, strategy: str) -> None:
    pairs = tuple((i * 10, v) for i, v in enumerate(values))
    packed = Points.of(pairs)
    assert packed == pairs and packed[:2] == pairs[:2] and packed != pairs[:-1] and packed != "not points"
    assert repr(list(packed)) == repr(list(pairs)) and repr(packed[-1]) == repr(pairs[-1])
    assert packed == Points.of(pairs)  # a NaN equals itself: cached reads compare equal
    as_tuples = status({"t": Series(points=pairs)}, goal=goal, strategy=strategy).trials[0]
    as_points = status({"t": Series(points=packed)}, goal=goal, strategy=strategy).trials[0]
    assert repr(as_points) == repr(as_tuples)
