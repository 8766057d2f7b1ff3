"""The sweep spec's JSON Schema: the one place where fields, types and defaults live.

The loader validates against it, fills defaults from it, and `sweepctl schema`
publishes it for editors (schema/sweep.schema.json is a generated copy that a
test keeps in sync).
"""

from __future__ import annotations

from typing import Any

from sweepctl import __version__
from sweepctl.core.searchschema import EARLY_STOPPING, RANGE, SEARCH

__all__ = ["SCHEMA", "SCHEMA_ID", "DNS1035_SWEEP", "DEFAULT_MAX_TRIALS", "TRIAL_KINDS", "DEFAULT_RUNTIME"]

SCHEMA_ID = "https://sweepctl.dev/schema/sweep.schema.json"
DEFAULT_MAX_TRIALS = 1000
# A sweep name prefixes every object name (TFJobs are limited to 63 characters),
# so it is capped at 40, as Katib caps experiment names.
DNS1035_SWEEP = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$"
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# camelCase for tf-paint (spec.py refuses '_' there: names become --kebab-case flags);
# a user's own command (`command`) may also take snake_case names, passed as written.
HYPERPARAM_NAME = r"^[a-zA-Z][a-zA-Z0-9_]*$"
# What a trial is on Kubernetes: a Kubeflow training operator v1 TFJob, or a
# Kubeflow Trainer v2 TrainJob on a ClusterTrainingRuntime.
TRIAL_KINDS = ("TFJob", "TrainJob")
# sweepctl's own single-process runtime (`sweepctl runtime` prints it).
DEFAULT_RUNTIME = "sweepctl-tensorflow"


_SCALAR: dict[str, Any] = {"type": ["number", "string", "boolean"]}
_QUANTITY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": ["string", "number"]},
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "sweepctl sweep spec",
    "description": "A hyperparameter sweep: a grid of trainer runs, planned and applied like Terraform.",
    "type": "object",
    "required": ["name", "hyperParamValues"],
    "additionalProperties": False,
    "properties": {
        "name": {
            "description": "The sweep's name: a DNS-1035 label of at most 40 characters "
            "(lowercase letters, digits and '-', starting with a letter).",
            "type": "string",
            "pattern": DNS1035_SWEEP,
        },
        "namespace": {
            "description": "Kubernetes namespace. Default: the --namespace flag, else the "
            "current kubeconfig context's namespace, else 'default'.",
            "type": ["string", "null"],
            "pattern": DNS1123_LABEL,
            "default": None,
        },
        "backend": {
            "description": "Where trials run: 'local' (processes on this machine) or "
            "'kubernetes' (Kubeflow TFJobs or TrainJobs: see 'kubernetes'). The --backend flag overrides it.",
            "enum": ["local", "kubernetes"],
            "default": "local",
        },
        "image": {
            "description": "Trainer container image (Kubernetes). Default: the image built "
            "from this project's Dockerfile, sweepctl/tf-paint:<version>.",
            "type": "string",
            "minLength": 1,
            "default": f"sweepctl/tf-paint:{__version__}",
        },
        "useGPU": {
            "description": "Request one nvidia.com/gpu per trial (Kubernetes).",
            "type": "boolean",
            "default": False,
        },
        "command": {
            "description": "Your own trainer's argv, e.g. [python, train.py, \"${args}\"]. Locally it runs in "
            "the spec file's folder, never through a shell; on Kubernetes it is the container's command (in "
            "'image'). ${NAME} is a hyperparameter's value, ${args} (a token of its own) every hyperparameter "
            "as --name=value, ${logDir} the trial's log folder, $${ a literal '${'. Every hyperparameter must "
            "reach a placeholder. Without it: the tf-paint trainer, with --kebab-case flags and --log-dir.",
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
        },
        "args": {
            "description": "Fixed extra trainer arguments, the same for every trial. With 'command', "
            "appended to it, placeholders included.",
            "type": "array",
            "items": {"type": "string"},
            "default": [],
        },
        "kubernetes": {
            "description": "What each trial is on Kubernetes. TFJob (Kubeflow training operator v1, "
            "kubeflow.org/v1) or TrainJob (Kubeflow Trainer v2, trainer.kubeflow.org/v1alpha1). "
            "Changing it on a live sweep shows every trial as drift; --replace-drifted moves them.",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "kind": {"enum": list(TRIAL_KINDS), "default": "TFJob"},
                "runtime": {
                    "description": "TrainJob only: the ClusterTrainingRuntime the trials run on. The "
                    f"default, {DEFAULT_RUNTIME}, is sweepctl's own single-process runtime (`sweepctl "
                    "runtime` prints it, `sweepctl runtime --apply` creates it). Another runtime needs a "
                    "replicated job whose container is named 'node'.",
                    "type": "string",
                    "pattern": r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
                    "default": DEFAULT_RUNTIME,
                },
            },
            "default": {},
        },
        "resources": {
            "description": "Container resources of each trial (Kubernetes).",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "requests": {**_QUANTITY, "default": {"cpu": "1", "memory": "1Gi"}},
                "limits": {**_QUANTITY, "default": {"memory": "2Gi"}},
            },
            "default": {},
        },
        "logVolume": {
            "description": "The shared volume where every trial writes its TensorBoard logs "
            "and TensorBoard reads them (a ReadWriteMany PVC that must exist).",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "claimName": {"type": "string", "pattern": DNS1123_LABEL, "default": "sweepctl-logs"},
                "mountPath": {"type": "string", "pattern": r"^/", "default": "/tmp/tensorflow"},
            },
            "default": {},
        },
        "tensorboard": {
            "description": "The sweep's TensorBoard (Kubernetes): one Deployment and Service.",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "image": {"type": "string", "minLength": 1, "default": "tensorflow/tensorflow:2.21.0"},
                "serviceType": {
                    "description": "ClusterIP keeps it inside the cluster. NodePort exposes it on "
                    "every node and then requires allowNodePort: true; LoadBalancer exposes it and "
                    "then requires loadBalancerSourceRanges.",
                    "enum": ["ClusterIP", "NodePort", "LoadBalancer"],
                    "default": "ClusterIP",
                },
                "allowNodePort": {
                    "description": "Required (true) with a NodePort TensorBoard: TensorBoard has no "
                    "authentication, so it is exposed only when the spec says so.",
                    "type": "boolean",
                    "default": False,
                },
                "loadBalancerSourceRanges": {
                    "description": "CIDRs allowed to reach a LoadBalancer TensorBoard.",
                    "type": "array",
                    "items": {"type": "string", "pattern": r"^[0-9a-fA-F:.]+/[0-9]{1,3}$"},
                    "default": [],
                },
            },
            "default": {},
        },
        "objective": {
            "description": "The metric that ranks trials: `<run subfolder>/<tag>` of the trial's event files "
            "(a plain tag: its own folder), or a name in the trainer's stdout lines.",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "metric": {"type": "string", "minLength": 1, "default": "loss"},
                "goal": {"enum": ["minimize", "maximize"], "default": "minimize"},
                # No defaults: an existing spec's digest stays what it was.
                "source": {"description": "Where the metric is read: event files (default) or stdout lines.",
                           "enum": ["events", "stdout"]},
                "pattern": {"description": "stdout only: a regular expression with `name` and `value` groups.",
                            "type": "string", "minLength": 1},
            },
            "default": {},
        },
        "local": {
            "description": "The local backend: how many trials run at once, and the "
            "threads each gets (passed as --threads).",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "parallelism": {
                    "description": "Default: CPU cores divided by threadsPerTrial, at least 1.",
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "default": None,
                },
                "threadsPerTrial": {"type": "integer", "minimum": 1, "default": 1},
            },
            "default": {},
        },
        "defaults": {
            "description": "Per-hyperparameter defaults: the value trials had before the "
            "hyperparameter was swept (the trainer's own default). A trial at the default keeps "
            "its name, so adding a hyperparameter keeps existing trials; new trials are always "
            "passed the flag. A default cannot change once trials ran with it.",
            "type": "object",
            "additionalProperties": _SCALAR,
            "default": {},
        },
        "search": SEARCH,
        "earlyStopping": EARLY_STOPPING,
        "hyperParamValues": {
            "description": "Hyperparameter name (camelCase, becomes --kebab-case; with 'command' also "
            "snake_case, passed as written) to the list "
            "of values to try, or (random and tpe search) a range {min, max, scale, type}. "
            "A grid search tries every combination of the lists.",
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": HYPERPARAM_NAME},
            "additionalProperties": {
                "type": ["array", "object"],
                "if": {"type": "object"},
                "then": RANGE,
                "else": {"minItems": 1, "uniqueItems": True, "items": _SCALAR},
            },
        },
    },
}
