"""What TensorBoard's HParams dashboard shows of a sweep: its experiment and its trials' sessions, as data.

Pure: backends write it (backends/hparams_writer.py, locally and in the
sweep's TensorBoard pod on Kubernetes). The data is JSON, so it can travel in
a ConfigMap, and keeps each value's type (bool, number, string).
"""

from __future__ import annotations

from typing import Any

from sweepctl.core.plan import Action, Plan
from sweepctl.core.spec import Spec

__all__ = ["experiment", "sessions", "hparams_data"]


def experiment(spec: Spec) -> dict[str, Any]:
    """The sweep's hyperparameters with their domains (a list: discrete; a range: interval) and the objective."""
    hparams: list[dict[str, Any]] = []
    for hp in spec.hyper_params:
        if hp.range is not None:
            hparams.append({"name": hp.name, "min": hp.range.low, "max": hp.range.high,
                            "integer": hp.range.integer})
            continue
        values = list(hp.values)
        # A trial that ran before the hyperparameter was swept shows its default: keep it in the domain,
        # or the dashboard's default filter would hide that trial.
        if hp.default is not None and not any(type(v) is type(hp.default) and v == hp.default for v in values):
            values.append(hp.default)
        hparams.append({"name": hp.name, "values": values})
    return {"hparams": hparams, "metrics": [spec.metric]}


def sessions(plan: Plan) -> dict[str, dict[str, Any]]:
    """Every trial the plan keeps or adds (pruned ones included), with its values and its state as planned."""
    out = {}
    for change in plan.trials:
        if change.action is Action.DELETE:
            continue
        state = "" if change.action in (Action.CREATE, Action.REPLACE) else change.state
        out[change.name] = {"params": dict(change.params), "state": state}
    return out


def hparams_data(spec: Spec, plan: Plan) -> dict[str, Any]:
    """What hparams_writer.sync takes: the experiment, and the sessions of a plan of that spec."""
    return {"experiment": experiment(spec), "sessions": sessions(plan)}
