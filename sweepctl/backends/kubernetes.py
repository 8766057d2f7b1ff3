"""The Kubernetes backend: trials are Kubeflow TFJobs or TrainJobs, plus one TensorBoard.

All API access goes through `Cluster`, which maps HTTP statuses to errors a
user can act on. Listing is one paginated, label-selected LIST per kind;
writes are concurrent; every delete carries the uid the plan saw, so an object
that was replaced behind sweepctl's back is never deleted. Pruned trials are
recorded in ConfigMaps labelled as the sweep's (`<sweep>-sweepctl-pruned`,
then `-2`, `-3`, ... as each fills up: one holds 1 MiB), read with one LIST by
observe.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from sweepctl import __version__
from sweepctl.backends.base import ApplyResult, Progress
from sweepctl.backends.retry import CONNECT_SECONDS, RETRIED_STATUSES, Retrying, Transient
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.durations import say_seconds
from sweepctl.core.manifests import (
    MANAGED_BY,
    PARAMS,
    RUNTIME_PLURAL,
    SHARD,
    SHARDS,
    SWEEP,
    TEMPLATE_HASH,
    TRAINER_GROUP,
    TRAINER_VERSION,
    TRIAL,
    TRIAL_PATHS,
    sweep_selector,
)
from sweepctl.core.objective import EVENT_FILES, STDOUT, MetricSource
from sweepctl.core.plan import PRUNED, Action, Change, LiveObject, Observed, Plan
from sweepctl.core.schema import DEFAULT_RUNTIME

__all__ = ["Cluster", "KubernetesBackend", "ApiError", "tfjob_state", "trainjob_state", "pruned_configmap_name",
           "PAGE_SIZE", "PRUNED_BYTES_PER_CONFIGMAP"]

PAGE_SIZE = 500
# A Table of objects' metadata, with the kind's printer columns (TFJob: State).
_TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1"
FIELD_MANAGER = "sweepctl"
# The Python client's default field manager (from its User-Agent): earlier
# versions of sweepctl created trials under it, and so does every Python tool
# (the Kubeflow SDK, notebooks, scripts) that edits them.
_PYTHON_CLIENT = "OpenAPI-Generator"
# The lock id of the command that created a trial: tells its own lost create from another's.
CREATED_BY = "sweepctl.dev/created-by"
_IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# Collection paths, by kind, in a namespace (ClusterTrainingRuntime: cluster-scoped).
_PATHS = {
    **{kind: f"/apis/{group}/{version}/namespaces/{{ns}}/{plural}"
       for kind, (group, version, plural) in TRIAL_PATHS.items()},
    "ClusterTrainingRuntime": f"/apis/{TRAINER_GROUP}/{TRAINER_VERSION}/{RUNTIME_PLURAL}",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "Service": "/api/v1/namespaces/{ns}/services",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Pod": "/api/v1/namespaces/{ns}/pods",
}
# The trainer's container in a trial's pod: a TFJob's (its webhook's name), a TrainJob's.
_TRAINER_CONTAINERS = ("tensorflow", "node")


# How much of pruned-trial records one ConfigMap takes (a ConfigMap holds at
# most 1 MiB, managedFields included, which repeats every key): about 1,500
# records of a two-hyperparameter sweep.
PRUNED_BYTES_PER_CONFIGMAP = 512 * 1024


def _record_size(key: str, text: str) -> int:
    return 2 * len(key) + len(text) + 32


def pruned_configmap_name(sweep: str, index: int = 1) -> str:
    """The index-th ConfigMap that records a sweep's pruned trials (trial name -> JSON record)."""
    return f"{sweep}-sweepctl-pruned" + (f"-{index}" if index > 1 else "")


def _pruned_index(sweep: str, name: str) -> int | None:
    """Which of the sweep's pruned-record ConfigMaps this name is, if any."""
    base = pruned_configmap_name(sweep)
    if name == base:
        return 1
    rest = name[len(base) + 1:] if name.startswith(base + "-") else ""
    return int(rest) if rest.isdigit() and rest[0] != "0" and int(rest) > 1 else None


# The sweep lock's check before every attempt of every write (not a GET) this process sends, from
# any Cluster (the early-stopping watcher has one of its own): backends/lease.py installs it while
# a command holds its sweep's Lease (one sweep per command), and it raises to stop a writer that
# lost its lock.
_write_guard: Callable[[str, str], None] | None = None


def set_write_guard(guard: Callable[[str, str], None] | None, *, instead_of: object = None) -> None:
    """Install `guard` (None: remove it, only if it is still `instead_of`)."""
    global _write_guard
    if guard is not None or _write_guard == instead_of:
        _write_guard = guard


class ApiError(SweepctlError):
    """An API request failed; `status` is the HTTP status (0: no answer).

    `cause` says why in words, without the request (what many failed requests
    share: "connection refused", "throttled by the API server").
    """

    def __init__(self, message: str, *, status: int, reason: str = "", hint: str | None = None,
                 cause: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status
        self.reason = reason
        self.cause = cause or message


class _RecordConflict(Exception):
    """A pruned-record ConfigMap changed since it was read: read and merge again."""


def _no_answer(text: str, timeout: float) -> Exception:
    """Words for a request that got no HTTP answer: Transient unless sending again cannot help."""
    low = text.lower()
    if "certificate" in low or "wrong version number" in low:  # TLS that will not work on a retry either
        return ApiError(f"cannot talk to the Kubernetes API over TLS: {text.splitlines()[-1]}", status=0,
                        cause="TLS failed", hint="check the kubeconfig's server and certificate authority")
    if "refused" in low:
        return Transient(cause="connection refused", label="connection refused")
    if "timed out" in low or "timeout" in low:
        seconds = say_seconds(timeout)
        return Transient(cause=f"timed out after {seconds}", label=f"no answer in {seconds}")
    if "name or service not known" in low or "nodename nor servname" in low or "resolution" in low:
        return Transient(cause="the server's name does not resolve", label="name does not resolve")
    return Transient(cause="connection closed before an answer", label="connection closed")


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (kube-apiserver sends whole seconds)."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def tfjob_state(status: dict[str, Any] | None) -> str:
    """Pending, Running, Succeeded, Failed or Suspended: the last true condition."""
    conditions = [c for c in (status or {}).get("conditions") or [] if c.get("status") == "True"]
    if not conditions:
        return "Pending"
    return _state_word(conditions[-1].get("type"))


def trainjob_state(status: dict[str, Any] | None) -> str:
    """A TrainJob's state in the words TFJobs use.

    Complete is Succeeded, Failed is Failed and Suspended stays. Without any
    of them (Trainer v2 sets no condition while a job runs) the job is Running
    once its trainer pod is ready or done, and Pending before: a pod still
    waiting for a GPU is Pending, as `kubectl get pods` says.
    """
    true = {c.get("type") for c in (status or {}).get("conditions") or [] if c.get("status") == "True"}
    for condition, state in (("Failed", "Failed"), ("Complete", "Succeeded"), ("Suspended", "Suspended")):
        if condition in true:
            return state
    jobs = (status or {}).get("jobsStatus") or []
    return "Running" if any((j.get("ready") or 0) + (j.get("succeeded") or 0) for j in jobs) else "Pending"


# How each kind of trial says its state; other kinds (the TensorBoard's) have none.
_TRIAL_STATES = {"TFJob": tfjob_state, "TrainJob": trainjob_state}


def _state_word(condition: str | None) -> str:
    """sweepctl's word for a TFJob condition type (also the CRD's printed State)."""
    return {"": "Pending", "Created": "Pending", "Restarting": "Running"}.get(condition or "", condition or "")


class Cluster:
    """A Kubernetes API client configured the way kubectl is.

    KUBECONFIG (or ~/.kube/config) with an optional context; otherwise the
    in-cluster service account. `requests` counts API calls, for benchmarks.
    """

    def __init__(self, *, context: str | None = None, workers: int = 16, timeout: float | None = None) -> None:
        from kubernetes import client, config  # heavy: only when the cluster is used

        cfg = client.Configuration()
        cfg.retries = False  # sweepctl retries itself, every verb alike (backends/retry.py)
        self.context_namespace: str | None = None
        self.context = context  # as given (--context), for commands that sweepctl suggests
        # Read KUBECONFIG now: the client reads it once, when first imported.
        files = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        try:
            config.load_kube_config(config_file=files, context=context, client_configuration=cfg)
            contexts, active = config.list_kube_config_contexts(config_file=files)
            chosen = next((c for c in contexts if c["name"] == context), active) if context else active
            self.context_namespace = (chosen or {}).get("context", {}).get("namespace")
        except config.ConfigException as err:
            if context or not os.environ.get("KUBERNETES_SERVICE_HOST"):
                raise SweepctlError(
                    f"no usable Kubernetes configuration: {err}",
                    hint="set KUBECONFIG or --context, or run the sweep here with --backend local",
                ) from None
            config.load_incluster_config(client_configuration=cfg)
            if _IN_CLUSTER_NAMESPACE.is_file():
                self.context_namespace = _IN_CLUSTER_NAMESPACE.read_text().strip()
        cfg.connection_pool_maxsize = workers
        self.server: str = cfg.host
        self._api = client.ApiClient(cfg)
        # A write without fieldManager is recorded under the User-Agent's name:
        # sweepctl's, never the Python client's, which other tools share.
        self._api.user_agent = f"{FIELD_MANAGER}/{__version__}"
        self._exception = client.exceptions.ApiException
        self._lock = threading.Lock()
        self.requests = 0  # sent, retries included
        self.retrying = Retrying(timeout=timeout)

    def request(self, method: str, path: str, *, query: list[tuple[str, Any]] | None = None,
                body: Any = None, content_type: str = "application/json",
                accept: str = "application/json", answer_headers: dict[str, str] | None = None) -> dict[str, Any]:
        """One API call; returns the decoded JSON body or raises ApiError."""
        data = self.request_bytes(method, path, query=query, body=body, content_type=content_type, accept=accept,
                                  answer_headers=answer_headers)
        return orjson.loads(data) if data else {}

    def request_bytes(self, method: str, path: str, *, query: list[tuple[str, Any]] | None = None,
                      body: Any = None, content_type: str = "application/json",
                      accept: str = "application/json", form: list[tuple[str, str]] | None = None,
                      answer_headers: dict[str, str] | None = None) -> bytes:
        """One API call; returns the raw body (e.g. an image through a service proxy) or raises ApiError.

        `form` is sent URL-encoded instead of a body (a form POST through a service proxy);
        `answer_headers`, when given, receives the answer's headers (the lock reads the server's Date).
        Sent again while it fails transiently (backends/retry.py), within the command's --timeout."""
        if form is not None:
            content_type = "application/x-www-form-urlencoded"
        headers = {"Accept": accept, "Content-Type": content_type}
        method, url, headers, _, _ = self._api.param_serialize(
            method, path, query_params=query or [], header_params=headers, auth_settings=["BearerToken"]
        )

        def send(timeout: float) -> bytes:
            guard = _write_guard
            if guard is not None and method != "GET":
                guard(method, path)  # each attempt: a retry that outlived the lock must not land
            return self._send(method, path, url, headers, body, form, timeout, answer_headers)

        def give_up(failure: Transient, after: float) -> Exception:
            if failure.final is not None:
                return failure.final
            return ApiError(f"{method} {path}: no answer from the Kubernetes API at {self.server}: {failure.cause}"
                            + (f" (gave up after {say_seconds(after)}, --timeout)" if after else ""),
                            status=0, cause=failure.cause,
                            hint="check KUBECONFIG and --context, and that the cluster is running; "
                            "--timeout waits longer")

        return self.retrying.call(send, on_give_up=give_up)

    def _send(self, method: str, path: str, url: str, headers: dict[str, str], body: Any,
              form: list[tuple[str, str]] | None, timeout: float,
              answer_headers: dict[str, str] | None = None) -> bytes:
        """One attempt: the body, an ApiError, or Transient (worth sending again)."""
        import urllib3

        with self._lock:
            self.requests += 1
        try:
            resp = self._api.call_api(method, url, header_params=headers, body=body, post_params=form,
                                      _request_timeout=(min(CONNECT_SECONDS, timeout), timeout))
            data = resp.read()
            if answer_headers is not None:
                answer_headers.update({k.lower(): v for k, v in resp.headers.items()})
        except self._exception as err:  # no HTTP answer (TLS), or the client refused to send
            if err.status:
                raise self._error(err.status, err.reason, err.body, method, path) from None
            raise _no_answer(str(err.reason or ""), timeout) from None
        except urllib3.exceptions.HTTPError as err:
            raise _no_answer(f"{err.__class__.__name__} {err}", timeout) from None
        if resp.status >= 400:
            error = self._error(resp.status, resp.reason, data, method, path)
            if resp.status == 403 and self.retrying.just_restarted():
                raise Transient(cause=error.cause, label="403 after a restart", final=error)
            # Through a service proxy a 5xx is the proxied server's answer (or "no endpoints"):
            # the TensorBoard read says so itself; the API server's own health is not in question.
            if resp.status in RETRIED_STATUSES and (resp.status == 429 or "/proxy/" not in path):
                retry_after = _retry_after(resp.getheader("Retry-After"))
                raise Transient(cause=error.cause, label=str(resp.status), final=error,
                                retry_after=retry_after if retry_after is not None or resp.status != 429 else 1.0)
            raise error
        return bytes(data or b"")

    def _error(self, status: int, reason: str | None, body: bytes | str | None, method: str, path: str) -> ApiError:
        try:
            status_body = json.loads(body or "{}")
        except ValueError:
            status_body = {}
        message = status_body.get("message") or reason or "no message"
        reason = status_body.get("reason", "")
        missing_kind = "could not find the requested resource" in message
        hint = {
            401: "the credentials were refused: log in again or check the kubeconfig's user",
            403: "ask for a Role with the verbs sweepctl needs (see the README's 'Permissions')",
            # A missing kind (not a missing object) answers 404 with this message.
            404: _missing_kind_hint(path) if missing_kind else None,
        }.get(status)
        cause = "throttled by the API server" if status == 429 else f"{status} {message}"
        return ApiError(f"{method} {path}: {status} {message}", status=status, reason=reason, hint=hint, cause=cause)

    def list(self, kind: str, namespace: str, selector: str, *, metadata_only: bool = False) -> Iterator[dict[str, Any]]:
        """Every object of a kind matching the selector, PAGE_SIZE per request.

        metadata_only asks for a Table of metadata (no spec, no status, a third
        less to encode and decode); each item then has only `metadata` and the
        kind's printed `State` column, when it has one, under `printedState`.
        """
        path = self.path(kind, namespace)
        token: str | None = None
        while True:
            query: list[tuple[str, Any]] = [("labelSelector", selector), ("limit", PAGE_SIZE)]
            if metadata_only:
                query.append(("includeObject", "Metadata"))
            if token:
                query.append(("continue", token))
            page = self.request("GET", path, query=query, accept=_TABLE if metadata_only else "application/json")
            if metadata_only:
                columns = [c.get("name") for c in page.get("columnDefinitions") or []]
                state = columns.index("State") if "State" in columns else None
                for row in page.get("rows") or []:
                    cells = row.get("cells") or []
                    printed = cells[state] if state is not None and state < len(cells) else None
                    yield {"metadata": (row.get("object") or {}).get("metadata") or {}, "printedState": printed}
            else:
                yield from page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def path(self, kind: str, namespace: str = "", name: str | None = None) -> str:
        base = _PATHS[kind].format(ns=namespace)
        return f"{base}/{name}" if name else base


def _missing_kind_hint(path: str) -> str:
    """What to install when the API server does not serve a kind at all."""
    if f"/apis/{TRAINER_GROUP}/" in path:
        return "is Kubeflow Trainer v2 (trainer.kubeflow.org/v1alpha1, the TrainJob CRD) installed?"
    return ("is the Kubeflow training operator (the TFJob CRD, kubeflow.org/v1) installed? On a cluster with "
            "Kubeflow Trainer v2 instead, set kubernetes.kind: TrainJob")


def _live(kind: str, item: dict[str, Any]) -> LiveObject:
    meta = item.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    try:
        params = orjson.loads(annotations.get(PARAMS, "{}"))
    except orjson.JSONDecodeError:
        params = {}
    if "printedState" in item:  # a metadata-only row: the spec is fetched only if needed
        state = _state_word(item["printedState"])
        spec = None
    else:
        read_state = _TRIAL_STATES.get(kind)
        state = read_state(item.get("status")) if read_state else ""
        spec = item.get("spec") or {}
    return LiveObject(
        foreign=_foreign_spec_fields(meta.get("managedFields"), meta.get("creationTimestamp"))
        if kind in TRIAL_PATHS else {},
        kind=kind,
        name=meta["name"],
        uid=meta.get("uid", ""),
        generation=meta.get("generation", 0),
        labels=meta.get("labels") or {},
        annotations=annotations,
        spec=spec,
        state=state,
        params=params if isinstance(params, dict) else {},
    )


def _foreign_spec_fields(entries: Any, created: str | None) -> dict[str, Any]:
    """The spec fields each field manager other than sweepctl set: manager -> fieldsV1 under f:spec.

    Status updates (the operator's) are another subresource and never count.
    Only for trials: sweepctl updates the TensorBoard's objects in place, and
    fields others add there are theirs to keep.
    """
    out: dict[str, Any] = {}
    for entry in entries or ():
        manager = entry.get("manager") or "unknown"
        spec = (entry.get("fieldsV1") or {}).get("f:spec")
        if manager == FIELD_MANAGER or _old_create(entry, created) or entry.get("subresource") or spec is None:
            continue
        out[manager] = _merge(out.get(manager, {}), spec)
    return out


def _old_create(entry: dict[str, Any], created: str | None) -> bool:
    """Whether this entry is the create of an earlier sweepctl, which wrote as the Python client.

    Its time is the object's creation time. The API server merges a later
    update by the same manager into the entry and moves its time, so an edit
    by any Python tool afterwards makes the entry, and its fields, foreign (an
    edit within the creation's second, the timestamps' precision, is missed).
    """
    return (entry.get("manager") == _PYTHON_CLIENT and entry.get("operation") == "Update"
            and created is not None and entry.get("time") == created)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


class KubernetesBackend:
    """Trials as TFJobs or TrainJobs in one namespace of one cluster.

    `kind` is the spec's kind of trial, when a spec is known: its objects are
    listed as SHARDS shards; the other kind's (a sweep moving between kinds)
    with one LIST, skipped where that kind is not installed or not granted.
    """

    name = "kubernetes"

    def __init__(self, *, cluster: Cluster, namespace: str | None, workers: int = 16, kind: str | None = None) -> None:
        self.cluster = cluster
        self._namespace = namespace or cluster.context_namespace or "default"
        self.workers = workers
        self.kind = kind
        self.notes: tuple[str, ...] = ()
        self.command_id = ""  # the lock id of the command that writes, once it holds the lock
        self._hparams_sent: dict[str, str] = {}  # sweep -> digest of the HParams ConfigMap last sent

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def target(self) -> str:
        return f"{self.cluster.server} namespace {self._namespace}"

    def observe(self, sweep: str) -> Observed:
        """All of the sweep's objects: the trials of its kind in SHARDS concurrent paginated LISTs.

        TFJobs come as metadata and state only (their spec is None): a plan
        needs the spec of the few that may have drifted, from `specs`.
        TrainJobs come whole: their state is in their status, not in a
        printed column.

        Requests: the sum of ceil(n_shard / PAGE_SIZE), at most ceil(N / PAGE_SIZE)
        + SHARDS, plus one LIST for unsharded trials, one for the other kind of
        trial, one each for the TensorBoard's kinds and one for the pruned records.
        """
        selector = sweep_selector(sweep)
        primary = self.kind or "TFJob"
        lists = [(primary, f"{selector},{SHARD}={i}") for i in range(SHARDS)]
        # The sweep's trials without a shard label too (hand-edited, or older): never invisible.
        lists += [(primary, f"{selector},!{SHARD}"), ("Deployment", selector), ("Service", selector)]
        lists += [(kind, selector) for kind in TRIAL_PATHS if kind != primary]

        def fetch(item: tuple[str, str]) -> list[LiveObject] | ApiError:
            kind, sel = item
            try:
                return [_live(kind, row) for row in self.cluster.list(kind, self._namespace, sel,
                                                                      metadata_only=kind == "TFJob")]
            except ApiError as err:
                # A kind of trial the spec does not use may be missing or not granted.
                if kind not in TRIAL_PATHS or kind == self.kind or err.status not in (403, 404):
                    raise
                return err

        with ThreadPoolExecutor(max_workers=len(lists)) as pool:
            batches = list(pool.map(fetch, lists))
        failed = {kind: b for b, (kind, _) in zip(batches, lists, strict=True) if isinstance(b, ApiError)}
        if len(failed) == len(TRIAL_PATHS):  # without a spec, at least one kind of trial must be there
            raise failed[primary]
        objects = [obj for batch in batches if not isinstance(batch, ApiError) for obj in batch]
        # The pruned records after the trials: a prune records before it deletes, so a trial missing
        # from the lists because it was pruned meanwhile is always in the records read after them.
        return Observed(objects=tuple(objects), pruned=self._pruned(sweep))

    def specs(self, sweep: str, names: list[str]) -> dict[str, dict[str, Any]]:
        """The live specs of some of the sweep's TFJobs (listed without them): a GET each for a few, else one full listing.

        TrainJobs are listed whole, so only TFJobs are ever asked for.
        """
        if len(names) <= 2 * PAGE_SIZE // 10:
            def get(name: str) -> tuple[str, dict[str, Any]]:
                return name, self.cluster.request("GET", self.cluster.path("TFJob", self._namespace, name))

            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                items = dict(pool.map(get, names))
        else:
            wanted = set(names)
            items = {item["metadata"]["name"]: item
                     for item in self.cluster.list("TFJob", self._namespace, sweep_selector(sweep))
                     if item["metadata"]["name"] in wanted}
        return {name: item.get("spec") or {} for name, item in items.items()}

    def requirements(self, spec: Any) -> list[str]:
        """What the cluster lacks that this spec's trials need: a TrainJob's ClusterTrainingRuntime.

        Unknown (nothing said) when reading runtimes is not granted: the
        runtime is cluster-scoped, and a namespace Role cannot grant it.
        """
        if spec.kind != "TrainJob":
            return []
        try:
            self.cluster.request("GET", self.cluster.path("ClusterTrainingRuntime", name=spec.runtime))
        except ApiError as err:
            if err.status == 403:
                return []
            if err.status != 404:
                raise
            if "could not find the requested resource" in str(err):
                return [("Kubeflow Trainer v2 is not installed here (no trainer.kubeflow.org/v1alpha1 "
                         "ClusterTrainingRuntime kind): install it, or use kubernetes.kind: TFJob with the "
                         "training operator")]
            return [f"ClusterTrainingRuntime {spec.runtime} does not exist: "
                    + ("create it with `sweepctl runtime --apply` (needs a cluster administrator)"
                       if spec.runtime == DEFAULT_RUNTIME else
                       "create it, or set kubernetes.runtime to one that exists (`kubectl get "
                       "clustertrainingruntimes`)")]
        return []

    def apply_runtime(self, manifest: dict[str, Any]) -> str:
        """Create or update sweepctl's ClusterTrainingRuntime; one of another owner is never changed.

        Returns "created", "updated" or "unchanged".
        """
        name = manifest["metadata"]["name"]
        path = self.cluster.path("ClusterTrainingRuntime", name=name)
        live: dict[str, Any] = {}
        try:
            live = self.cluster.request("GET", path)
        except ApiError as err:
            if err.status != 404:
                raise
        if live and ((live.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY) != "sweepctl":
            raise ApiError(f"ClusterTrainingRuntime {name} exists and was not created by sweepctl; "
                           "sweepctl never changes it", status=409,
                           hint="use it as it is: set kubernetes.runtime to its name in the spec")
        # Server-side apply creates it or brings it to this manifest. Its uid pins the one
        # just checked, so a runtime recreated meanwhile by someone else is never taken over.
        meta = {**manifest["metadata"], **({"uid": live["metadata"]["uid"]} if live else {})}
        updated = self.cluster.request("PATCH", path, query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                                       body={**manifest, "metadata": meta},
                                       content_type="application/apply-patch+yaml")
        if not live:
            return "created"
        same = (updated.get("metadata") or {}).get("resourceVersion") == live["metadata"].get("resourceVersion")
        return "unchanged" if same else "updated"

    def _pruned(self, sweep: str) -> dict[str, Any]:
        """The sweep's pruned-trial records, from all its record ConfigMaps: one LIST."""
        records: dict[str, Any] = {}
        for cm in self._pruned_configmaps(sweep).values():
            for name, text in (cm.get("data") or {}).items():
                try:
                    records[name] = orjson.loads(text)
                except orjson.JSONDecodeError:
                    records[name] = {}  # still pruned; its record is unreadable
        return records

    def _pruned_configmaps(self, sweep: str) -> dict[int, dict[str, Any]]:
        """The sweep's pruned-record ConfigMaps by index: labelled as the sweep's, and named as such."""
        out = {}
        for cm in self.cluster.list("ConfigMap", self._namespace, sweep_selector(sweep)):
            index = _pruned_index(sweep, (cm.get("metadata") or {}).get("name", ""))
            if index is not None:
                out[index] = cm
        return out

    def sweeps(self) -> list[str]:
        """The sweeps with trials in this namespace, for errors that must say which exist."""
        names: set[str] = set()
        for kind in TRIAL_PATHS:
            try:
                items = list(self.cluster.list(kind, self._namespace, f"{MANAGED_BY}=sweepctl", metadata_only=True))
            except ApiError as err:
                if err.status in (403, 404):
                    continue  # that kind is not installed, or not granted
                raise
            names |= {(i.get("metadata") or {}).get("labels", {}).get(SWEEP, "") for i in items}
        return sorted(names - {""})

    # -- the sweep's lock (backends/lease.py) ----------------------------------------------

    @contextmanager
    def lock(self, sweep: str, *, command: str, timeout: float) -> Iterator[Any]:
        from sweepctl.backends.lease import LEASE_SECONDS, SweepLease
        from sweepctl.backends.locking import holding, new_holder

        holder = new_holder(command)
        self.command_id = holder.id
        with holding(SweepLease(self.cluster, self._namespace, sweep), holder, timeout=timeout, sweep=sweep,
                     expires=f" within {LEASE_SECONDS} s") as held:
            yield held

    def relock(self) -> None:
        """Nothing to do: on Kubernetes the lock is held until the command ends."""

    def unlock(self, sweep: str, lock_id: str) -> Any:
        from sweepctl.backends.lease import SweepLease

        return SweepLease(self.cluster, self._namespace, sweep).unlock(lock_id)

    # -- rendering and metrics (the Backend protocol's per-backend parts) -----------------

    def desired(self, spec: Any, trial: Any) -> dict[str, Any]:
        from sweepctl.core.manifests import trial_object

        return trial_object(spec, trial, namespace=self._namespace)

    def support(self, spec: Any) -> list[dict[str, Any]]:
        from sweepctl.core.manifests import tensorboard_deployment, tensorboard_service

        return [tensorboard_deployment(spec, namespace=self._namespace),
                tensorboard_service(spec, namespace=self._namespace)]

    def record_hparams(self, spec: Any, plan: Plan) -> None:
        """Hand the plan's HParams summaries to the sweep's TensorBoard pod, in the ConfigMap it reads.

        sweepctl cannot write the log volume; the pod's `hparams` container
        (manifests.tensorboard_deployment) can, and writes from this ConfigMap:
        the writer's script and the data (gzipped JSON, so 10,000 trials fit).
        Sent only when it changed since this command last sent it; a ConfigMap
        of the name that is not the sweep's is never changed.
        """
        import gzip
        import hashlib

        from sweepctl.core.hparams import hparams_data
        from sweepctl.core.manifests import hparams_configmap, hparams_configmap_name

        if plan.destroy:
            return
        data = gzip.compress(orjson.dumps(hparams_data(spec, plan), option=orjson.OPT_SORT_KEYS), mtime=0)
        script = (Path(__file__).parent / "hparams_writer.py").read_text()
        digest = hashlib.sha256(data + script.encode()).hexdigest()
        if self._hparams_sent.get(plan.sweep) == digest:
            return
        name = hparams_configmap_name(plan.sweep)
        manifest = hparams_configmap(plan.sweep, namespace=self._namespace, script=script, data=data)
        live = self._hparams_configmap(plan.sweep)
        if live is None:
            try:
                self.cluster.request("POST", self.cluster.path("ConfigMap", self._namespace), body=manifest,
                                     query=[("fieldManager", FIELD_MANAGER)])
            except ApiError as err:
                if err.status != 409:
                    raise
                # This sweep's own, from a create whose answer was lost and that the retry sent again?
                live = self._hparams_configmap(plan.sweep)
                if live is None:
                    raise ApiError(
                        f"ConfigMap {self._namespace}/{name} exists and does not belong to sweep {plan.sweep}; "
                        "sweepctl never changes it",
                        status=409, hint="rename the sweep, or remove that ConfigMap yourself if it is not needed",
                    ) from None
        if live is not None:
            body = {**manifest, "metadata": {**manifest["metadata"], "uid": live["metadata"]["uid"]}}
            self.cluster.request("PATCH", self.cluster.path("ConfigMap", self._namespace, name),
                                 query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                                 body=body, content_type="application/apply-patch+yaml")
        self._hparams_sent[plan.sweep] = digest

    def _hparams_configmap(self, sweep: str) -> dict[str, Any] | None:
        """The sweep's HParams ConfigMap, if it has one: a LIST by name and label (the Role has no get)."""
        from sweepctl.core.manifests import hparams_configmap_name

        page = self.cluster.request("GET", self.cluster.path("ConfigMap", self._namespace),
                                    query=[("labelSelector", sweep_selector(sweep)),
                                           ("fieldSelector", f"metadata.name={hparams_configmap_name(sweep)}")])
        items = page.get("items") or []
        return items[0] if items else None

    def _delete_hparams(self, sweep: str) -> None:
        from sweepctl.core.manifests import hparams_configmap_name

        live = self._hparams_configmap(sweep)
        if live is None:
            return
        try:
            self.cluster.request("DELETE", self.cluster.path("ConfigMap", self._namespace,
                                                             hparams_configmap_name(sweep)),
                                 body={"preconditions": {"uid": live["metadata"]["uid"]}})
        except ApiError as err:
            if err.status not in (404, 409):
                raise
        self._hparams_sent.pop(sweep, None)

    def read_runs(self, sweep: str, names: Any, tags: Any, *, image_tag: str | None = None,
                  tensorboard_url: str | None = None, required: bool = True, source: MetricSource = EVENT_FILES,
                  explain: Any = ()) -> dict[str, Any]:
        """From the sweep's TensorBoard: through the API server's service proxy, or at tensorboard_url.

        The multi-run read POSTs through the proxy (`create` on services/proxy);
        where that is refused, `notes` says so and which verb to grant. A
        stdout source reads the trial pods' logs instead (`_pod_logs`)."""
        from sweepctl.metrics import tensorboard

        if source.kind == STDOUT:
            self.notes = ()
            return self._pod_logs(sweep, names, tags, source, ended=set(explain), required=required)

        fetch: tensorboard.Fetch
        if tensorboard_url:
            fetch, where = tensorboard.url_fetch(tensorboard_url), tensorboard_url
        else:
            base = self._proxy_path(sweep)

            def fetch(path: str, query: list[tuple[str, str]], *, form: list[tuple[str, str]] | None = None) -> bytes:
                try:
                    return self.cluster.request_bytes("GET" if form is None else "POST", base + path, query=query,
                                                      form=form)
                except ApiError as err:
                    raise tensorboard.FetchError(str(err), status=err.status) from None

            where = self.cluster.server + base
        reading = tensorboard.read_runs(fetch, names, tags, where=where, image_tag=image_tag, required=required,
                                        explain=explain)
        self.notes = (reading.note,) if reading.note else ()
        return reading.runs

    def _pod_logs(self, sweep: str, names: Any, metrics: Any, source: MetricSource, *, ended: set[str],
                  required: bool) -> dict[str, Any]:
        """The trials' metrics from their pods' logs: one LIST of the sweep's trial pods, one GET per log.

        The trainer's command is not wrapped: its own output is read as the
        API server serves it (`list` on pods, `get` on pods/log). A trial's
        newest pod is the one read (a retried trial's current attempt). A
        trial name ends with its id, which its pods carry as a label.
        """
        from sweepctl.metrics import stdout
        from sweepctl.metrics.events import RunData
        from sweepctl.metrics.ranking import Series

        by_id = {name.rsplit("-", 1)[-1]: name for name in names}
        newest: dict[str, dict[str, Any]] = {}
        try:
            for pod in self.cluster.list("Pod", self._namespace, f"{sweep_selector(sweep)},{TRIAL}"):
                meta = pod.get("metadata") or {}
                name = by_id.get((meta.get("labels") or {}).get(TRIAL, ""))
                if name is not None and (name not in newest or meta.get("creationTimestamp", "")
                                         >= newest[name]["metadata"].get("creationTimestamp", "")):
                    newest[name] = pod
        except ApiError as err:
            if required:
                raise
            why = f"cannot list the trials' pods: {err}"
            return {n: RunData(scalars={m: Series(error=why) for m in metrics}, error=why) for n in names}

        def read(name: str) -> tuple[str, Any]:
            pod = newest.get(name)
            text: str | None = None
            why = None
            if pod is not None:
                containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
                container = next((c for c in _TRAINER_CONTAINERS if c in containers), containers[0] if containers
                                 else None)
                try:
                    data = self.cluster.request_bytes(
                        "GET", self.cluster.path("Pod", self._namespace, pod["metadata"]["name"]) + "/log",
                        query=[("container", container)] if container else [], accept="*/*")
                    text = data.decode(errors="replace")
                except ApiError as err:
                    if err.status == 403 and required:
                        raise
                    why = None if err.status == 400 else str(err)  # 400: its container has not started
            scalars = {m: stdout.series(text, m, source.pattern, ended=name in ended) for m in metrics}
            if why:
                scalars = {m: s if s.points else Series(error=why) for m, s in scalars.items()}
            return name, RunData(scalars=scalars)

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return dict(pool.map(read, list(names)))

    def local_logs(self, sweep: str) -> Path | None:
        return None  # on the sweep's shared volume, in the cluster

    def tensorboard_proxy(self, sweep: str) -> str | None:
        return self.cluster.server + self._proxy_path(sweep)

    def _proxy_path(self, sweep: str) -> str:
        from sweepctl.core.manifests import TENSORBOARD_SERVICE_PORT, tensorboard_name

        return (f"/api/v1/namespaces/{self._namespace}/services/"
                f"{tensorboard_name(sweep)}:{TENSORBOARD_SERVICE_PORT}/proxy/")

    # -- apply ---------------------------------------------------------------------------

    def apply(self, plan: Plan, *, progress: Progress) -> ApplyResult:
        """Deletes first (they free capacity), then creates and replacements, then TensorBoard."""
        result = ApplyResult()
        lock = threading.Lock()

        def run(change: Change) -> None:
            error: str | None = None
            created = 0
            try:
                if change.action is Action.DELETE:
                    self._delete(change)
                elif change.action is Action.CREATE:
                    created = self._create(change, sweep=plan.sweep)
                elif change.action is Action.REPLACE:
                    self._delete(change)
                    self._wait_gone(change)
                    self._create(change, sweep=plan.sweep)
                elif change.action is Action.UPDATE:
                    self._update(change)
            except ApiError as err:
                # The cause in words, without the request: many trials failing for one cause share it.
                error = err.cause + (f" ({err.diagnostics[0].hint})" if err.diagnostics[0].hint else "")
            with lock:
                if error:
                    result.errors[change.name] = error
                elif change.kind in TRIAL_PATHS:
                    if change.action is Action.CREATE:
                        result.added += created
                    elif change.action is Action.REPLACE:
                        result.changed += 1
                    elif change.action is Action.DELETE:
                        result.destroyed += 1
            progress.done(change, error)

        trial_changes = [c for c in plan.trials if c.action is not Action.NOOP]
        support = plan.support_changes
        # Pruned trials are recorded before they are deleted (a deleted trial that
        # was not recorded would come back with the next apply); revived ones are
        # forgotten before they are created. A failure here stops the apply.
        revived = [c.name for c in trial_changes if c.action is Action.CREATE and c.state == PRUNED]
        if plan.prune or revived:
            self._record_pruned(plan.sweep, {**plan.prune, **{name: None for name in revived}})
        phases = [
            [c for c in [*trial_changes, *support] if c.action is Action.DELETE],
            [c for c in trial_changes if c.action in (Action.CREATE, Action.REPLACE)],
            [c for c in support if c.action in (Action.CREATE, Action.UPDATE)],
        ]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for i, phase in enumerate(phases):
                list(pool.map(run, phase))
                if i == 0 and plan.destroy:
                    self._wait_deleted(plan.sweep, [c for c in phase if c.name not in result.errors], result)
        if plan.destroy and not result.errors:
            self._delete_pruned_record(plan.sweep)
            self._delete_hparams(plan.sweep)
        return result

    def _wait_deleted(self, sweep: str, deleted: list[Change], result: ApplyResult) -> None:
        """Wait, within --timeout, until deleted objects are gone; those a finalizer keeps are errors.

        A delete only marks an object with a finalizer; destroy is complete once
        nothing of the sweep is left, so it says what it waits for and fails
        with it rather than claiming success.
        """
        said = False
        deadline = time.monotonic() + (self.cluster.retrying.timeout or float("inf"))
        while True:
            left = {}
            for kind in {c.live_kind or c.kind for c in deleted}:
                wanted = {c.name: c.uid for c in deleted if (c.live_kind or c.kind) == kind}
                for item in self.cluster.list(kind, self._namespace, sweep_selector(sweep), metadata_only=True):
                    meta = item.get("metadata") or {}
                    if meta.get("name") in wanted and meta.get("uid") == wanted[meta["name"]]:
                        left[meta["name"]] = tuple(meta.get("finalizers") or ())
            if not left:
                return
            holds = sorted({f for fs in left.values() for f in fs}) or ["(none: being deleted)"]
            why = f"waiting for finalizer {', '.join(holds)} on {len(left)} objects"
            if not said:
                self.cluster.retrying.notify(why)
                said = True
            if time.monotonic() >= deadline:
                for name in left:
                    result.errors[name] = (f"still exists after {say_seconds(self.cluster.retrying.timeout)} "
                                           f"(--timeout): held by finalizer {', '.join(left[name]) or '(none)'}")
                    result.destroyed -= 1 if any(c.name == name and c.kind in TRIAL_PATHS for c in deleted) else 0
                return
            time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))

    def _record_pruned(self, sweep: str, records: dict[str, Any]) -> None:
        """Merge records into the sweep's ConfigMaps, read again and merged again on a conflict (5 tries).

        A conflict is another prune's write, or this one's whose answer was
        lost: merging is idempotent, so doing it again on what is there is right.
        """
        for attempt in range(5):
            try:
                return self._merge_records(sweep, records)
            except _RecordConflict:
                if attempt == 4:
                    raise ApiError(f"the pruned-trial records of sweep {sweep} kept changing while they were "
                                   "written", status=409, hint="run the command again") from None
                time.sleep(0.01 * 2**attempt)

    def _merge_records(self, sweep: str, records: dict[str, Any]) -> None:
        """Merge records into the sweep's ConfigMaps (None removes one), adding ConfigMaps as they fill.

        A record already kept is changed where it is; new ones fill the
        ConfigMaps with room, then new ConfigMaps. Each patch carries the
        resourceVersion it read, so a concurrent prune is refused (409) rather
        than silently overwritten; a ConfigMap of the name that is not the
        sweep's is never changed.
        """
        maps = self._pruned_configmaps(sweep)
        where = {key: i for i, cm in maps.items() for key in (cm.get("data") or {})}
        sizes = {i: sum(_record_size(k, v) for k, v in (cm.get("data") or {}).items()) for i, cm in maps.items()}
        patches: dict[int, dict[str, str | None]] = {}
        for key, record in records.items():
            text = None if record is None else orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()
            if key in where:
                patches.setdefault(where[key], {})[key] = text
                continue
            if text is None:
                continue  # not kept anywhere: nothing to remove
            size = _record_size(key, text)
            index = next((i for i in sorted(sizes) if sizes[i] + size <= PRUNED_BYTES_PER_CONFIGMAP), None)
            if index is None:
                index = max([*sizes, 0]) + 1
            sizes[index] = sizes.get(index, 0) + size
            where[key] = index
            patches.setdefault(index, {})[key] = text
        for index, data in sorted(patches.items()):
            name = pruned_configmap_name(sweep, index)
            if index in maps:
                version = maps[index]["metadata"]["resourceVersion"]
                try:
                    self.cluster.request("PATCH", self.cluster.path("ConfigMap", self._namespace, name),
                                         body={"metadata": {"resourceVersion": version}, "data": data},
                                         content_type="application/merge-patch+json")
                except ApiError as err:
                    if err.status == 409:
                        raise _RecordConflict() from None
                    raise
                continue
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": self._namespace,
                             "labels": {MANAGED_BY: "sweepctl", SWEEP: sweep}},
                "data": {k: v for k, v in data.items() if v is not None},
            }
            try:
                self.cluster.request("POST", self.cluster.path("ConfigMap", self._namespace), body=body,
                                     query=[("fieldManager", FIELD_MANAGER)])
            except ApiError as err:
                if err.status != 409:
                    raise
                if _pruned_index(sweep, name) in self._pruned_configmaps(sweep):
                    raise _RecordConflict() from None  # ours: made by a create whose answer was lost
                raise ApiError(
                    f"ConfigMap {self._namespace}/{name} exists and does not belong to sweep {sweep}; "
                    "sweepctl never changes it",
                    status=409, hint="rename the sweep, or remove that ConfigMap yourself if it is not needed",
                ) from None

    def _delete_pruned_record(self, sweep: str) -> None:
        """Delete the sweep's record ConfigMaps, each by the uid it was listed with."""
        for index, cm in self._pruned_configmaps(sweep).items():
            body = {"preconditions": {"uid": cm["metadata"]["uid"]}}
            try:
                self.cluster.request("DELETE", self.cluster.path("ConfigMap", self._namespace,
                                                                 pruned_configmap_name(sweep, index)), body=body)
            except ApiError as err:
                if err.status not in (404, 409):
                    raise

    def _create(self, change: Change, *, sweep: str) -> int:
        """Create the object: 1 if this command created it, 0 if it was there already (as this sweep's).

        The object carries this command's id (CREATED_BY), so a create whose
        answer was lost, sent again and answered 409, is told apart from an
        object another command made: only its own counts as added.
        """
        assert change.manifest is not None
        meta = change.manifest["metadata"]
        body = {**change.manifest, "metadata": {**meta, "annotations": {**meta.get("annotations", {}),
                                                                         CREATED_BY: self.command_id}}} \
            if self.command_id else change.manifest
        try:
            self.cluster.request("POST", self.cluster.path(change.kind, self._namespace), body=body,
                                 query=[("fieldManager", FIELD_MANAGER)])
        except ApiError as err:
            if err.status != 409:
                raise
            existing = self._check_existing(change, sweep=sweep)
            mine = bool(self.command_id) and \
                ((existing.get("metadata") or {}).get("annotations") or {}).get(CREATED_BY) == self.command_id
            return 1 if mine else 0
        return 1

    def _check_existing(self, change: Change, *, sweep: str) -> dict[str, Any]:
        """A name collision is success only for this sweep's object with the same template; returns it."""
        assert change.manifest is not None
        existing = self.cluster.request("GET", self.cluster.path(change.kind, self._namespace, change.name))
        meta = existing.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get(MANAGED_BY) != "sweepctl" or labels.get(SWEEP) != sweep:
            raise ApiError(
                f"{change.kind} {self._namespace}/{change.name} already exists and does not belong to "
                f"sweep {sweep}; sweepctl never adopts or deletes it",
                status=409, hint="rename the sweep, or remove that object yourself if it is not needed",
            )
        want = change.manifest["metadata"]["annotations"][TEMPLATE_HASH]
        if (meta.get("annotations") or {}).get(TEMPLATE_HASH) != want:
            raise ApiError(
                f"{change.kind} {change.name} already exists with another template",
                status=409, hint=f"run `sweepctl plan` to see the drift; --replace {change.name} recreates it",
            )
        return existing

    def _delete(self, change: Change) -> None:
        """Delete the live object (of `live_kind` when a trial changes kind), by the uid the plan saw."""
        kind = change.live_kind or change.kind
        body = {"propagationPolicy": "Background", "preconditions": {"uid": change.uid}}
        try:
            self.cluster.request("DELETE", self.cluster.path(kind, self._namespace, change.name), body=body)
        except ApiError as err:
            if err.status == 404:
                return  # already gone: an interrupted apply, or someone else
            if err.status == 409:
                raise ApiError(
                    f"{kind} {change.name} was replaced since the plan was made; not deleted",
                    status=409, hint="run `sweepctl plan` again",
                ) from None
            raise

    def _wait_gone(self, change: Change, timeout: float = 60) -> None:
        path = self.cluster.path(change.live_kind or change.kind, self._namespace, change.name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                current = self.cluster.request("GET", path)
            except ApiError as err:
                if err.status == 404:
                    return
                raise
            if (current.get("metadata") or {}).get("uid") != change.uid:
                return
            time.sleep(0.2)
        raise ApiError(f"{change.kind} {change.name} is still being deleted after {timeout:.0f} s", status=0,
                       hint="check its finalizers, then run apply again")

    def _update(self, change: Change) -> None:
        """Server-side apply of a TensorBoard object sweepctl owns (the uid pins which)."""
        assert change.manifest is not None
        body = {**change.manifest, "metadata": {**change.manifest["metadata"], "uid": change.uid}}
        self.cluster.request(
            "PATCH", self.cluster.path(change.kind, self._namespace, change.name),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            body=body, content_type="application/apply-patch+yaml",
        )
