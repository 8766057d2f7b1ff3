"""The examples of examples/ swept on the full cluster, as TFJob and as TrainJob trials.

Each example's image is built by the test bed FROM the trainer image and loaded
into the node. The three sweeps of a kind run at once in one namespace; each is
checked as on the local backend: the pods run the example's own command (as the
container's command, args empty), status ranks the trials by the objective, read
here independently (TensorBoard's reader on the log volume, `kubectl logs` for
stdout), prune --keep best=1 keeps only the best, and report draws the sheet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import images
import node
import pytest
import yaml
from examples_helpers import ALL, Example
from realcluster import FullCluster, Namespace, json_out, state, wait_for

MOUNT = "/tmp/tensorflow"
# Small requests: the 12 trials and 3 TensorBoards of a kind fit the one node at once.
RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
COMMANDS: dict[str, Callable[[dict[str, Any], str], list[str]]] = {
    "keras": lambda p, _: ["python", "train.py", f"--learning-rate={p['learningRate']}", "--units", str(p["units"])],
    "tensorboardx": lambda p, log_dir: ["python", "train.py", f"--learning_rate={p['learningRate']}",
                                        "--hidden_units", str(p["hiddenUnits"]), "--log_dir", log_dir],
    "stdout": lambda p, _: ["python", "train.py", f"--learningRate={p['learningRate']}",
                            f"--batchSize={p['batchSize']}"],
}


def spec_of(example: Example) -> dict[str, Any]:
    return yaml.safe_load(example.spec.read_text())


@pytest.fixture(scope="module")
def example_images(full_cluster: FullCluster) -> None:
    """Each example's image, built (first use) FROM the trainer image and loaded into the node."""
    builder = images.Builder(node.cache_dir())
    trainer_ref, tensorboard_ref = images.default_images()
    trainer = images.trainer_image(builder, (images.full_name(trainer_ref), images.full_name(tensorboard_ref)))
    built = [images.example_image(builder, e.folder, (images.full_name(spec_of(e)["image"]),), trainer) for e in ALL]
    images.load(node.ctr(full_cluster.run_dir), built, node.cache_dir() / "containerd" / "sweepctl-loaded.json")


def finished(kind: str, job: dict[str, Any]) -> bool:
    if kind == "TFJob":
        return state(job) == "Succeeded"
    return any(c["type"] == "Complete" and c["status"] == "True" for c in job.get("status", {}).get("conditions") or [])


def trial_pods(cluster: FullCluster, ns: str, sweep: str) -> dict[str, dict[str, Any]]:
    """A sweep's trial pods by trial id (TensorBoard's pods have no trial label)."""
    items = cluster.get("pods", "-n", ns, "-l", f"sweepctl.dev/sweep={sweep},sweepctl.dev/trial")["items"]
    return {p["metadata"]["labels"]["sweepctl.dev/trial"]: p for p in items}


def expected_series(cluster: FullCluster, namespace: Namespace, example: Example, name: str,
                    pod: dict[str, Any]) -> list[tuple[int, float]]:
    if example.stdout:
        output = cluster.kubectl("logs", "-n", namespace.name, pod["metadata"]["name"]).stdout
        return example.series(output=output)
    return example.series(log_dir=namespace.volume / example.sweep / name)


@pytest.mark.parametrize("kind", ["TFJob", "TrainJob"])
def test_the_examples_train_rank_prune_and_report(kind: str, full_cluster: FullCluster, e2e_namespace: Namespace,
                                                 runtime: str, example_images: None, sweepctl, tmp_path: Path) -> None:
    ns = e2e_namespace.name
    resource = "tfjobs" if kind == "TFJob" else "trainjobs"
    specs = {}
    for example in ALL:
        spec = {**spec_of(example), "backend": "kubernetes", "kubernetes": {"kind": kind}, "resources": RESOURCES}
        specs[example.name] = tmp_path / f"{example.name}.yaml"
        specs[example.name].write_text(yaml.safe_dump(spec, sort_keys=False))
    started = time.monotonic()
    for example in ALL:
        res = sweepctl("apply", specs[example.name], "-n", ns, "--auto-approve")
        assert res.exit_code == 0, res.output
    wait_for(f"12 {kind}s finished", lambda: (jobs := full_cluster.get(resource, "-n", ns)["items"])
             and len(jobs) == 12 and all(finished(kind, j) for j in jobs), 600, 2)
    print(f"\n{kind}: apply to 12 trials of 3 examples finished: {time.monotonic() - started:.1f} s")

    for example in ALL:
        spec = specs[example.name]
        pods = trial_pods(full_cluster, ns, example.sweep)
        rows = json_out(sweepctl("status", spec, "-n", ns, "-o", "json"))
        assert len(rows) == 4 and sorted(pods) == sorted(r["id"] for r in rows)
        expected, steps = {}, {}
        for r in rows:
            pod = pods[r["id"]]
            (container,) = pod["spec"]["containers"]
            log_dir = f"{MOUNT}/{example.sweep}/{r['name']}"
            want = COMMANDS[example.name](r["params"], log_dir)
            assert container["command"][:2] == want[:2] and sorted(container["command"]) == sorted(want)
            assert not container.get("args")
            env = {e["name"]: e.get("value") for e in container.get("env") or []}
            assert env["SWEEPCTL_LOG_DIR"] == log_dir and env["SWEEPCTL_TRIAL"] == r["name"]
            assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
            series = expected_series(full_cluster, e2e_namespace, example, r["name"], pod)
            expected[r["name"]], steps[r["name"]] = example.best(series), series[-1][0]

        def scored() -> list[dict[str, Any]] | None:
            """The sweep's TensorBoard rereads its runs every 5 s: it may serve part of a run at first."""
            got = json_out(sweepctl("status", spec, "-n", ns, "-o", "json"))
            return got if {r["name"]: r["metric"] for r in got} == pytest.approx(expected, rel=1e-6) else None

        rows = wait_for(f"status to rank the {example.name} example's trials", scored, 120, 2)
        assert {r["name"]: r["step"] for r in rows} == steps
        ordered = sorted(expected.values(), reverse=example.goal == "maximize")
        assert [r["metric"] for r in rows] == pytest.approx(ordered, rel=1e-6) and [r["rank"] for r in rows] == [1, 2, 3, 4]
        best = rows[0]

        res = sweepctl("prune", spec, "-n", ns, "--keep", "best=1", "--auto-approve")
        assert res.exit_code == 0, res.output
        jobs = full_cluster.get(resource, "-n", ns, "-l", f"sweepctl.dev/sweep={example.sweep}")["items"]
        assert [j["metadata"]["name"] for j in jobs] == [best["name"]]
        after = {r["name"]: r for r in json_out(sweepctl("status", spec, "-n", ns, "-o", "json"))}
        assert sorted(n for n, r in after.items() if r["state"] == "pruned") == sorted(set(expected) - {best["name"]})
        assert {n: r["metric"] for n, r in after.items()} == pytest.approx(expected, rel=1e-6)

        sheet = tmp_path / f"{example.name}.png"
        report = json_out(sweepctl("report", spec, "-n", ns, "--out", sheet, "-o", "json"))
        tiles = {t["name"]: t for t in report["tiles"]}
        assert tiles[best["name"]]["metric"] == pytest.approx(best["metric"], rel=1e-6)
        assert not any(t["image"] for t in tiles.values()) and all(t["curve"] for t in tiles.values())
        assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        plan = json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))
        assert plan["summary"] == {"add": 0, "change": 0, "destroy": 0}
    print(f"{kind}: the whole test: {time.monotonic() - started:.1f} s")
