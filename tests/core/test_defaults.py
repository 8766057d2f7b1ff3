"""What a trial shows is what it ran: `defaults` keep trials, and never relabel them.

The live trials here are what an apply of the earlier spec leaves (the local
backend's records: params, arguments, template hash); the real local backend
does the same end to end in tests/local.
"""

from __future__ import annotations

import json

import pytest

from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.manifests import PARAMS, TEMPLATE_HASH, TRIAL, local_trial
from sweepctl.core.plan import LiveObject, Observed, as_recorded, compute_plan
from sweepctl.core.spec import load_spec
from sweepctl.core.trials import expand


def applied(text: str) -> Observed:
    """The live trials an apply of this spec leaves, all Succeeded."""
    spec = load_spec(text)
    objects = []
    for t in expand(spec):
        m = local_trial(spec, t)
        objects.append(LiveObject(kind="Trial", name=t.name, uid=t.id, generation=1, labels={TRIAL: t.id},
                                  annotations={TEMPLATE_HASH: m["metadata"]["annotations"][TEMPLATE_HASH],
                                               PARAMS: json.dumps(dict(t.params))},
                                  spec=m["spec"], state="Succeeded", params=dict(t.params)))
    return Observed(objects=tuple(objects))


def plan(text: str, observed: Observed):
    spec = load_spec(text)
    trials = as_recorded(expand(spec), observed, source="s.yaml")
    desired = {t.name: local_trial(spec, t) for t in trials}
    return compute_plan(sweep="s", namespace="", backend="local", target="here", spec_digest=spec.digest,
                        trials=expand(spec), desired_trials=desired, desired_support=[], observed=observed)


BEFORE = "name: s\nhyperParamValues: {lr: [0.1, 0.01]}\n"
WITH_50 = "name: s\ndefaults: {batchSize: 50}\nhyperParamValues: {lr: [0.1, 0.01], batchSize: [50, 64]}\n"
WITH_64 = "name: s\ndefaults: {batchSize: 64}\nhyperParamValues: {lr: [0.1, 0.01], batchSize: [50, 64]}\n"


def test_adding_a_hyperparameter_keeps_the_trials_that_ran_without_it() -> None:
    p = plan(WITH_50, applied(BEFORE))
    assert p.summary == {"add": 2, "change": 0, "destroy": 0}
    assert [c.params["batchSize"] for c in p.add] == [64, 64]
    assert not p.drifted  # they keep the flags they ran with
    assert {c.params["batchSize"] for c in p.unchanged} == {50}


def test_changing_a_default_is_refused_with_the_trials_it_would_relabel() -> None:
    live = applied(WITH_50)
    with pytest.raises(SweepctlError) as err:
        plan(WITH_64, live)
    messages = [d.message for d in err.value.diagnostics]
    at_50 = [o.name for o in live.objects if o.params["batchSize"] == 50]
    at_64 = [o.name for o in live.objects if o.params["batchSize"] == 64]
    for name in at_50:
        assert any(m.startswith(f"trial {name} ran with batchSize=50, but this spec would show it as batchSize=64")
                   for m in messages), messages
    for name in at_64:
        assert any(m.startswith(f"trial {name} ran with batchSize=64, lr=") and "which this spec names" in m
                   for m in messages), messages
    assert "cannot change once trials ran with it" in err.value.diagnostics[-1].hint
    assert all(d.file == "s.yaml" for d in err.value.diagnostics)


def test_changing_a_default_under_trials_that_ran_before_it_is_refused_too() -> None:
    # Ran before batchSize was swept, then with it: the 64 trials really ran 64.
    live = applied(BEFORE)
    live = Observed(objects=live.objects + tuple(o for o in applied(WITH_50).objects if o.params["batchSize"] == 64))
    with pytest.raises(SweepctlError, match="which this spec names"):
        plan(WITH_64, live)


def test_pruned_trials_count_as_having_run() -> None:
    live = applied(WITH_50)
    pruned = {o.name: {"params": dict(o.params), "metric": 1.0} for o in live.objects}
    with pytest.raises(SweepctlError, match="ran with batchSize=50"):
        plan(WITH_64, Observed(pruned=pruned))


def test_the_same_default_written_differently_is_no_change() -> None:
    p = plan(WITH_50.replace("batchSize: 50}", "batchSize: '50'}"), applied(WITH_50))
    assert not p.has_changes and not p.drifted


def test_a_record_without_params_changes_nothing() -> None:
    live = applied(WITH_50)
    blank = Observed(objects=tuple(LiveObject(**{**o.__dict__, "params": {}}) for o in live.objects))
    trials = as_recorded(expand(load_spec(WITH_50)), blank)
    assert all(not t.unpassed for t in trials)
    assert all("--batch-size" in t.flags() for t in trials)
