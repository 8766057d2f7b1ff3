"""The test bed is a real API server: selectors, pagination, validation, dry-run, RBAC."""

from __future__ import annotations

import json

import pytest

from sweepctl.backends.kubernetes import ApiError, Cluster

TFJOBS = "/apis/kubeflow.org/v1/namespaces/{ns}/tfjobs"


def tfjob(name: str, sweep: str) -> dict:
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name, "labels": {"sweep": sweep}},
        "spec": {
            "tfReplicaSpecs": {
                "Chief": {
                    "replicas": 1,
                    "template": {"spec": {"containers": [{"name": "tensorflow", "image": "busybox"}]}},
                }
            }
        },
    }


@pytest.fixture
def cluster(kube_env: dict[str, str]) -> Cluster:
    return Cluster()


def test_crd_is_established(control_plane) -> None:
    out = control_plane.kubectl("get", "crd", "tfjobs.kubeflow.org", "-o", "json").stdout
    conditions = {c["type"]: c["status"] for c in json.loads(out)["status"]["conditions"]}
    assert conditions["Established"] == "True"


def test_list_by_label_selector_with_pagination(cluster: Cluster, namespace: str) -> None:
    path = TFJOBS.format(ns=namespace)
    for i in range(7):
        cluster.request("POST", path, body=tfjob(f"a-{i}", "a"))
    for i in range(3):
        cluster.request("POST", path, body=tfjob(f"b-{i}", "b"))

    names, pages, token = [], 0, None
    while True:
        query = [("labelSelector", "sweep=a"), ("limit", 3)] + ([("continue", token)] if token else [])
        page = cluster.request("GET", path, query=query)
        pages += 1
        names += [item["metadata"]["name"] for item in page["items"]]
        assert len(page["items"]) <= 3
        token = page["metadata"].get("continue")
        if not token:
            break
    assert sorted(names) == [f"a-{i}" for i in range(7)]
    assert pages == 3


def test_wrong_type_is_rejected_with_422(cluster: Cluster, namespace: str) -> None:
    body = tfjob("broken", "x")
    body["spec"]["tfReplicaSpecs"]["Chief"]["replicas"] = "one"
    with pytest.raises(ApiError) as err:
        cluster.request("POST", TFJOBS.format(ns=namespace), body=body)
    assert err.value.status == 422
    assert "replicas" in str(err.value)


def test_tfjob_without_replica_specs_is_rejected(cluster: Cluster, namespace: str) -> None:
    body = tfjob("no-replicas", "x")
    body["spec"] = {}
    with pytest.raises(ApiError) as err:
        cluster.request("POST", TFJOBS.format(ns=namespace), body=body)
    assert err.value.status == 422
    assert "tfReplicaSpecs" in str(err.value)


def test_server_side_dry_run_changes_nothing(cluster: Cluster, namespace: str) -> None:
    path = TFJOBS.format(ns=namespace)
    created = cluster.request("POST", path, query=[("dryRun", "All")], body=tfjob("dry", "d"))
    assert created["metadata"]["name"] == "dry"
    assert cluster.request("GET", path)["items"] == []


def test_restricted_token_is_refused_outside_its_role(control_plane, cluster: Cluster, namespace: str) -> None:
    # Grant the restricted user TFJob rights in this namespace only.
    control_plane.kubectl("-n", namespace, "create", "role", "tfjobs", "--verb=get,list,create",
                          "--resource=tfjobs.kubeflow.org")
    control_plane.kubectl("-n", namespace, "create", "rolebinding", "tfjobs", "--role=tfjobs", "--user=restricted")
    allowed = control_plane.kubectl("-n", namespace, "get", "tfjobs", user="restricted")
    assert allowed.returncode == 0

    refused = control_plane.kubectl("-n", "default", "get", "tfjobs", user="restricted", check=False)
    assert refused.returncode != 0
    assert "Forbidden" in refused.stderr

    refused = control_plane.kubectl("-n", namespace, "delete", "tfjob", "anything", user="restricted", check=False)
    assert "Forbidden" in refused.stderr

    restricted = Cluster(context="restricted@testbed")
    restricted.request("GET", TFJOBS.format(ns=namespace))
    with pytest.raises(ApiError) as err:
        restricted.request("GET", TFJOBS.format(ns="default"))
    assert err.value.status == 403
