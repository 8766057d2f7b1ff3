"""status, prune and report on Kubernetes read a real TensorBoard through the real API server's service proxy.

The sweep's Service is routed to a TensorBoard process on this host
(tensorboard_helpers.route_service); the API server counts what it proxies.
With `create` on services/proxy (the README's Role) the metrics of every trial
come in one POST per tag; without it, one GET per trial, and a note says which
verb to grant.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from events_helpers import write_loss
from readme_role import readme_role
from tensorboard_helpers import host_address, proxy_requests, route_service, serve

from sweepctl.core.manifests import tensorboard_name

SWEEP = "paint"  # the sweep of conftest.py's `trained`


@pytest.fixture(scope="module")
def host() -> str:
    address = host_address()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address for the API server to proxy to")
    return address


def grant(control_plane, ns: str, role: str) -> None:
    control_plane.kubectl("-n", ns, "apply", "-f", "-", input=role)
    control_plane.kubectl("-n", ns, "create", "rolebinding", "sweepctl", "--role=sweepctl", "--user=restricted")


def counted(control_plane, sweepctl, *args) -> tuple[object, int]:
    """Run sweepctl; its result and how many requests the API server proxied meanwhile."""
    before = proxy_requests(control_plane.kubectl)
    res = sweepctl(*args)
    return res, proxy_requests(control_plane.kubectl) - before


def grid(ns: str, n: int) -> str:
    lrs = ", ".join(f"{(i + 1) / 1000:.3f}" for i in range(n))
    return f"name: many\nbackend: kubernetes\nnamespace: {ns}\nhyperParamValues:\n  learningRate: [{lrs}]\n"


def test_status_reads_every_trial_in_a_constant_number_of_requests(
    sweepctl, control_plane, namespace: str, kube_env, tmp_path: Path, host: str, monkeypatch
) -> None:
    from sweepctl.metrics import tensorboard

    spec = tmp_path / "many.yaml"
    spec.write_text(grid(namespace, 30))
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    names = json.loads(control_plane.kubectl("-n", namespace, "get", "tfjobs", "-o", "json").stdout)["items"]
    losses: dict[str, float | str] = {}
    *jobs, diverged = sorted(j["metadata"]["name"] for j in names)
    for i, job in enumerate(jobs):
        losses[job] = 1.0 + i / 8  # exact in float32
        write_loss(tmp_path / "logs" / job, [(0, 100.0), (10, losses[job]), (20, losses[job] + 1)])
    write_loss(tmp_path / "logs" / diverged, [(0, float("nan")), (10, float("nan"))])  # TensorBoard sends "NaN"
    losses[diverged] = "nan"
    with serve(tmp_path / "logs", host=host, ready=lambda index: len(index) == 30) as url:
        route_service(control_plane.kubectl, namespace, tensorboard_name("many"), url)

        res, requests = counted(control_plane, sweepctl, "status", spec, "-o", "json")
        assert res.exit_code == 0, res.output
        rows = json.loads(res.stdout)
        assert {r["name"]: r["metric"] for r in rows} == losses
        assert rows[28]["name"] == jobs[-1] and rows[29]["name"] == diverged  # NaN ranks last
        assert requests == 2  # the tag index and one POST, for 30 trials
        assert "Note" not in res.stderr

        # Batches of runs: still every trial's series, in one request per batch.
        monkeypatch.setattr(tensorboard, "MULTIRUN_BATCH", 7)
        res, requests = counted(control_plane, sweepctl, "status", spec, "-o", "json")
        assert {r["name"]: r["metric"] for r in json.loads(res.stdout)} == losses
        assert requests == 1 + 5


def test_the_readme_role_reads_in_bulk_and_without_create_it_reads_run_by_run_and_says_so(
    sweepctl, control_plane, namespace: str, kube_env, trained: Path, tmp_path: Path, spec_text, host: str
) -> None:
    spec = tmp_path / "k.yaml"
    spec.write_text(spec_text(backend="kubernetes", namespace=namespace))
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    role = readme_role()
    grant(control_plane, namespace, role)
    as_restricted = ("--context", "restricted@testbed")
    logs = trained / ".sweepctl" / "sweeps" / SWEEP / "logs"
    names = list(json.loads((logs.parent / "state.json").read_text())["trials"])  # not the HParams experiment's run
    with serve(logs, host=host, ready=lambda index: all("loss" in index.get(n, {}) for n in names)) as url:
        route_service(control_plane.kubectl, namespace, tensorboard_name(SWEEP), url)

        # The trainer's real runs, read as the README's Role allows: the tag index and one POST.
        res, requests = counted(control_plane, sweepctl, "status", spec, "-o", "json", *as_restricted)
        assert res.exit_code == 0, res.output
        bulk = json.loads(res.stdout)
        assert [r["params"]["learningRate"] for r in bulk] == [0.1, 0.01, 0.001]
        assert all(r["metric"] > 0 for r in bulk)
        assert requests == 2 and "Note" not in res.stderr
        res = sweepctl("report", spec, "--out", tmp_path / "sheet.png", "-o", "json", *as_restricted)
        assert res.exit_code == 0, res.output
        assert [t["image"] for t in json.loads(res.stdout)["tiles"]] == [True, True, True]

        # The same Role without `create` on services/proxy: the POST is refused (403).
        without_create = re.sub(r"(resources: \[services/proxy\].*\n\s*verbs: )\[[^\]]*\]", r"\1[get]", role)
        assert without_create != role
        control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=without_create)
        res, requests = counted(control_plane, sweepctl, "status", spec, "-o", "json", *as_restricted)
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout) == bulk  # the same figures, the slow way
        assert requests == 1 + 3  # the tag index, one GET per trial (the refused POST is stopped before the proxy)
        (note,) = [line for line in res.stderr.splitlines() if line.startswith("Note:")]
        assert "403" in note and "grant `create` on `services/proxy`" in note and "(4 requests)" in note

        res = sweepctl("status", spec, *as_restricted)  # the table, with the note on stderr
        assert res.exit_code == 0 and "grant `create` on `services/proxy`" in res.stderr
        res = sweepctl("prune", spec, "--keep", "best=1", "--auto-approve", *as_restricted)
        assert res.exit_code == 0, res.output
        assert "0 added, 0 changed, 2 destroyed" in res.stdout and "services/proxy" in res.stderr
    jobs = json.loads(control_plane.kubectl("-n", namespace, "get", "tfjobs", "-o", "json").stdout)["items"]
    assert [j["metadata"]["name"] for j in jobs] == [bulk[0]["name"]]


def test_keras_folders_are_runs_of_the_trial_read_in_the_same_requests_as_the_readme_role(
    sweepctl, control_plane, namespace: str, kube_env, tmp_path: Path, host: str
) -> None:
    from library_writers import tensorboardx_scalars

    spec = tmp_path / "keras.yaml"
    spec.write_text(grid(namespace, 4).replace("name: many", "name: keras")
                    + "objective: {metric: validation/epoch_accuracy, goal: maximize}\n")
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    grant(control_plane, namespace, readme_role())
    jobs = sorted(j["metadata"]["name"] for j in json.loads(
        control_plane.kubectl("-n", namespace, "get", "tfjobs", "-o", "json").stdout)["items"])
    *scored, lost = jobs
    accuracy = {}
    for i, job in enumerate(scored):
        accuracy[job] = 0.5 + i / 8  # exact in float32
        tensorboardx_scalars(tmp_path / "logs" / job / "validation",
                             {"epoch_accuracy": [(0, 0.25), (1, accuracy[job])]})
        # train/ holds the same tag, higher: read it and the ranking would differ
        tensorboardx_scalars(tmp_path / "logs" / job / "train", {"epoch_accuracy": [(0, 0.9 - i / 8)]})
    tensorboardx_scalars(tmp_path / "logs" / lost / "train", {"epoch_accuracy": [(0, 0.75)], "epoch_loss": [(0, 1.0)]})
    control_plane.kubectl("-n", namespace, "patch", "tfjob", lost, "--subresource=status", "--type=merge",
                          "-p", json.dumps({"status": {"conditions": [{"type": "Succeeded", "status": "True"}]}}))
    runs = {f"{job}/validation" for job in scored} | {f"{job}/train" for job in jobs}
    with serve(tmp_path / "logs", host=host, ready=lambda index: runs <= set(index)) as url:
        route_service(control_plane.kubectl, namespace, tensorboard_name("keras"), url)

        res, requests = counted(control_plane, sweepctl, "status", spec, "-o", "json",
                                "--context", "restricted@testbed")
        assert res.exit_code == 0, res.output
        rows = {r["name"]: r for r in json.loads(res.stdout)}
        assert {job: rows[job]["metric"] for job in scored} == accuracy
        assert [rows[job]["rank"] for job in reversed(scored)] == [1, 2, 3]
        assert requests == 2 and "Note" not in res.stderr  # the tag index and one POST, as for flat runs
        assert rows[lost]["metric"] is None and rows[lost]["note"] == (
            "no 'validation/epoch_accuracy'; found train/epoch_accuracy, train/epoch_loss")
