"""The median rule on known curves: the right trials stop, at the right step, for the right reason."""

from __future__ import annotations

import math

from sweepctl.core.space import EarlyStopping
from sweepctl.core.stopping import median_stops

FINISHED = {
    "a": [(0, 10.0), (10, 8.0), (20, 6.0), (30, 4.0)],
    "b": [(0, 10.0), (10, 7.0), (20, 5.0), (30, 3.0)],
    "c": [(0, 10.0), (10, 9.0), (20, 7.0), (30, 5.0)],
}
SLOW = [(0, 10.0), (10, 9.5), (20, 9.0)]  # worse than the median (8, then 6) from step 10
GOOD = [(0, 10.0), (10, 7.5), (20, 5.5)]  # better than it at every step


def stops(curves, candidates, *, goal="minimize", after=0, min_trials=3):
    return {s.name: s for s in median_stops(curves, candidates, goal=goal,
                                            rule=EarlyStopping(after_step=after, min_trials=min_trials))}


def test_a_trial_worse_than_the_median_stops_at_the_first_such_step() -> None:
    found = stops({**FINISHED, "slow": SLOW, "good": GOOD}, ["slow", "good"])
    assert list(found) == ["slow"]
    s = found["slow"]
    # At step 0 all are at 10 (equal is not worse); at step 10 the others' median is 8 (a 8, b 7, c 9, good 7.5).
    assert (s.step, s.best, s.median, s.others) == (10, 9.5, 7.75, 4)
    assert "step 10" in s.reason("loss") and "7.75" in s.reason("loss")


def test_no_step_before_after_step_is_judged() -> None:
    found = stops({**FINISHED, "slow": SLOW}, ["slow"], after=15)
    assert found["slow"].step == 20 and found["slow"].median == 6.0


def test_a_step_is_judged_only_once_min_trials_others_reached_it() -> None:
    curves = {"a": FINISHED["a"][:2], "b": FINISHED["b"][:2], "slow": SLOW}  # only 2 others reach step 10
    assert stops(curves, ["slow"], min_trials=3) == {}
    assert stops(curves, ["slow"], min_trials=2)["slow"].step == 10


def test_the_median_is_a_median_not_a_mean() -> None:
    # Others at step 10: 1, 2, 100 -> median 2 (the mean, 34.3, would let 5 pass).
    curves = {"x": [(10, 1.0)], "y": [(10, 2.0)], "z": [(10, 100.0)], "t": [(10, 5.0)]}
    assert stops(curves, ["t"])["t"].median == 2.0


def test_other_trials_count_with_their_value_at_that_step() -> None:
    # "sparse" logged at steps 0 and 25 only: at step 20 its value is the one of step 0.
    curves = {**FINISHED, "sparse": [(0, 1.0), (25, 1.0)], "t": [(20, 6.5)]}
    s = stops(curves, ["t"])["t"]
    assert (s.median, s.others) == (5.5, 4)  # 6, 5, 7 and 1 -> 5.5


def test_maximize_and_a_diverged_trial() -> None:
    up = {n: [(s, -v) for s, v in c] for n, c in FINISHED.items()}
    found = stops({**up, "slow": [(s, -v) for s, v in SLOW], "nan": [(0, -10.0), (10, math.nan)]},
                  ["slow", "nan"], goal="maximize")
    assert found["slow"].step == 10
    assert found["nan"].step == 10  # NaN is the worst value there is; its best so far is -10


def test_finished_trials_are_never_candidates_and_their_curves_still_count() -> None:
    assert stops({**FINISHED, "slow": SLOW}, []) == {}
    assert set(stops({**FINISHED, "slow": SLOW}, ["a", "b", "c", "slow"])) >= {"slow"}



def test_a_stopped_trial_counts_at_the_steps_it_reached_and_no_further() -> None:
    # The others are every trial that reached step s, stopped ones included (the rule as the issue defines
    # it): leaving the stopped, worse trials out would judge against survivors only.
    curves = {**FINISHED, "stopped": [(0, 10.0), (10, 9.9)], "t": [(10, 8.3), (20, 6.5)]}
    s = stops(curves, ["t"])["t"]
    # Step 10: a 8, b 7, c 9 and the stopped 9.9 -> median 8.5, and 8.3 is better. Step 20: the stopped
    # trial never got there; a 6, b 5, c 7 -> median 6, and 6.5 is worse.
    assert (s.step, s.median, s.others) == (20, 6.0, 3)
    assert stops({n: c for n, c in curves.items() if n != "stopped"}, ["t"])["t"].step == 10
