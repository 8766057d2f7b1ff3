"""Kubernetes objects a sweep wants: one TFJob or TrainJob per trial, plus one TensorBoard.

Every object carries the labels that mark it as this sweep's, so that sweepctl
lists, changes and deletes only what it created, and an annotation with the hash
of its rendered spec, so that drift can be told from an unchanged object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import orjson

from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.spec import Spec
from sweepctl.core.trials import Trial

__all__ = [
    "hparams_configmap",
    "hparams_configmap_name",
    "MANAGED_BY",
    "SWEEP",
    "TRIAL",
    "COMPONENT",
    "SHARD",
    "SHARDS",
    "shard_of",
    "PARAMS",
    "COMMAND",
    "FAILURE",
    "TEMPLATE_HASH",
    "SWEEP_TEMPLATE_HASH",
    "trial_template",
    "fill_slots",
    "TFJOB_GROUP",
    "TFJOB_VERSION",
    "TFJOB_PLURAL",
    "sweep_selector",
    "template_hash",
    "tfjob",
    "trainjob",
    "trial_object",
    "TRIAL_PATHS",
    "TRAINER_GROUP",
    "TRAINER_VERSION",
    "RUNTIME_PLURAL",
    "training_runtime",
    "TRAINJOB_MAX_NAME",
    "check_trial_names",
    "tensorboard_name",
    "TENSORBOARD_SERVICE_PORT",
    "tensorboard_deployment",
    "tensorboard_service",
    "log_dir",
    "local_trial",
]

MANAGED_BY = "app.kubernetes.io/managed-by"
SWEEP = "sweepctl.dev/sweep"
TRIAL = "sweepctl.dev/trial"
COMPONENT = "app.kubernetes.io/component"
SHARD = "sweepctl.dev/shard"
PARAMS = "sweepctl.dev/params"
TEMPLATE_HASH = "sweepctl.dev/template-hash"
# A command sweep's trial: its command template (command, then args, unrendered, as JSON), so that a
# trial's values can be put back into slots (trial_template) and trials share their difference.
COMMAND = "sweepctl.dev/command"
# A failed local trial's exit status and last output lines, as the local backend observes them for status.
FAILURE = "sweepctl.dev/failure"
# The hash of the TFJob's spec with its trial's own values (flags, log folder,
# id) replaced by slots: the same for every trial made from one spec. Trials
# that share it, and were never changed, share their difference from a new spec.
SWEEP_TEMPLATE_HASH = "sweepctl.dev/sweep-template-hash"
_NAME_SLOT = "$(TRIAL_NAME)"
_ID_SLOT = "$(TRIAL_ID)"
_FLAGS_SLOT = "$(TRIAL_FLAGS)"

# A sweep's TFJobs are listed as this many label-selected shards at once, so a
# 10,000-trial plan keeps both API server cores busy encoding pages.
SHARDS = 4
TFJOB_GROUP = "kubeflow.org"
TFJOB_VERSION = "v1"
TFJOB_PLURAL = "tfjobs"
# Kubeflow Trainer v2: a TrainJob runs on a ClusterTrainingRuntime, which
# sweepctl can provide (training_runtime). Its container that runs the trainer
# must be named `node`, in a replicated job labelled as the trainer step.
TRAINER_GROUP = "trainer.kubeflow.org"
TRAINER_VERSION = "v1alpha1"
TRAINJOB_PLURAL = "trainjobs"
RUNTIME_PLURAL = "clustertrainingruntimes"
_NODE = "node"
_ANCESTOR = "trainer.kubeflow.org/trainjob-ancestor-step"
# The owner of the runtime patch that carries the sweep's labels, log volume
# and security settings to a TrainJob's pods (its labels are not copied there).
RUNTIME_PATCH_MANAGER = "sweepctl.dev/sweepctl"
# JobSet names a TrainJob's pods `<name>-node-0-0-<5 letters>`, a DNS-1035 label,
# and its webhook refuses a name that makes them longer than 63 characters.
TRAINJOB_MAX_NAME = 48
# Each trial kind's group, version and plural: where the backend finds it.
TRIAL_PATHS = {
    "TFJob": (TFJOB_GROUP, TFJOB_VERSION, TFJOB_PLURAL),
    "TrainJob": (TRAINER_GROUP, TRAINER_VERSION, TRAINJOB_PLURAL),
}
TENSORBOARD_PORT = 6006
TENSORBOARD_SERVICE_PORT = "http"  # the Service's port, by name, as the API server's proxy reaches it
LOGS_VOLUME = "logs"

# Retry a trial only when its container was killed from outside (exit codes 128+:
# eviction, OOM, preemption); a trainer that exits 1-127 failed for good, and
# restarting it would only burn GPU hours. backoffLimit bounds those retries.
RESTART_POLICY = "ExitCode"
BACKOFF_LIMIT = 3
# Keep finished pods so `kubectl logs` still works; they hold no CPU or GPU once
# done. No ttlSecondsAfterFinished: a TFJob deleted behind sweepctl's back would
# be planned again as a new trial.
CLEAN_POD_POLICY = "None"

_RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
# The trainer image runs as uid 1000. fsGroup makes a volume that supports
# ownership (most block storage) writable by that group; OnRootMismatch skips
# the recursive chown of a large log volume when its root is already right.
_POD_SECURITY = {
    "runAsNonRoot": True,
    "fsGroup": 1000,
    "fsGroupChangePolicy": "OnRootMismatch",
    "seccompProfile": {"type": "RuntimeDefault"},
}


def sweep_selector(sweep: str) -> str:
    """The label selector for every object of one sweep, and nothing else."""
    return f"{MANAGED_BY}=sweepctl,{SWEEP}={sweep}"


def shard_of(trial: Trial) -> str:
    """Which listing shard a trial's TFJob is in: a function of its id only."""
    return str(int(trial.id[:4], 16) % SHARDS)


def template_hash(spec: dict[str, Any]) -> str:
    """Hash of an object's rendered spec, stored on it to detect drift cheaply."""
    return hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def log_dir(spec: Spec, trial: Trial) -> str:
    """Where a trial writes its TensorBoard logs: a folder per trial on the shared volume."""
    return f"{spec.mount_path}/{spec.name}/{trial.name}"


def _labels(spec: Spec, **extra: str) -> dict[str, str]:
    return {MANAGED_BY: "sweepctl", SWEEP: spec.name, **extra}


def _object(kind: str, api_version: str, name: str, namespace: str, labels: dict[str, str],
            annotations: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {**annotations, TEMPLATE_HASH: template_hash(body)},
        },
        "spec": body,
    }


def trial_object(spec: Spec, trial: Trial, *, namespace: str) -> dict[str, Any]:
    """The object that runs one trial on Kubernetes: the spec's kind (kubernetes.kind)."""
    return trainjob(spec, trial, namespace=namespace) if spec.kind == "TrainJob" else tfjob(
        spec, trial, namespace=namespace)


def check_trial_names(spec: Spec, trials: Sequence[Trial]) -> None:
    """Refuse TrainJob trials whose names JobSet would refuse, before anything is created.

    A trial's name is its identity, the same for either kind (a sweep can move
    between them), so a name that is too long is the spec's to shorten.
    """
    if spec.kind != "TrainJob":
        return
    long = [t.name for t in trials if len(t.name) > TRAINJOB_MAX_NAME]
    if long:
        raise SweepctlError(
            f"{len(long)} trial name(s) are longer than the {TRAINJOB_MAX_NAME} characters a TrainJob may have "
            f"(JobSet's limit for its pods' names), e.g. {long[0]} ({len(long[0])})",
            hint=f"trial names are <sweep>-<values>-<id>: shorten the sweep's name ({spec.name}) or the "
            "hyperparameters' names, or use kubernetes.kind: TFJob (63 characters)")


def tfjob(spec: Spec, trial: Trial, *, namespace: str) -> dict[str, Any]:
    """The TFJob of one trial: one Chief replica running the trainer."""
    return _trial(spec, trial, "TFJob", f"{TFJOB_GROUP}/{TFJOB_VERSION}", _tfjob_spec, namespace)


def trainjob(spec: Spec, trial: Trial, *, namespace: str) -> dict[str, Any]:
    """The TrainJob of one trial: the trainer on one node of the spec's runtime."""
    return _trial(spec, trial, "TrainJob", f"{TRAINER_GROUP}/{TRAINER_VERSION}", _trainjob_spec, namespace)


def _trial(spec: Spec, trial: Trial, kind: str, api_version: str, render: Any, namespace: str) -> dict[str, Any]:
    labels = _labels(spec, **{TRIAL: trial.id})
    body = render(spec, trial_id=trial.id, run=_run(spec, trial, log_dir(spec, trial)))
    params = orjson.dumps(dict(trial.params), option=orjson.OPT_SORT_KEYS).decode()
    annotations = {PARAMS: params, SWEEP_TEMPLATE_HASH: _sweep_template_hash(spec)}
    if spec.command:
        annotations[COMMAND] = orjson.dumps([*spec.command, *spec.args]).decode()
    return _object(kind, api_version, trial.name, namespace, {**labels, SHARD: shard_of(trial)}, annotations, body)


def _run(spec: Spec, trial: Trial, folder: str) -> dict[str, Any]:
    """What the trainer's container runs: tf-paint's args, or the user's command (core/command.py).

    The user's command replaces the image's entrypoint, with no args (the
    image's CMD is dropped too), and the SWEEPCTL_ variables say where to log.
    """
    if not spec.command:
        return {"args": [*spec.args, *trial.flags(), "--log-dir", folder]}
    from sweepctl.core.command import environment, render

    argv = render([*spec.command, *spec.args], trial.params, log_dir=folder, unpassed=trial.unpassed)
    env = environment(log_dir=folder, trial=trial.name, sweep=spec.name)
    return {"command": argv, "args": [], "env": [{"name": k, "value": v} for k, v in env.items()]}


def _run_slots(spec: Spec) -> dict[str, Any]:
    """_run with slots for a trial's own values: the same for every trial of one spec."""
    folder = f"{spec.mount_path}/{spec.name}/{_NAME_SLOT}"
    if not spec.command:
        return {"args": [*spec.args, _FLAGS_SLOT, "--log-dir", folder]}
    from sweepctl.core.command import environment

    env = environment(log_dir=folder, trial=_NAME_SLOT, sweep=spec.name)
    return {"command": [*spec.command, *spec.args], "args": [],
            "env": [{"name": k, "value": v} for k, v in env.items()]}


def _resources(spec: Spec) -> dict[str, Any]:
    limits = dict(spec.limits)
    if spec.use_gpu:
        limits["nvidia.com/gpu"] = "1"
    resources: dict[str, Any] = {}
    if spec.requests:
        resources["requests"] = dict(spec.requests)
    if limits:
        resources["limits"] = limits
    return resources


def _logs_volume(spec: Spec) -> dict[str, Any]:
    return {"name": LOGS_VOLUME, "persistentVolumeClaim": {"claimName": spec.claim_name}}


def _tfjob_spec(spec: Spec, *, trial_id: str, run: dict[str, Any]) -> dict[str, Any]:
    container = {
        "name": "tensorflow",  # the TFJob webhook requires this name
        "image": spec.image,
        # tf-paint: fixed args first, so a trial's own values win where both name a flag.
        **run,
        "resources": _resources(spec),
        "volumeMounts": [{"name": LOGS_VOLUME, "mountPath": spec.mount_path}],
        "securityContext": _RESTRICTED,
    }
    return {
        "runPolicy": {"cleanPodPolicy": CLEAN_POD_POLICY, "backoffLimit": BACKOFF_LIMIT},
        "tfReplicaSpecs": {
            "Chief": {
                "replicas": 1,
                "restartPolicy": RESTART_POLICY,
                "template": {
                    "metadata": {"labels": _labels(spec, **{TRIAL: trial_id})},
                    "spec": {
                        "securityContext": _POD_SECURITY,
                        "containers": [container],
                        "volumes": [_logs_volume(spec)],
                    },
                },
            }
        },
    }


def _trainjob_spec(spec: Spec, *, trial_id: str, run: dict[str, Any]) -> dict[str, Any]:
    """The trainer's image, args and resources; the rest reaches the pods as a runtime patch.

    A TrainJob's labels are not copied to its JobSet, Jobs and pods, and its
    runtime knows nothing of the log volume: the patch adds both, and the
    same pod and container security as a TFJob's, to the runtime's `node`.
    """
    labels = _labels(spec, **{TRIAL: trial_id})
    trainer: dict[str, Any] = {"image": spec.image, **run}
    if resources := _resources(spec):
        trainer["resourcesPerNode"] = resources
    pod = {
        "metadata": {"labels": labels},
        "spec": {
            "securityContext": _POD_SECURITY,
            "volumes": [_logs_volume(spec)],
            "containers": [{"name": _NODE, "volumeMounts": [{"name": LOGS_VOLUME, "mountPath": spec.mount_path}],
                            "securityContext": _RESTRICTED}],
        },
    }
    job = {"name": _NODE, "template": {"metadata": {"labels": labels}, "spec": {"template": pod}}}
    return {
        "runtimeRef": {"name": spec.runtime, "apiGroup": TRAINER_GROUP, "kind": "ClusterTrainingRuntime"},
        "trainer": trainer,
        "runtimePatches": [{
            "manager": RUNTIME_PATCH_MANAGER,
            "trainingRuntimeSpec": {"template": {"metadata": {"labels": labels},
                                                 "spec": {"replicatedJobs": [job]}}},
        }],
    }


def training_runtime(name: str, *, image: str) -> dict[str, Any]:
    """sweepctl's ClusterTrainingRuntime: the trainer as one process on one node.

    One replicated job `node` (the trainer step, so a TrainJob's image, args
    and resources reach its container) with one pod, retried as a TFJob's
    Chief is (restartPolicy ExitCode): a trainer that exits 1-127 failed by
    itself and fails the job at once; a pod killed from outside (exit 128 and
    up: OOM, a kill) is run again, up to BACKOFF_LIMIT times, and one evicted or
    preempted (DisruptionTarget) is run again without counting. Every JobSet
    default is spelled out, so it also runs where JobSet's webhook does not.
    """
    job_spec = {
        "completionMode": "Indexed", "backoffLimit": BACKOFF_LIMIT, "parallelism": 1, "completions": 1,
        "podFailurePolicy": {"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": _NODE, "operator": "In",
                                                  "values": list(range(1, 128))}},
        ]},
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": _NODE, "image": image}]}},
    }
    return {
        "apiVersion": f"{TRAINER_GROUP}/{TRAINER_VERSION}",
        "kind": "ClusterTrainingRuntime",
        "metadata": {"name": name, "labels": {MANAGED_BY: "sweepctl"}},
        "spec": {
            "mlPolicy": {"numNodes": 1},
            "template": {"spec": {
                "network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True},
                "successPolicy": {"operator": "All", "targetReplicatedJobs": [_NODE]},
                "startupPolicy": {"startupPolicyOrder": "AnyOrder"},
                "replicatedJobs": [{"name": _NODE, "replicas": 1, "template": {
                    "metadata": {"labels": {_ANCESTOR: "trainer"}}, "spec": job_spec}}],
            }},
        },
    }


_last_template: tuple[Spec, str] | None = None  # one spec renders thousands of trials in a row


def _sweep_template_hash(spec: Spec) -> str:
    global _last_template
    if _last_template is None or _last_template[0] is not spec:
        render = _trainjob_spec if spec.kind == "TrainJob" else _tfjob_spec
        slots = render(spec, trial_id=_ID_SLOT, run=_run_slots(spec))
        _last_template = (spec, template_hash(slots))
    return _last_template[1]


def trial_template(body: Mapping[str, Any], *, name: str, trial_id: str, flags: list[str],
                   command: str | None = None, params: Mapping[str, Any] | None = None,
                   unpassed: Collection[str] = ()) -> dict[str, Any] | None:
    """A trial's spec with its own values replaced by slots, as tfjob and trainjob render them.

    Every trial made from one spec gives the same template (its hash is the
    SWEEP_TEMPLATE_HASH annotation). None when the values are not where
    tfjob puts them (someone edited the object): then it has no template.
    A command sweep's trial (`command`: its COMMAND annotation) has its
    rendered command replaced by that template, once it is checked to be the
    template rendered with the trial's `params`, and its SWEEPCTL_ variables by slots.
    """
    tail = [*flags, "--log-dir"]
    try:
        template = _command_template(command)
    except _NoTemplate:
        return None

    def walk(node: Any) -> Any:
        if isinstance(node, Mapping) and template is not None and "command" in node:
            return {**{k: walk(v) for k, v in node.items() if k not in ("command", "env")},
                    **_command_slots(node, template, name=name, params=params or {}, unpassed=unpassed)}
        if isinstance(node, Mapping):
            out = {}
            for key, value in node.items():
                if key == "labels" and isinstance(value, Mapping) and value.get(TRIAL) == trial_id:
                    out[key] = {**value, TRIAL: _ID_SLOT}
                elif key == "args" and isinstance(value, list):
                    n = len(tail)
                    if not (len(value) > n and value[-n - 1:-1] == tail and isinstance(value[-1], str)
                            and value[-1].endswith("/" + name)):
                        raise _NoTemplate
                    out[key] = [*value[:-n - 1], _FLAGS_SLOT, "--log-dir", value[-1][:-len(name)] + _NAME_SLOT]
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    try:
        return walk(body)
    except _NoTemplate:
        return None


def _command_template(command: str | None) -> list[str] | None:
    """The COMMAND annotation's template; None without one (a tf-paint trial) and raises _NoTemplate when it is not one."""
    if command is None:
        return None
    try:
        template = orjson.loads(command)
    except orjson.JSONDecodeError:
        raise _NoTemplate from None
    if not isinstance(template, list) or not all(isinstance(t, str) for t in template):
        raise _NoTemplate
    return template


def _command_slots(node: Mapping[str, Any], template: list[str], *, name: str, params: Mapping[str, Any],
                   unpassed: Collection[str]) -> dict[str, Any]:
    """A command container's (or trainer's) command and env, with the trial's own values in slots, as _run_slots has them."""
    from sweepctl.core.command import ENV, render

    env = node.get("env")
    entries: list[Any] = env if isinstance(env, list) else []
    values = {e.get("name"): e.get("value") for e in entries if isinstance(e, Mapping)}
    folder = values.get(ENV[0])
    if not (isinstance(folder, str) and folder.endswith("/" + name) and values.get(ENV[1]) == name):
        raise _NoTemplate
    try:
        rendered = render(template, params, log_dir=folder, unpassed=unpassed)
    except (KeyError, TypeError):
        raise _NoTemplate from None  # it names a hyperparameter this trial does not have
    if node["command"] != rendered:
        raise _NoTemplate
    slot = {ENV[0]: folder[:-len(name)] + _NAME_SLOT, ENV[1]: _NAME_SLOT}
    out: dict[str, Any] = {"command": list(template)}
    if "env" in node:
        out["env"] = [{**e, "value": slot[e["name"]]} if isinstance(e, Mapping) and e.get("name") in slot else e
                      for e in entries]
    return out


def fill_slots(text: str, *, name: str, trial_id: str, flags: list[str]) -> str:
    """A line about a trial template, with the trial's own values back in its slots."""
    if "$(" not in text:
        return text
    return text.replace(_NAME_SLOT, name).replace(_ID_SLOT, trial_id).replace(_FLAGS_SLOT, " ".join(flags))


class _NoTemplate(Exception):
    pass


def tensorboard_name(sweep: str) -> str:
    return f"{sweep}-tensorboard"


def _tensorboard_labels(spec: Spec) -> dict[str, str]:
    return _labels(spec, **{COMPONENT: "tensorboard"})


def tensorboard_deployment(spec: Spec, *, namespace: str) -> dict[str, Any]:
    """TensorBoard reading the sweep's folder, where each trial is one run."""
    labels = _tensorboard_labels(spec)
    body = {
        "replicas": 1,
        "selector": {"matchLabels": {SWEEP: spec.name, COMPONENT: "tensorboard"}},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                # The stock TensorFlow image runs as root; TensorBoard only reads.
                "securityContext": {**_POD_SECURITY, "runAsUser": 1000},
                "containers": [
                    {
                        "name": "tensorboard",
                        "image": spec.tensorboard_image,
                        "command": [
                            "tensorboard",
                            "--logdir",
                            f"{spec.mount_path}/{spec.name}",
                            "--bind_all",
                            "--port",
                            str(TENSORBOARD_PORT),
                        ],
                        "ports": [{"name": "http", "containerPort": TENSORBOARD_PORT}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                        "volumeMounts": [{"name": LOGS_VOLUME, "mountPath": spec.mount_path, "readOnly": True}],
                        "securityContext": _RESTRICTED,
                    },
                    _hparams_container(spec),
                ],
                "volumes": [
                    # Read-only in TensorBoard's own mount; the HParams writer beside it adds summaries.
                    {"name": LOGS_VOLUME, "persistentVolumeClaim": {"claimName": spec.claim_name}},
                    # Optional: a TensorBoard whose ConfigMap is not written yet still starts.
                    {"name": HPARAMS_VOLUME, "configMap": {"name": hparams_configmap_name(spec.name),
                                                           "optional": True}},
                ],
            },
        },
    }
    return _object("Deployment", "apps/v1", tensorboard_name(spec.name), namespace, labels, {}, body)


HPARAMS_VOLUME = "hparams"
HPARAMS_DIR = "/etc/sweepctl/hparams"
HPARAMS_SCRIPT = "hparams_writer.py"  # backends/hparams_writer.py, as the ConfigMap carries it
HPARAMS_DATA = "hparams.json.gz"  # core.hparams.hparams_data, gzipped JSON
# Waits for the ConfigMap's script (the volume is optional), then runs it: the
# script itself travels in the ConfigMap, so a new sweepctl never restarts TensorBoard for it.
_HPARAMS_BOOT = (
    "import os, runpy, sys, time\n"
    f"script = {f'{HPARAMS_DIR}/{HPARAMS_SCRIPT}'!r}\n"
    "while not os.path.exists(script):\n"
    "    time.sleep(5)\n"
    "sys.argv = [script, *sys.argv[1:]]\n"
    "runpy.run_path(script, run_name='__main__')\n"
)


def hparams_configmap_name(sweep: str) -> str:
    """The ConfigMap from which the sweep's TensorBoard pod writes the HParams summaries."""
    return f"{sweep}-sweepctl-hparams"


def _hparams_container(spec: Spec) -> dict[str, Any]:
    """Writes the HParams summaries into the trials' folders, from the ConfigMap sweepctl keeps.

    sweepctl cannot reach the log volume; this pod can, and runs an image that has
    tensorboard already. The trials' own pods stay as they are.
    """
    return {
        "name": "hparams",
        "image": spec.tensorboard_image,
        "command": ["python3", "-c", _HPARAMS_BOOT, f"{HPARAMS_DIR}/{HPARAMS_DATA}", f"{spec.mount_path}/{spec.name}"],
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
        "volumeMounts": [{"name": LOGS_VOLUME, "mountPath": spec.mount_path},
                         {"name": HPARAMS_VOLUME, "mountPath": HPARAMS_DIR, "readOnly": True}],
        "securityContext": _RESTRICTED,
    }


def hparams_configmap(sweep: str, *, namespace: str, script: str, data: bytes) -> dict[str, Any]:
    """The ConfigMap with the writer's script and its data (gzipped JSON, base64 as binaryData is)."""
    import base64

    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": hparams_configmap_name(sweep), "namespace": namespace,
                     "labels": {MANAGED_BY: "sweepctl", SWEEP: sweep}},
        "data": {HPARAMS_SCRIPT: script},
        "binaryData": {HPARAMS_DATA: base64.b64encode(data).decode()},
    }


def tensorboard_service(spec: Spec, *, namespace: str) -> dict[str, Any]:
    """ClusterIP unless the spec asks otherwise; a LoadBalancer only with source ranges."""
    body: dict[str, Any] = {
        "type": spec.service_type,
        "selector": {SWEEP: spec.name, COMPONENT: "tensorboard"},
        "ports": [{"name": TENSORBOARD_SERVICE_PORT, "port": 80, "targetPort": "http", "protocol": "TCP"}],
    }
    if spec.service_type == "LoadBalancer":
        body["loadBalancerSourceRanges"] = list(spec.source_ranges)
    return _object("Service", "v1", tensorboard_name(spec.name), namespace, _tensorboard_labels(spec), {}, body)


def local_trial(spec: Spec, trial: Trial) -> dict[str, Any]:
    """A trial for the local backend: the trainer's arguments, less --log-dir; or the user's command.

    The backend adds --log-dir (a folder in its state directory), or puts it
    where the command says ${logDir}, so moving the state directory does not
    turn every trial into drift.
    """
    labels = _labels(spec, **{TRIAL: trial.id})
    if spec.command:
        from sweepctl.core.command import render

        body: dict[str, Any] = {"command": render([*spec.command, *spec.args], trial.params, log_dir=None,
                                                  unpassed=trial.unpassed)}
    else:
        body = {"args": [*spec.args, *trial.flags(), "--threads", str(spec.threads_per_trial)]}
    params = orjson.dumps(dict(trial.params), option=orjson.OPT_SORT_KEYS).decode()
    return _object("Trial", "sweepctl.dev/v1", trial.name, "", labels, {PARAMS: params}, body)
