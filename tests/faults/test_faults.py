"""The fault suite: sweepctl as the README Role's user while the API server throttles, loses answers,
goes silent, restarts, or its etcd freezes; and commands racing for one sweep.

What must hold after each case (the issue's "converged"): the live set equals
the spec, no duplicates, an empty re-plan, the kept trials' UIDs unchanged, no
traceback, no manual step.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from faultproxy import FaultProxy
from lockhelpers import SWEEPCTL, AS_USER, trial_uids, write_spec

RAW = ("Traceback", "urllib3", "MaxRetryError", "ProtocolError", "NewConnectionError")


def sweepctl(kubeconfig: Path, cwd: Path, *args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SWEEPCTL), *map(str, args), *AS_USER], cwd=cwd, text=True, capture_output=True,
                          timeout=timeout, env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(kubeconfig),
                                                "COLUMNS": "200", "HOME": str(cwd)}, stdin=subprocess.DEVNULL)


def values(n: int, start: int = 1) -> list[float]:
    return [round(0.0001 * i, 6) for i in range(start, start + n)]


def assert_converged(bed, ns: str, kubeconfig: Path, cwd: Path, spec: Path, expected: int,
                     kept: dict[str, str] | None = None) -> None:
    live = trial_uids(bed, ns)
    assert len(live) == expected  # names are the trials' values: one object per name, so no duplicates
    params = [json.loads(i["metadata"]["annotations"]["sweepctl.dev/params"]) for i in json.loads(
        bed.kubectl("-n", ns, "get", "tfjobs", "-o", "json").stdout)["items"]]
    assert len({json.dumps(p, sort_keys=True) for p in params}) == expected  # no duplicate by value either
    replan = sweepctl(kubeconfig, cwd, "plan", spec, "--detailed-exitcode")
    assert replan.returncode == 0, replan.stdout + replan.stderr
    for name, uid in (kept or {}).items():
        assert live.get(name) == uid, f"{name} was recreated"


def no_raw(result: subprocess.CompletedProcess[str]) -> None:
    for word in RAW:
        assert word not in result.stdout + result.stderr, result.stderr


def test_a_429_storm_is_ridden_out_with_retry_after_honoured_and_few_extra_requests(
        bed, ns: str, proxy: FaultProxy, tmp_path: Path) -> None:
    kubeconfig = proxy.kubeconfig(bed.kubeconfig, tmp_path / "kubeconfig")
    clean_ns = f"{ns}-clean"
    bed.kubectl("create", "namespace", clean_ns)
    from lockhelpers import grant_readme_role
    grant_readme_role(bed, clean_ns)
    try:
        clean = sweepctl(kubeconfig, tmp_path, "apply", write_spec(tmp_path / "c.yaml", clean_ns, values(60)),
                         "--auto-approve")
        assert clean.returncode == 0, clean.stderr
        clean_requests = proxy.total()
    finally:
        bed.kubectl("delete", "namespace", clean_ns, "--wait=false", check=False)

    proxy.counts.clear()
    proxy.set(throttle_one_in=3, retry_after=(1, 3), seed=7)
    spec = write_spec(tmp_path / "s.yaml", ns, values(60))
    res = sweepctl(kubeconfig, tmp_path, "apply", spec, "--auto-approve")
    assert res.returncode == 0, res.stderr
    assert "Apply complete! Resources: 60 added" in res.stdout
    assert res.stderr.count("waiting for the API server (429, retry in") == 1  # once, calmly
    no_raw(res)
    throttled, forwarded = proxy.total("429"), proxy.total("forwarded")
    assert throttled > 0
    # Each 429 costs one request more, nothing else does (beyond the lock's renewals while it waited).
    assert forwarded <= clean_requests + 3, (forwarded, clean_requests)
    assert proxy.total() <= 1.5 * clean_requests + 3, (proxy.total(), clean_requests)
    proxy.set()
    assert_converged(bed, ns, kubeconfig, tmp_path, spec, 60)


def test_a_create_whose_answer_was_lost_is_read_back_no_duplicate_and_a_foreign_object_is_refused(
        bed, ns: str, proxy: FaultProxy, tmp_path: Path) -> None:
    kubeconfig = proxy.kubeconfig(bed.kubeconfig, tmp_path / "kubeconfig")
    spec = write_spec(tmp_path / "s.yaml", ns, values(8))
    names = json.loads(sweepctl(kubeconfig, tmp_path, "plan", spec, "-o", "json").stdout)["add"]
    foreign = names[0]["name"]
    bed.kubectl("-n", ns, "create", "-f", "-", input=json.dumps({
        "apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": foreign, "labels": {"team": "x"}},
        "spec": {"tfReplicaSpecs": {"Chief": {"replicas": 1, "template": {"spec": {
            "containers": [{"name": "tensorflow", "image": "someone/else"}]}}}}}}))
    foreign_uid = json.loads(bed.kubectl("-n", ns, "get", "tfjob", foreign, "-o", "json").stdout)["metadata"]["uid"]

    proxy.set(drop_after_forward={"POST": 3})
    res = sweepctl(kubeconfig, tmp_path, "apply", spec, "--auto-approve")
    assert proxy.total("dropped POST") == 3
    assert res.returncode == 1  # the foreign object
    assert "Apply complete! Resources: 7 added" not in res.stdout
    assert "Resources: 7 added, 0 changed, 0 destroyed." in res.stderr  # exact: 3 lost answers were its own
    assert f"{foreign}: TFJob {ns}/{foreign} already exists and does not belong to sweep locked" in res.stderr
    no_raw(res)
    after = json.loads(bed.kubectl("-n", ns, "get", "tfjob", foreign, "-o", "json").stdout)
    assert after["metadata"]["uid"] == foreign_uid and "sweepctl.dev/sweep" not in after["metadata"]["labels"]
    ours = {n: u for n, u in trial_uids(bed, ns).items()}
    assert len(ours) == 7 and foreign not in ours

    bed.kubectl("-n", ns, "delete", "tfjob", foreign)
    proxy.set(drop_after_forward={"POST": 1})
    again = sweepctl(kubeconfig, tmp_path, "apply", spec, "--auto-approve")
    assert again.returncode == 0 and "Resources: 1 added" in again.stdout, again.stderr
    assert_converged(bed, ns, kubeconfig, tmp_path, spec, 8, kept=ours)


def test_a_lost_answer_to_the_hparams_configmap_create_is_this_sweeps_own(bed, ns: str, proxy: FaultProxy,
                                                                           tmp_path: Path) -> None:
    """The retried POST meets 409 from its own first attempt: read back, it is the sweep's, so apply goes on."""
    kubeconfig = proxy.kubeconfig(bed.kubeconfig, tmp_path / "kubeconfig")
    spec = write_spec(tmp_path / "s.yaml", ns, values(2))
    proxy.set(drop_after_forward={"POST": 1}, fail_only="/configmaps")
    res = sweepctl(kubeconfig, tmp_path, "apply", spec, "--auto-approve")
    assert proxy.total("dropped POST") == 1
    assert res.returncode == 0 and "Resources: 2 added, 0 changed, 0 destroyed." in res.stdout, res.stderr
    no_raw(res)
    proxy.set()
    assert_converged(bed, ns, kubeconfig, tmp_path, spec, 2)


def test_a_black_holed_api_server_is_a_clean_error_within_the_timeout(bed, ns: str, proxy: FaultProxy,
                                                                        tmp_path: Path) -> None:
    kubeconfig = proxy.kubeconfig(bed.kubeconfig, tmp_path / "kubeconfig")
    spec = write_spec(tmp_path / "s.yaml", ns, values(5))
    proxy.set(black_hole=True)
    started = time.monotonic()
    res = sweepctl(kubeconfig, tmp_path, "apply", spec, "--auto-approve", "--timeout", "12s")
    took = time.monotonic() - started
    assert res.returncode == 1
    assert took <= 12 + 5, took
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "timed out after" in errors[0] and "gave up after 12 s" in errors[0], res.stderr
    no_raw(res)
    proxy.set()
    res = sweepctl(kubeconfig, tmp_path, "apply", spec, "--auto-approve")
    assert res.returncode == 0, res.stderr
    assert_converged(bed, ns, kubeconfig, tmp_path, spec, 5)


def apply_through(bed, ns: str, tmp_path: Path, spec: Path, fault, *, timeout: str = "2m"
                  ) -> subprocess.CompletedProcess[str]:
    """Apply, and once its first trials exist run `fault()` (an outage); the apply must still run after it."""
    proc = subprocess.Popen([str(SWEEPCTL), "apply", str(spec), "--auto-approve", "--timeout", timeout, *AS_USER],
                            cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(bed.kubeconfig), "HOME": str(tmp_path),
                                 "COLUMNS": "200"})
    while proc.poll() is None and len(trial_uids(bed, ns)) < 5:
        time.sleep(0.05)
    fault()
    assert proc.poll() is None, "the apply ended before the fault was over: it proves nothing"
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_an_api_server_down_for_15_s_is_ridden_out_and_keeps_the_lock(bed, ns: str, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.yaml", ns, values(600))

    def outage() -> None:
        argv = bed.kill_apiserver()
        time.sleep(15)
        bed.start_apiserver(argv)

    res = apply_through(bed, ns, tmp_path, spec, outage)
    assert res.returncode == 0, res.stderr
    assert "waiting for the API server (" in res.stderr
    no_raw(res)
    bed.wait_ready()
    assert_converged(bed, ns, bed.kubeconfig, tmp_path, spec, 600)


def test_etcd_frozen_for_20_s_is_ridden_out(bed, ns: str, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.yaml", ns, values(600))

    def freeze() -> None:
        pid = bed.pid("etcd")
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(20)
        finally:
            os.kill(pid, signal.SIGCONT)

    res = apply_through(bed, ns, tmp_path, spec, freeze)
    assert res.returncode == 0, res.stderr
    no_raw(res)
    assert_converged(bed, ns, bed.kubeconfig, tmp_path, spec, 600)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_of_apply_at_a_seeded_point_then_a_rerun_converges(bed, ns: str, tmp_path: Path, seed: int) -> None:
    import random

    spec = write_spec(tmp_path / "s.yaml", ns, values(120))
    first = write_spec(tmp_path / "first.yaml", ns, values(40, start=100))  # 21 kept, 19 to delete
    assert sweepctl(bed.kubeconfig, tmp_path, "apply", first, "--auto-approve").returncode == 0
    kept = {n: u for n, u in trial_uids(bed, ns).items()}
    kill_after = random.Random(seed).randrange(1, 100)  # objects written before the kill
    proc = subprocess.Popen([str(SWEEPCTL), "apply", str(spec), "--auto-approve", *AS_USER], cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(bed.kubeconfig), "HOME": str(tmp_path)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    baseline = set(kept)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if len(set(trial_uids(bed, ns)) ^ baseline) >= kill_after:
            proc.kill()
            break
        time.sleep(0.05)
    proc.wait()
    res = sweepctl(bed.kubeconfig, tmp_path, "apply", spec, "--auto-approve", "--lock-timeout", "1m")
    assert res.returncode == 0, res.stderr
    no_raw(res)
    still = {n: u for n, u in kept.items() if n in trial_uids(bed, ns)}
    assert_converged(bed, ns, bed.kubeconfig, tmp_path, spec, 120, kept=still)
    assert len(still) == 21


def test_a_finalizer_that_blocks_destroy_is_reported_and_fails_after_the_timeout(bed, ns: str,
                                                                                  tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.yaml", ns, values(3))
    assert sweepctl(bed.kubeconfig, tmp_path, "apply", spec, "--auto-approve").returncode == 0
    for name in trial_uids(bed, ns):
        bed.kubectl("-n", ns, "patch", "tfjob", name, "--type=merge", "-p",
                    '{"metadata": {"finalizers": ["test/hold"]}}')
    res = sweepctl(bed.kubeconfig, tmp_path, "destroy", spec, "--auto-approve", "--timeout", "8s")
    assert res.returncode == 1
    assert "waiting for finalizer test/hold on 3 objects" in res.stderr
    assert "complete!" not in res.stdout + res.stderr
    assert "3 objects: still exists after 8 s (--timeout): held by finalizer test/hold" in res.stderr, res.stderr
    no_raw(res)
    for name in trial_uids(bed, ns):
        bed.kubectl("-n", ns, "patch", "tfjob", name, "--type=merge", "-p", '{"metadata": {"finalizers": null}}')
    res = sweepctl(bed.kubeconfig, tmp_path, "destroy", spec, "--auto-approve")
    assert res.returncode == 0, res.stderr
    assert trial_uids(bed, ns) == {}
