"""Bad specs are refused with file, line, column and a hint, before any API request.

The kubeconfig points at a real TCP listener on loopback that records every
connection, so "no request was made" is observed, not assumed.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

GOOD = """\
name: lab
backend: kubernetes
hyperParamValues:
  learningRate: [0.001, 0.01, 0.1]
  hiddenLayers: [5, 6, 7]
"""

CASES = {
    "malformed YAML": (
        "name: lab\nhyperParamValues:\n  learningRate: [0.001, 0.01\n  hiddenLayers: [5]\n",
        "malformed YAML: expected ',' or ']', but got ':'", (4, 15), "indentation",
    ),
    "unknown key": (GOOD.replace("name: lab", "name: lab\nimgae: x"), "unknown key 'imgae'", (2, 1), "did you mean 'image'?"),
    "nested unknown key": (
        GOOD + "tensorboard:\n  servicetype: ClusterIP\n", "unknown key 'servicetype' in tensorboard", (7, 3),
        "did you mean 'serviceType'?",
    ),
    "empty list": (GOOD.replace("[5, 6, 7]", "[]"), "hyperParamValues.hiddenLayers is an empty list", (5, 17), "at least one"),
    "duplicate by value": (
        GOOD.replace("[0.001, 0.01, 0.1]", "[0.001, 0.01, 1.0e-2]"), "lists 0.01 twice", (4, 31), "same",
    ),
    "non-scalar value": (
        GOOD.replace("[5, 6, 7]", "[5, [6, 7]]"), "hyperParamValues.hiddenLayers[1]: expected a number, a string or true or false, got a list",
        (5, 21), "single scalar",
    ),
    "wrong type": (GOOD + "useGPU: sometimes\n", "useGPU: expected true or false, got a string", (6, 9), None),
    "name not DNS-safe": (
        GOOD.replace("name: lab", "name: Starry_Night"), "sweep name 'Starry_Night' is not a DNS-1035 label", (1, 7),
        "e.g. 'starry-night'",
    ),
    "runtime without TrainJob": (
        GOOD + "kubernetes:\n  runtime: mine\n", "kubernetes.runtime names a Trainer v2 runtime, which only TrainJob",
        (7, 3), "add kind: TrainJob under kubernetes",
    ),
    "unknown trial kind": (
        GOOD + "kubernetes: {kind: TrainJobs}\n", "kubernetes.kind: 'TrainJobs' is not one of TFJob, TrainJob", (6, 20),
        "did you mean 'TrainJob'?",
    ),
    "runtime not a DNS name": (
        GOOD + "kubernetes: {kind: TrainJob, runtime: My_Runtime}\n", "kubernetes.runtime: 'My_Runtime' is not valid "
        "(a DNS-1123 subdomain", (6, 39), None,
    ),
    "name too long": (GOOD.replace("name: lab", "name: " + "a" * 41), "is not a DNS-1035 label of at most 40", (1, 7), None),
    "grid over the limit": (
        GOOD.replace("[5, 6, 7]", "[" + ", ".join(str(i) for i in range(400)) + "]"),
        "the grid has 1,200 trials (3 x 400), more than the limit of 1,000", (3, 1), "--max-trials 1200",
    ),
    "LoadBalancer without ranges": (
        GOOD + "tensorboard: {serviceType: LoadBalancer}\n", "LoadBalancer TensorBoard needs", (6, 28), "CIDRs",
    ),
    "hyperparameter name": (
        GOOD.replace("hiddenLayers", "hidden-layers"), "hyperparameter name 'hidden-layers' must be camelCase", (5, 3),
        "'hiddenLayers'",
    ),
    "same value as text and as a number": (
        GOOD.replace("[0.001, 0.01, 0.1]", "[0.001, 0.01, '0.01']"), "lists '0.01' twice (the same value as item 1)",
        (4, 31), "'0.01' are the same",
    ),
    "two names, one flag": (
        GOOD + "  lr: [1]\n  LR: [2]\n", "hyperparameters lr and LR both become the flag --lr", (7, 3), "keep one",
    ),
    "swept threads": (
        GOOD + "  threads: [1, 2]\n", "hyperparameter threads becomes the flag --threads, which sweepctl sets itself",
        (6, 3), "local.threadsPerTrial",
    ),
    "swept logDir": (
        GOOD.replace("hiddenLayers", "logDir"), "hyperparameter logDir becomes the flag --log-dir", (5, 3),
        "its own log folder",
    ),
    "log-dir in args": (
        GOOD + "args: [--epochs, '3', --log-dir=/x]\n", "args: --log-dir is set by sweepctl itself", (6, 23),
        "remove it from args",
    ),
    "NodePort without allowNodePort": (
        GOOD + "tensorboard: {serviceType: NodePort}\n", "a NodePort TensorBoard needs tensorboard.allowNodePort: true",
        (6, 28), "no authentication",
    ),
    "a tag on a list": (
        GOOD.replace("[5, 6, 7]", "!!python/object/apply:os.system ['echo pwned']"),
        "the tag !!python/object/apply:os.system is not allowed", (5, 17), "remove the tag",
    ),
    "a tag on a scalar": (
        GOOD.replace("[5, 6, 7]", "[5, !!python/name:os.system x]"), "the tag !!python/name:os.system is not allowed",
        (5, 21), "remove the tag",
    ),
    "a recursive alias": (
        GOOD.replace("[5, 6, 7]", "&x [5, *x]"), "an alias refers to the anchor that contains it", (5, 17), None,
    ),
    "missing name": (GOOD.replace("name: lab\n", ""), "missing required key 'name'", (1, 1), "name: my-sweep"),
}


@pytest.fixture
def recording_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """A listener standing in for the API server: it only records connections."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(0.2)
    seen: list[tuple[str, int]] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, addr = sock.accept()
            except TimeoutError:
                continue
            seen.append(addr)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    port = sock.getsockname()[1]
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    yield seen
    stop.set()
    thread.join()
    sock.close()


def test_the_recorder_sees_a_real_request(sweepctl, recording_server, tmp_path: Path) -> None:
    spec = tmp_path / "good.yaml"
    spec.write_text(GOOD)
    res = sweepctl("plan", spec, "--timeout", "2s")  # a listener that answers nothing is retried until then
    assert res.exit_code == 1
    assert recording_server, "a valid spec must reach the API server"


@pytest.mark.parametrize("case", CASES)
def test_bad_spec_is_refused_before_any_request(sweepctl, recording_server, tmp_path: Path, case: str) -> None:
    text, message, position, hint = CASES[case]
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    for command in (("plan", spec), ("apply", spec, "--auto-approve"), ("plan", spec, "-o", "json")):
        res = sweepctl(*command)
        assert res.exit_code == 1, res.output
    assert recording_server == []
    res = sweepctl("plan", spec)
    assert message in res.stderr
    if position:
        assert f"bad.yaml:{position[0]}:{position[1]}: " in res.stderr
    else:
        assert "bad.yaml:" in res.stderr
    if hint:
        assert hint in res.stderr
    diagnostics = json.loads(sweepctl("plan", spec, "-o", "json").stdout)["error"]["diagnostics"]
    assert any(message in d["message"] for d in diagnostics)
    assert not (tmp_path / ".sweepctl" / "plan.json").exists()


def test_missing_spec_file(sweepctl, recording_server) -> None:
    res = sweepctl("plan", "nope.yaml")
    assert res.exit_code == 1
    assert "nope.yaml: no such file" in res.stderr


def test_an_explicit_node_port_is_accepted() -> None:
    from sweepctl.core.manifests import tensorboard_service
    from sweepctl.core.spec import load_spec

    spec = load_spec(GOOD + "tensorboard: {serviceType: NodePort, allowNodePort: true}\n")
    assert tensorboard_service(spec, namespace="ns")["spec"]["type"] == "NodePort"
