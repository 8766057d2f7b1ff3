"""Drift of many trials made from one template: computed once per template pair, from one fetched TFJob.

The live objects here are what the API server stores for a created TFJob
(the manifest's spec, generation 1); the plan's own fetches are counted.
"""

from __future__ import annotations

import copy

from sweepctl.core.manifests import SWEEP_TEMPLATE_HASH, TEMPLATE_HASH, tfjob, trial_template
from sweepctl.core.plan import LiveObject, Observed, compute_plan, drift, with_specs
from sweepctl.core.spec import load_spec
from sweepctl.core.trials import expand

SPEC = "name: s\nbackend: kubernetes\nargs: [--epochs, '{epochs}']\nhyperParamValues:\n  learningRate: [{lrs}]\n" \
       "  hiddenLayers: [1, 2, 3, 4]\n{extra}"


def spec(extra: str = "", n: int = 25, epochs: int = 30):
    lrs = ", ".join(f"0.{i + 1:03d}" for i in range(n))
    return load_spec(SPEC.format(lrs=lrs, extra=extra, epochs=epochs), max_trials=10_000)


def live(manifest: dict, *, generation: int = 1, with_spec: bool = False, legacy: bool = False) -> LiveObject:
    meta = manifest["metadata"]
    annotations = dict(meta["annotations"])
    if legacy:
        annotations.pop(SWEEP_TEMPLATE_HASH)
    return LiveObject(kind="TFJob", name=meta["name"], uid=f"uid-{meta['name']}", generation=generation,
                      labels=meta["labels"], annotations=annotations, state="Running",
                      spec=copy.deepcopy(manifest["spec"]) if with_spec else None)


class Server:
    """The live specs, and which the plan asked for."""

    def __init__(self, manifests: dict[str, dict]) -> None:
        self.specs = {name: copy.deepcopy(m["spec"]) for name, m in manifests.items()}
        self.fetched: list[str] = []

    def fetch(self, names: list[str]) -> dict[str, dict]:
        self.fetched += names
        return {n: self.specs[n] for n in names}


def plan_for(old, new, *, edit=None, legacy: bool = False):
    ns = "ns"
    live_manifests = {t.name: tfjob(old, t, namespace=ns) for t in expand(old)}
    server = Server(live_manifests)
    objects = []
    for name, m in live_manifests.items():
        generation = 1
        if edit and name in edit:
            edit[name](server.specs[name])
            generation = 2
        objects.append(live(m, generation=generation, legacy=legacy))
    trials = expand(new)
    desired = {t.name: tfjob(new, t, namespace=ns) for t in trials}
    observed = with_specs(desired, trials, Observed(objects=tuple(objects)), server.fetch)
    plan = compute_plan(sweep=new.name, namespace=ns, backend="kubernetes", target="t", spec_digest="",
                        trials=trials, desired_trials=desired, desired_support=[], observed=observed)
    # What a diff of each trial against its fully fetched live object says.
    each = {name: drift(desired[name], live(live_manifests[name], with_spec=True, generation=2)
                        if not edit or name not in edit else
                        LiveObject(**{**live(live_manifests[name]).__dict__, "spec": server.specs[name],
                                      "generation": 2}))
            for name in desired}
    return plan, server, each


def test_a_changed_image_fetches_one_tfjob_and_every_trial_shows_the_change() -> None:
    plan, server, each = plan_for(spec(), spec("image: sweepctl/tf-paint:9.9.9\n"))
    assert len(server.fetched) == 1
    assert len(plan.drifted) == 100
    for change in plan.drifted:
        assert change.drift == (
            "spec.tfReplicaSpecs.Chief.template.spec.containers[0].image: "
            "spec 'sweepctl/tf-paint:9.9.9', cluster 'sweepctl/tf-paint:0.1.0'",)
        assert change.drift == each[change.name]


def test_changed_fixed_args_are_shown_with_each_trials_own_values() -> None:
    plan, server, each = plan_for(spec(), spec(epochs=40))
    assert len(server.fetched) == 1
    assert {c.drift for c in plan.drifted} == {
        ("spec.tfReplicaSpecs.Chief.template.spec.containers[0].args[1]: spec '40', cluster '30'",)}
    for change in plan.drifted:
        assert change.drift == each[change.name]


def test_a_trial_someone_edited_is_fetched_and_diffed_on_its_own() -> None:
    edited = expand(spec())[7].name

    def set_image(body: dict) -> None:
        body["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["image"] = "someone/else:1"

    plan, server, each = plan_for(spec(), spec("image: sweepctl/tf-paint:9.9.9\n"), edit={edited: set_image})
    assert edited in server.fetched and len(server.fetched) == 2  # the edited one, and one for all the others
    by_name = {c.name: c for c in plan.drifted}
    assert by_name[edited].drift == (
        "spec.tfReplicaSpecs.Chief.template.spec.containers[0].image: "
        "spec 'sweepctl/tf-paint:9.9.9', cluster 'someone/else:1'",)


def test_objects_without_the_sweep_template_annotation_are_each_fetched() -> None:
    plan, server, each = plan_for(spec(n=3), spec("image: x:1\n", n=3), legacy=True)
    assert len(server.fetched) == 12
    assert all(c.drift == each[c.name] for c in plan.drifted) and len(plan.drifted) == 12


def test_a_first_member_not_made_by_the_template_gets_the_group_fetched() -> None:
    first = expand(spec(n=3))[0].name

    def odd_args(body: dict) -> None:
        body["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["args"] = ["--whatever"]

    old, new = spec(n=3), spec("image: x:1\n", n=3)
    live_manifests = {t.name: tfjob(old, t, namespace="ns") for t in expand(old)}
    server = Server(live_manifests)
    odd_args(server.specs[first])  # still generation 1: as if created so by hand, with sweepctl's labels
    trials = expand(new)
    desired = {t.name: tfjob(new, t, namespace="ns") for t in trials}
    observed = with_specs(desired, trials, Observed(objects=tuple(live(m) for m in live_manifests.values())),
                          server.fetch)
    assert sorted(server.fetched) == sorted(live_manifests)
    plan = compute_plan(sweep="s", namespace="ns", backend="kubernetes", target="t", spec_digest="", trials=trials,
                        desired_trials=desired, desired_support=[], observed=observed)
    odd = {c.name: c for c in plan.drifted}[first]
    assert any("args" in line for line in odd.drift)


def test_every_trial_of_a_spec_has_the_same_template() -> None:
    s = spec()
    templates = set()
    for t in expand(s):
        m = tfjob(s, t, namespace="ns")
        templates.add(repr(trial_template(m["spec"], name=t.name, trial_id=t.id, flags=t.flags())))
        assert m["metadata"]["annotations"][TEMPLATE_HASH] != m["metadata"]["annotations"][SWEEP_TEMPLATE_HASH]
    assert len(templates) == 1
