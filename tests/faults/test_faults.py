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
from lockhelpers import AS_USER, RAW, SWEEPCTL, lease, trial_uids, values, write_spec
from lockhelpers import as_user as sweepctl


def assert_converged(bed, ns: str, kubeconfig: Path, cwd: Path, spec: Path, expected: int,
                     kept: dict[str, str] | None = None) -> None:
    live = trial_uids(bed, ns)
    assert len(live) == expected  # names are the trials' values: one object per name, so no duplicates
    params = [json.loads(i["metadata"]["annotations"]["sweepctl.dev/params"]) for i in json.loads(
        bed.kubectl("-n", ns, "get", "tfjobs", "-o", "json").stdout)["items"]]
    assert len({json.dumps(p, sort_keys=True) for p in params}) == expected  # no duplicate by value either
    replan = sweepctl(kubeconfig, cwd, "plan", spec, "--detailed-exitcode", "--max-trials", expected)
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


def apply_through(bed, ns: str, tmp_path: Path, spec: Path, fault, *, timeout: str = "2m",
                  extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Apply, and once its first trials exist run `fault()` (an outage); the apply must still run after it."""
    out, err = (tmp_path / "apply.out").open("w+"), (tmp_path / "apply.err").open("w+")  # a pipe could fill
    with out, err:
        proc = subprocess.Popen([str(SWEEPCTL), "apply", str(spec), "--auto-approve", "--timeout", timeout, *extra,
                                 *AS_USER],
                                cwd=tmp_path, text=True, stdout=out, stderr=err,
                                env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(bed.kubeconfig),
                                     "HOME": str(tmp_path), "COLUMNS": "200"})
        while proc.poll() is None and len(trial_uids(bed, ns)) < 5:
            time.sleep(0.05)
        fault()
        ended = proc.poll()
        proc.wait(timeout=300)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
    assert ended is None, ("the apply ended before the fault was over: it proves nothing", result)
    return result


def test_an_api_server_down_for_15_s_is_ridden_out_and_keeps_the_lock(bed, ns: str, tmp_path: Path) -> None:
    # Enough trials that the apply is still writing after the outage, the renewal and the contender.
    spec = write_spec(tmp_path / "s.yaml", ns, values(3000))
    other = write_spec(tmp_path / "o.yaml", ns, values(3, start=5000))
    seen: dict = {}

    def outage() -> None:
        seen["before"] = lease(bed, ns)
        argv = bed.kill_apiserver()
        time.sleep(15)
        bed.start_apiserver(argv)
        bed.wait_ready()
        deadline = time.monotonic() + 30  # the holder's first renewal after the outage
        while (now := lease(bed, ns)) and now["spec"]["renewTime"] == seen["before"]["spec"]["renewTime"]:
            assert time.monotonic() < deadline, "the lock was not renewed after the outage"
            time.sleep(0.2)
        seen["after"] = now
        seen["contender"] = sweepctl(bed.kubeconfig, tmp_path, "apply", other, "--auto-approve", "--lock-timeout", "0")

    res = apply_through(bed, ns, tmp_path, spec, outage, extra=("--max-trials", "3000"))
    assert res.returncode == 0, res.stderr
    assert "waiting for the API server (" in res.stderr
    no_raw(res)
    # The same Lease, held by the same command since before the outage, renewed after it...
    before, after = seen["before"], seen["after"]
    assert after is not None, "the lock was gone after the outage"
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["spec"]["holderIdentity"] == before["spec"]["holderIdentity"]
    assert after["spec"]["acquireTime"] == before["spec"]["acquireTime"]
    # ... so a command that came along meanwhile was refused, naming it.
    contender = seen["contender"]
    assert contender.returncode == 1 and "sweep locked is locked by `sweepctl apply" in contender.stderr
    assert f"lock id {before['spec']['holderIdentity']}" in " ".join(contender.stderr.split())
    bed.wait_ready()
    assert_converged(bed, ns, bed.kubeconfig, tmp_path, spec, 3000)


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


def test_sigkill_of_apply_or_prune_at_seeded_points_then_a_plain_rerun_converges(bed, ns: str,
                                                                                  tmp_path: Path) -> None:
    from killpoints import KillBed, Point
    from tensorboard_helpers import serve

    # Each command dies right after its n-th request took effect (n seeded): in the lock, the plan's
    # reads, the pruned records, or among the writes. Its Lease is left behind; the re-run waits for
    # it to expire, with no unlock or anything else done by hand.
    kills = KillBed(bed, ns, tmp_path)
    points = ([Point("apply", f"a{seed}", seed, 120) for seed in (1, 2, 3)]
              + [Point("prune", f"p{seed}", seed, 60) for seed in (1, 2, 3)])
    for point in points:
        kills.prepare(point)
    with serve(kills.logs, ready=lambda index: len(index) == 3 * 60) as url:
        kills.run(points, url)
    for point in points:
        assert point.killed_at, f"{point.command} of {point.sweep} ended before its request {point.at}"
        assert not point.failures, (point.command, point.seed, point.at, point.killed_at, point.failures)


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


def test_a_holder_that_cannot_renew_its_lock_stops_writing_before_it_expires_and_the_taker_wins(
        bed, ns: str, proxy: FaultProxy, tmp_path: Path) -> None:
    from sweepctl.backends.lease import LEASE_SECONDS, RENEW_SECONDS

    # The holder reaches the API server through the proxy, slowed so that its apply is still writing
    # when its renewals stop getting through; everything else it sends still does.
    kubeconfig = proxy.kubeconfig(bed.kubeconfig, tmp_path / "kubeconfig")
    a = write_spec(tmp_path / "a.yaml", ns, values(1000))
    b = write_spec(tmp_path / "b.yaml", ns, values(3, start=5000))
    proxy.set(latency=0.5)
    out_file, err_file = tmp_path / "holder.out", tmp_path / "holder.err"  # a pipe could fill: files
    with out_file.open("w") as out, err_file.open("w") as err:
        holder = subprocess.Popen([str(SWEEPCTL), "apply", str(a), "--auto-approve", *AS_USER], cwd=tmp_path,
                                  text=True, stdout=out, stderr=err,
                                  env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path),
                                       "COLUMNS": "200"})
    while holder.poll() is None and len(trial_uids(bed, ns)) < 5:
        time.sleep(0.1)
    assert holder.poll() is None, err_file.read_text()
    proxy.set(latency=0.5, black_hole=True, black_hole_only="/leases/")
    cut = time.monotonic()
    taker = sweepctl(bed.kubeconfig, tmp_path, "apply", b, "--auto-approve", "--lock-timeout", "2m")
    took = time.monotonic() - cut
    assert taker.returncode == 0, taker.stderr
    assert took >= LEASE_SECONDS - RENEW_SECONDS, took  # not before the holder's lease expired
    assert holder.poll() is None, "the holder ended before it could learn of its lost lock: it proves nothing"
    proxy.set(latency=0.5)  # its renewal gets through again, and finds the Lease taken
    holder.wait(timeout=120)
    out, err = out_file.read_text(), err_file.read_text()
    assert holder.returncode == 1, out + err
    assert "waiting to renew the lock of sweep locked before writing" in err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    # The taker is done by now: its Lease is gone, so the holder cannot name it.
    assert errors == ["Error: lost the lock of sweep locked: another command took it and has released it since, "
                      "or it was broken with `sweepctl unlock` while this command could not renew it (a lock "
                      "expires 30 s after its last renewal); stopped before writing more"], err
    no_raw(subprocess.CompletedProcess(holder.args, 1, out, err))
    # Nothing it sent after its lock could have expired landed: the sweep is exactly the taker's.
    assert_converged(bed, ns, bed.kubeconfig, tmp_path, b, 3)
