"""Plans: what apply would do to make the cluster (or local state) match the spec.

A plan is plain data computed from the desired objects and what a backend
observed; views only render it and backends only execute it. Apply creates and
deletes, and never touches a trial whose template drifted unless asked to:
recreating a trial throws away its training.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sweepctl.core.diagnostics import Diagnostic, SweepctlError, did_you_mean
from sweepctl.core.manifests import (
    COMMAND,
    SWEEP_TEMPLATE_HASH,
    TEMPLATE_HASH,
    TRIAL,
    fill_slots,
    template_hash,
    trial_template,
)
from sweepctl.core.spec import Scalar, flag_value
from sweepctl.core.trials import Trial

__all__ = ["RESUMABLE", "PRUNED", "Action", "LiveObject", "Observed", "Change", "Plan", "as_recorded", "compute_plan",
           "fingerprint", "drift", "needs_spec", "with_specs"]


# Local trials that were queued or running when their apply was interrupted: the
# next apply runs them (again), as it would create a missing TFJob. A trial still
# queued by a running apply is not: that apply will start it.
RESUMABLE = frozenset({"Interrupted"})
# The state of a trial that `sweepctl prune` removed: plans never re-add it
# until `apply --revive` brings it back.
PRUNED = "pruned"


class Action(str, Enum):
    """What apply does to one object; the value is the glyph Terraform prints."""

    CREATE = "+"
    DELETE = "-"
    REPLACE = "-/+"
    UPDATE = "~"
    NOOP = " "


@dataclass(frozen=True, kw_only=True)
class LiveObject:
    """One object of the sweep as a backend saw it."""

    kind: str
    name: str
    uid: str
    generation: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    # None: not fetched (listing sent metadata only); see needs_spec.
    spec: Mapping[str, Any] | None = field(default_factory=dict)
    state: str = ""
    params: Mapping[str, Scalar] = field(default_factory=dict)
    # Spec fields that field managers other than sweepctl set (metadata.managedFields):
    # manager -> its fieldsV1 tree under "f:spec". Someone else's field is drift.
    foreign: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Observed:
    """Everything a backend saw of one sweep: its objects, and trials pruned from it.

    `pruned` maps a pruned trial's name to what was recorded when it was pruned
    (its params and last metric), for `status` to keep listing it.
    """

    objects: tuple[LiveObject, ...] = ()
    pruned: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Change:
    """One object and what apply does to it.

    `drift` lists field-level differences between spec and live object; a
    drifted trial keeps Action.NOOP unless replacement was asked for.
    """

    action: Action
    kind: str
    name: str
    trial_id: str | None = None
    params: Mapping[str, Scalar] = field(default_factory=dict)
    state: str = ""
    drift: tuple[str, ...] = ()
    manifest: Mapping[str, Any] | None = None
    uid: str | None = None
    # The live object's kind where it is not `kind`: a trial moving from a
    # TFJob to a TrainJob (or back) is replaced across kinds.
    live_kind: str = ""


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The full plan for one sweep, and what it was computed from.

    `fingerprint` summarises what the backend saw; a saved plan is applied only
    while the live sweep still has that fingerprint. `prune` maps the trials this
    plan deletes to prune them to the records backends keep (before deleting),
    so that later plans never re-add them.
    """

    sweep: str
    namespace: str
    backend: str
    target: str
    spec_digest: str
    fingerprint: str
    trials: tuple[Change, ...]
    support: tuple[Change, ...] = ()
    spec_path: str | None = None
    destroy: bool = False
    prune: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Random and TPE search (core.search): the budget as it stands, and the
    # digest of the history TPE proposed from; a saved plan whose history
    # changed is stale.
    search: Mapping[str, Any] = field(default_factory=dict)
    history: str = ""
    # What the target lacks that creating the trials needs (a missing
    # ClusterTrainingRuntime, say), each a sentence with what to do: apply
    # refuses a plan that adds trials while any is missing.
    requires: tuple[str, ...] = ()

    def _trials(self, *actions: Action) -> list[Change]:
        return [c for c in self.trials if c.action in actions]

    @property
    def add(self) -> list[Change]:
        return self._trials(Action.CREATE)

    @property
    def delete(self) -> list[Change]:
        return self._trials(Action.DELETE)

    @property
    def replace(self) -> list[Change]:
        return self._trials(Action.REPLACE)

    @property
    def unchanged(self) -> list[Change]:
        return [c for c in self.trials if c.action is Action.NOOP and not c.drift and c.state != PRUNED]

    @property
    def pruned(self) -> list[Change]:
        """Trials of the spec that were pruned: listed, never re-added."""
        return [c for c in self.trials if c.action is Action.NOOP and c.state == PRUNED]

    @property
    def drifted(self) -> list[Change]:
        return [c for c in self.trials if c.drift]

    @property
    def summary(self) -> dict[str, int]:
        """Counts of trials: a replaced trial is one change."""
        return {"add": len(self.add), "change": len(self.replace), "destroy": len(self.delete)}

    @property
    def support_changes(self) -> list[Change]:
        return [c for c in self.support if c.action is not Action.NOOP]

    @property
    def blocked(self) -> bool:
        """Whether apply must refuse: it would create trials that something missing (`requires`) keeps from running."""
        return bool(self.requires) and bool(self.add or self.replace)

    def check_requirements(self) -> None:
        """Refuse a blocked plan before anything is changed."""
        if self.blocked:
            raise SweepctlError([Diagnostic(message=need) for need in self.requires[:-1]]
                                + [Diagnostic(message=self.requires[-1], hint="nothing was changed; plan again "
                                              "once it is there")])

    @property
    def has_changes(self) -> bool:
        """Whether apply would do anything at all (drift left alone is no change)."""
        return any(self.summary.values()) or bool(self.support_changes)


def fingerprint(observed: Observed) -> str:
    """What a plan depends on: which objects exist, by uid, at which spec generation.

    Status updates (a trial going from Running to Succeeded) do not change it,
    so a saved plan stays valid while trials make progress.
    """
    lines = sorted(f"{o.kind}/{o.name}/{o.uid}/{o.generation}" for o in observed.objects)
    lines += sorted(f"pruned/{name}" for name in observed.pruned)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:20]


def _contains(have: Any, want: Any) -> bool:
    """Whether `have` holds everything `want` sets (servers add defaults)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _contains(have[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(have) == len(want) and all(map(_contains, have, want))
    return bool(have == want and isinstance(have, bool) == isinstance(want, bool))


def _same_template(desired: Mapping[str, Any], live: LiveObject) -> bool:
    return live.annotations.get(TEMPLATE_HASH) == desired["metadata"]["annotations"][TEMPLATE_HASH]


def _untouched(desired: Mapping[str, Any], live: LiveObject) -> bool:
    """Created from the desired template and never changed since (generation 1, by nobody else): no drift."""
    return live.generation == 1 and not live.foreign and _same_template(desired, live)


def needs_spec(desired: Mapping[str, Any], live: LiveObject) -> bool:
    """Whether diffing this object needs its live spec, which was not fetched.

    Not when it is untouched: that is every object of a sweep that has not
    drifted, so a plan fetches only the few that may have.
    """
    return live.spec is None and not _untouched(desired, live)


def _group(desired: Mapping[str, Any], live: LiveObject) -> tuple[str, str] | None:
    """The (live, desired) sweep-template pair of a trial that shares its difference with others.

    A live TFJob made from one sweep template and never changed since
    (generation 1, by nobody else) is that template filled with its trial's
    values; so is the desired one. Their difference is the templates' (the
    trial's own values sit in slots), the same for every such trial.
    """
    if live.generation != 1 or live.foreign or _same_template(desired, live):
        return None
    have = live.annotations.get(SWEEP_TEMPLATE_HASH)
    want = desired["metadata"]["annotations"].get(SWEEP_TEMPLATE_HASH)
    return (have, want) if have and want else None


def _template_drift(desired: Mapping[str, Any], live: LiveObject, trial: Trial) -> tuple[str, ...] | None:
    """The drift of a trial's template pair, with slots for its own values; None: not made by a template."""
    assert live.spec is not None
    slots = {"name": trial.name, "trial_id": trial.id, "flags": trial.flags(), "params": trial.params,
             "unpassed": trial.unpassed}
    want = trial_template(desired["spec"], **slots, command=desired["metadata"]["annotations"].get(COMMAND))
    have = trial_template(live.spec, **slots, command=live.annotations.get(COMMAND))
    if want is None or have is None:
        return None
    return _diff(want, have, made_from=live.annotations.get(SWEEP_TEMPLATE_HASH), foreign={}) or (
        f"metadata.annotations.{TEMPLATE_HASH}: made from another template",)


def with_specs(desired: Mapping[str, Mapping[str, Any]], trials: Iterable[Trial], observed: Observed,
               fetch: Callable[[list[str]], Mapping[str, Mapping[str, Any]]]) -> Observed:
    """`observed` with the live specs that diffing it against `desired` needs, fetched by name.

    Every object that may have drifted needs its spec, except that trials
    sharing a template pair (_group) need only one of theirs: a sweep whose
    image changed fetches one TFJob, not all. A group whose first member does
    not hold its trial's values where they belong has its other members fetched too.
    """
    by_name = {t.name: t for t in trials}
    first: dict[tuple[str, str], LiveObject] = {}
    wanted: list[str] = []
    for o in observed.objects:
        manifest = desired.get(o.name)
        if manifest is None or manifest["kind"] != o.kind or not needs_spec(manifest, o):
            continue
        key = _group(manifest, o) if o.name in by_name else None
        if key is None:
            wanted.append(o.name)
        elif key not in first:
            first[key] = o
            wanted.append(o.name)
    observed = _filled(observed, fetch(wanted) if wanted else {})
    filled = {o.name: o for o in observed.objects}
    broken = {key for key, o in first.items()
              if filled[o.name].spec is None
              or _template_drift(desired[o.name], filled[o.name], by_name[o.name]) is None}
    rest = [o.name for o in observed.objects
            if o.spec is None and o.name in desired and o.name in by_name and _group(desired[o.name], o) in broken
            ] if broken else []
    return _filled(observed, fetch(rest)) if rest else observed


def _filled(observed: Observed, specs: Mapping[str, Mapping[str, Any]]) -> Observed:
    if not specs:
        return observed
    import dataclasses

    return dataclasses.replace(observed, objects=tuple(
        dataclasses.replace(o, spec=specs[o.name]) if o.name in specs else o for o in observed.objects))


def drift(desired: Mapping[str, Any], live: LiveObject) -> tuple[str, ...]:
    """Field-level differences between a desired object's spec and the live one.

    Fast path: same template hash, no field set by another manager, and
    either the object's spec was never changed (generation 1) or every desired
    field is present and equal. Otherwise deepdiff says what differs. Fields
    only the cluster has count as drift when another field manager set them
    (metadata.managedFields), or when the spec itself changed (the hash
    differs); not when the server added them as defaults.
    """
    want = desired["spec"]
    same_template = _same_template(desired, live)
    if not live.foreign and (_untouched(desired, live) or (same_template and _contains(live.spec, want))):
        return ()
    if live.spec is None:  # callers fetch it first (needs_spec); never guess equal
        return (f"spec: made from template {live.annotations.get(TEMPLATE_HASH)} or changed since (not fetched)",)
    lines = _diff(want, live.spec, made_from=live.annotations.get(TEMPLATE_HASH), foreign=live.foreign)
    if not lines and not same_template:
        lines.append(f"metadata.annotations.{TEMPLATE_HASH}: made from another template")
    return tuple(lines)


def _diff(want: Mapping[str, Any], have: Mapping[str, Any], *, made_from: str | None,
          foreign: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What differs between want and have, a live spec made from the spec whose template hash is made_from.

    A field only `have` has is drift when another field manager set it; else
    when it was not a default the server filled in, which shows when have
    without such fields hashes to made_from.
    """
    from deepdiff import DeepDiff  # only for objects that differ

    diff = DeepDiff(dict(want), dict(have), verbose_level=2)
    lines: list[str] = []
    added: list[list[Any]] = []
    unexplained: list[str] = []
    for report, items in diff.tree.items():
        for item in items:
            steps = item.path(output_format="list")
            path = "spec" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in steps)
            if report == "dictionary_item_added":
                added.append(steps)
                owners = [m for m, tree in sorted(foreign.items()) if _owns(tree, steps, have)]
                if owners:
                    lines.append(f"{path}: added in the cluster by {', '.join(owners)}: {_short(item.t2)}")
                else:
                    unexplained.append(f"{path}: added in the cluster: {_short(item.t2)}")
            elif report == "dictionary_item_removed":
                lines.append(f"{path}: missing in the cluster (spec: {_short(item.t1)})")
            elif report in ("iterable_item_added", "iterable_item_removed"):
                side = "cluster" if report.endswith("added") else "spec"
                lines.append(f"{path}: only in the {side}: {_short(item.t2 if side == 'cluster' else item.t1)}")
            else:
                lines.append(f"{path}: spec {_short(item.t1)}, cluster {_short(item.t2)}")
    if unexplained and not (made_from and _without(have, added) == made_from):
        lines += unexplained
    return sorted(lines)


def _without(spec: Mapping[str, Any], paths: list[list[Any]]) -> str | None:
    """The template hash of spec less the fields at paths (each ends in a key)."""
    import copy

    out = copy.deepcopy(dict(spec))
    for steps in paths:
        node: Any = out
        for step in steps[:-1]:
            node = node[step]
        if not isinstance(node, dict):
            return None
        node.pop(steps[-1], None)
    return template_hash(out)


def _owns(tree: Mapping[str, Any], steps: list[Any], spec: Any) -> bool:
    """Whether a managedFields tree (fieldsV1, from under f:spec) holds the field at this path of spec."""
    import json

    node: Any = tree
    value = spec
    for step in steps:
        if not isinstance(node, Mapping) or not node:
            return isinstance(node, Mapping)  # {}: the manager owns the whole field above
        if isinstance(step, int):
            item = value[step] if isinstance(value, list) and step < len(value) else None
            match = node.get(f"i:{step}")
            for key, sub in node.items():
                if match is None and key.startswith("k:") and isinstance(item, Mapping):
                    try:
                        wanted = json.loads(key[2:])
                    except ValueError:
                        continue
                    if all(item.get(k) == v for k, v in wanted.items()):
                        match = sub
            node, value = match, item
        else:
            node, value = node.get(f"f:{step}"), value.get(step) if isinstance(value, Mapping) else None
        if node is None:
            return False
    return True


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _values(params: Mapping[str, Scalar]) -> frozenset[tuple[str, str]]:
    return frozenset((k, flag_value(v)) for k, v in params.items())


def _show(params: Mapping[str, Any], keys: Iterable[str]) -> str:
    return ", ".join(f"{k}={flag_value(params[k])}" for k in keys)


def as_recorded(trials: Sequence[Trial], observed: Observed, *, source: str | None = None) -> list[Trial]:
    """The spec's trials, checked against the values their live and pruned records say they ran with.

    A default names the value trials had before its hyperparameter was swept,
    so a trial recorded without that hyperparameter is the spec's trial at the
    default, and its flags stay as they ran (`unpassed`). A spec that would put
    a trial's results under other values (a default changed after trials ran
    with it) is refused, with every such trial: what a trial shows is what it ran.
    """
    if not trials:
        return []
    by_name = {t.name: t for t in trials}
    by_values: dict[frozenset[tuple[str, str]], Trial] = {}  # built when first needed: most plans never do
    keys = set(trials[0].params)
    defaults = {k: v for t in trials for k, v in t.params.items() if k not in t.identity}
    records: dict[str, Mapping[str, Any]] = {n: r.get("params") or {} for n, r in observed.pruned.items()}
    records.update({o.name: o.params for o in observed.objects if TRIAL in o.labels})
    problems: list[Diagnostic] = []
    out = dict(by_name)
    for name, ran in records.items():
        if not ran:
            continue  # nothing recorded (an unreadable record): nothing to compare
        trial = by_name.get(name)
        if trial is not None and ran == trial.params and all(type(v) is type(ran[k]) for k, v in trial.params.items()):
            continue  # the common case: recorded exactly as the spec has it (True == 1, hence the types)
        if trial is not None:
            differ = [k for k in trial.params if k in ran and flag_value(ran[k]) != flag_value(trial.params[k])]
            if differ:
                problems.append(Diagnostic(file=source, message=f"trial {name} ran with {_show(ran, differ)}, "
                                           f"but this spec would show it as {_show(trial.params, differ)}"))
                continue
            missing = frozenset(k for k in trial.params if k not in ran and k not in trial.identity)
            if missing:
                out[name] = dataclasses.replace(trial, unpassed=missing)
        completed = {**{k: defaults[k] for k in keys - set(ran) if k in defaults}, **ran}
        if not by_values:
            by_values.update((_values(t.params), t) for t in trials)
        same = by_values.get(_values(completed)) if set(completed) == keys else None
        if same is not None and same.name != name:
            problems.append(Diagnostic(file=source, message=f"trial {name} ran with {_show(ran, sorted(ran))}, "
                                       f"which this spec names {same.name}"))
    if problems:
        raise SweepctlError([*problems[:-1], dataclasses.replace(problems[-1], hint=(
            "a default is the value trials had before the hyperparameter was swept, so it cannot change once "
            "trials ran with it: set it back to the value they ran with, or destroy the sweep to start over"))])
    return [out[t.name] for t in trials]


def compute_plan(
    *,
    sweep: str,
    namespace: str,
    backend: str,
    target: str,
    spec_digest: str,
    trials: Iterable[Trial],
    desired_trials: Mapping[str, Mapping[str, Any]],
    desired_support: Iterable[Mapping[str, Any]],
    observed: Observed,
    replace: Collection[str] = (),
    replace_drifted: bool = False,
    destroy: bool = False,
    spec_path: str | None = None,
    revive: Collection[str] = (),
) -> Plan:
    """Diff desired objects against observed ones.

    `desired_trials` maps trial name to its manifest; `replace` names trials
    (by name or id) to recreate; `revive` names pruned trials to create again
    (their CREATE carries the state PRUNED, so backends drop their record).
    Raises SweepctlError for a `replace` that names no live trial, or a
    `revive` that names no pruned one.
    """
    trials = list(trials)
    live_trials = {o.name: o for o in observed.objects if TRIAL in o.labels}
    live_support = {(o.kind, o.name): o for o in observed.objects if TRIAL not in o.labels}
    wanted = set()
    for name in replace:
        match = [t for t in trials if name in (t.name, t.id) and t.name in live_trials]
        if not match:
            candidates = [t.name for t in trials if t.name in live_trials]
            raise SweepctlError(
                f"--replace {name}: no such trial in the cluster",
                hint=did_you_mean(name, candidates) or "see `sweepctl plan` for the trials' names",
            )
        wanted.add(match[0].name)
    revived = set()
    for name in revive:
        match = [t for t in trials if name in (t.name, t.id) and t.name in observed.pruned]
        if not match:
            candidates = [t.name for t in trials if t.name in observed.pruned and t.name not in live_trials]
            raise SweepctlError(
                f"--revive {name}: no such pruned trial in sweep {sweep}",
                hint=did_you_mean(name, candidates)
                or ("pruned trials: " + ", ".join(candidates) if candidates else "no trial of this spec is pruned"),
            )
        revived.add(match[0].name)

    # Trials that share a template pair share their drift: computed once, from a fetched member.
    by_name = {t.name: t for t in trials}
    groups: dict[str, tuple[str, str]] = {}  # trial name -> its template pair
    group_members: dict[tuple[str, str], list[LiveObject]] = {}
    for live in live_trials.values():
        if live.name in by_name and desired_trials.get(live.name, {}).get("kind") == live.kind:
            key = _group(desired_trials[live.name], live)
            if key is not None:
                groups[live.name] = key
                group_members.setdefault(key, []).append(live)
    shared: dict[tuple[str, str], tuple[str, ...] | None] = {}

    changes: list[Change] = []
    if not destroy:
        for trial in trials:
            manifest = desired_trials[trial.name]
            kind = manifest["kind"]
            live = live_trials.pop(trial.name, None)
            if live is None or live.state in RESUMABLE:
                if live is None and trial.name in observed.pruned and trial.name not in revived:
                    # Pruned trials stay pruned until revived; listed so the plan says why.
                    changes.append(Change(action=Action.NOOP, kind=kind, name=trial.name, trial_id=trial.id,
                                          params=trial.params, state=PRUNED))
                    continue
                state = PRUNED if trial.name in revived else live.state if live else ""
                changes.append(
                    Change(action=Action.CREATE, kind=kind, name=trial.name, trial_id=trial.id,
                           params=trial.params, manifest=manifest, state=state,
                           uid=live.uid if live else None)
                )
                continue
            if live.kind != kind:  # the spec's kubernetes.kind changed: a new object, never a silent one
                action = Action.REPLACE if trial.name in wanted or replace_drifted else Action.NOOP
                changes.append(Change(action=action, kind=kind, name=trial.name, trial_id=trial.id,
                                      params=trial.params, state=live.state, uid=live.uid, live_kind=live.kind,
                                      drift=(f"kind: spec {kind}, cluster {live.kind}",),
                                      manifest=manifest if action is Action.REPLACE else None))
                continue
            key = groups.get(trial.name)
            if key is not None and key not in shared:
                first = next((o for o in group_members.get(key, ()) if o.spec is not None), None)
                shared[key] = _template_drift(desired_trials[first.name], first, by_name[first.name]) \
                    if first is not None else None
            lines = shared.get(key) if key is not None else None
            differences = tuple(fill_slots(line, name=trial.name, trial_id=trial.id, flags=trial.flags())
                                for line in lines) if lines is not None else drift(manifest, live)
            action = Action.REPLACE if trial.name in wanted or (differences and replace_drifted) else Action.NOOP
            changes.append(
                Change(action=action, kind=kind, name=trial.name, trial_id=trial.id, params=trial.params,
                       state=live.state, drift=differences, uid=live.uid,
                       manifest=manifest if action is Action.REPLACE else None)
            )
    for live in live_trials.values():
        changes.append(
            Change(action=Action.DELETE, kind=live.kind, name=live.name, trial_id=live.labels.get(TRIAL),
                   params=live.params, state=live.state, uid=live.uid)
        )

    support: list[Change] = []
    for manifest in [] if destroy else desired_support:
        key = (manifest["kind"], manifest["metadata"]["name"])
        live = live_support.pop(key, None)
        if live is None:
            support.append(Change(action=Action.CREATE, kind=key[0], name=key[1], manifest=manifest))
            continue
        differences = drift(manifest, live)
        support.append(
            Change(action=Action.UPDATE if differences else Action.NOOP, kind=key[0], name=key[1],
                   drift=differences, uid=live.uid, manifest=manifest if differences else None)
        )
    support += [Change(action=Action.DELETE, kind=o.kind, name=o.name, uid=o.uid) for o in live_support.values()]

    return Plan(
        sweep=sweep,
        namespace=namespace,
        backend=backend,
        target=target,
        spec_digest=spec_digest,
        fingerprint=fingerprint(observed),
        trials=tuple(changes),
        support=tuple(support),
        spec_path=spec_path,
        destroy=destroy,
    )
