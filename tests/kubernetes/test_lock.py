"""The sweep lock on Kubernetes, as the README Role's user: one writer at a time, never a stale lock for long.

Holders are real sweepctl processes: an apply waiting at its confirmation
prompt holds the lock, exactly as one a person left at the prompt does.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from lockhelpers import (AS_USER, grant_readme_role, lease, role_without_leases, run, start, trial_names,
                         wait_for_lease, write_spec)

from sweepctl.backends.lease import LEASE_SECONDS


@pytest.fixture
def env(control_plane, namespace: str, kube_env) -> dict[str, str]:
    grant_readme_role(control_plane, namespace)
    return {"KUBECONFIG": str(control_plane.kubeconfig), "COLUMNS": "200"}


def holding(tmp_path: Path, spec: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """An apply that stops at its prompt, holding the lock."""
    return start("apply", spec, *AS_USER, cwd=tmp_path, env=env, stdin=subprocess.PIPE)


def test_a_held_sweep_is_refused_naming_its_holder_and_nothing_changes_then_sigterm_releases_it(
        control_plane, namespace: str, env, tmp_path: Path) -> None:
    a = write_spec(tmp_path / "a.yaml", namespace, [0.1, 0.2])
    b = write_spec(tmp_path / "b.yaml", namespace, [0.3, 0.4, 0.5])
    holder = holding(tmp_path, a, env)
    try:
        held = wait_for_lease(control_plane, namespace)
        info = json.loads(held["metadata"]["annotations"]["sweepctl.dev/lock-info"])
        assert info["pid"] == holder.pid and "sweepctl apply" in info["command"] and info["user"] and info["host"]
        lock_id = held["spec"]["holderIdentity"]
        assert info["id"] == lock_id and held["spec"]["leaseDurationSeconds"] == LEASE_SECONDS

        for command in (("apply", b, "--auto-approve"), ("destroy", b, "--auto-approve"),
                        ("prune", b, "--keep", "best=1", "--auto-approve")):
            res = run(*command, *AS_USER, cwd=tmp_path, env=env)
            assert res.returncode == 1, res.stdout + res.stderr
            assert f"sweep locked is locked by `{info['command']}`" in res.stderr
            assert f"pid {holder.pid}" in res.stderr and f"lock id {lock_id}" in res.stderr
            assert "Traceback" not in res.stderr and "409" not in res.stderr
        assert trial_names(control_plane, namespace) == []  # nothing changed
        # Read-only commands take no lock.
        assert run("plan", b, *AS_USER, cwd=tmp_path, env=env).returncode == 0

        wrong = run("unlock", "locked", "0123456789abcdef", "--backend", "kubernetes", "-n", namespace, *AS_USER,
                    cwd=tmp_path, env=env)
        assert wrong.returncode == 1 and "does not match" in wrong.stderr
        assert lease(control_plane, namespace)["spec"]["holderIdentity"] == lock_id

        holder.send_signal(signal.SIGTERM)
        holder.wait(timeout=30)
        assert lease(control_plane, namespace) is None  # released on the way out
        started = time.monotonic()
        res = run("apply", b, "--auto-approve", *AS_USER, cwd=tmp_path, env=env)
        assert res.returncode == 0, res.stderr
        assert time.monotonic() - started < 20  # at once: no waiting for an expiry
        assert len(trial_names(control_plane, namespace)) == 3
        assert lease(control_plane, namespace) is None
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holders_lock_is_broken_by_its_id_or_expires_within_the_lease(
        control_plane, namespace: str, env, tmp_path: Path) -> None:
    a = write_spec(tmp_path / "a.yaml", namespace, [0.1, 0.2])
    holder = holding(tmp_path, a, env)
    lock_id = wait_for_lease(control_plane, namespace)["spec"]["holderIdentity"]
    holder.kill()  # SIGKILL: no chance to release
    holder.wait()
    # The refusal's hint is a command that reaches this lock as it is, from any folder.
    refused = run("apply", a, "--auto-approve", "--lock-timeout", "0", *AS_USER, cwd=tmp_path, env=env)
    hint = re.search(r"`sweepctl (unlock [^`]*)`", " ".join(refused.stderr.split()))
    assert refused.returncode == 1 and hint, refused.stderr
    assert hint.group(1).split()[:3] == ["unlock", "locked", lock_id]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = run(*hint.group(1).split(), cwd=elsewhere, env=env)
    assert res.returncode == 0, res.stderr
    assert f"Unlocked sweep locked" in res.stdout and lock_id in res.stdout
    assert lease(control_plane, namespace) is None

    holder = holding(tmp_path, a, env)
    wait_for_lease(control_plane, namespace)
    holder.kill()
    holder.wait()
    killed = time.monotonic()
    refused = run("apply", a, "--auto-approve", "--lock-timeout", "0", *AS_USER, cwd=tmp_path, env=env)
    assert refused.returncode == 1 and "is locked by" in refused.stderr
    res = run("apply", a, "--auto-approve", "--lock-timeout", "2m", *AS_USER, cwd=tmp_path, env=env)
    waited = time.monotonic() - killed
    assert res.returncode == 0, res.stderr
    assert waited <= LEASE_SECONDS + 10, waited  # the documented bound, plus one poll and the apply
    assert len(trial_names(control_plane, namespace)) == 2


def test_a_role_without_lease_verbs_gets_one_clear_line(control_plane, namespace: str, kube_env,
                                                        tmp_path: Path) -> None:
    grant_readme_role(control_plane, namespace, role=role_without_leases())
    env = {"KUBECONFIG": str(control_plane.kubeconfig), "COLUMNS": "200"}
    spec = write_spec(tmp_path / "a.yaml", namespace, [0.1])
    res = run("apply", spec, "--auto-approve", *AS_USER, cwd=tmp_path, env=env)
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "leases.coordination.k8s.io are not granted" in errors[0], res.stderr
    assert "coordination.k8s.io" in res.stderr and "Traceback" not in res.stderr
    assert trial_names(control_plane, namespace) == []


def _foreign_holder_lease(namespace: str, renew_time: str) -> str:
    """The Lease another machine's sweepctl writes, as JSON: held, renewed at `renew_time` by that machine's clock."""
    info = {"id": "feedfacefeedface", "user": "ada", "host": "skewed", "pid": 4242, "command": "sweepctl apply a.yaml",
            "since": renew_time[:19] + "Z"}
    return json.dumps({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "locked-sweepctl-lock", "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "sweepctl", "sweepctl.dev/sweep": "locked"},
                     "annotations": {"sweepctl.dev/lock-info": json.dumps(info)}},
        "spec": {"holderIdentity": info["id"], "leaseDurationSeconds": LEASE_SECONDS,
                 "acquireTime": renew_time, "renewTime": renew_time}})


@pytest.mark.parametrize("skew", [-600, 3600])
def test_a_holder_whose_clock_is_skewed_neither_loses_its_lock_nor_keeps_it_past_the_lease(
        control_plane, namespace: str, env, tmp_path: Path, skew: int) -> None:
    # A holder on a machine whose clock is 10 minutes behind (or an hour ahead) writes renewTime by
    # that clock. Expiry is judged on the API server's clock (when it last changed the Lease), never by
    # comparing the holder's clock with this one: just written, it holds; left alone, it expires
    # LEASE_SECONDS later, however skewed.
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() + skew))
    control_plane.kubectl("-n", namespace, "create", "-f", "-", input=_foreign_holder_lease(namespace, stamp))
    written = time.monotonic()
    spec = write_spec(tmp_path / "a.yaml", namespace, [0.1, 0.2])
    refused = run("apply", spec, "--auto-approve", "--lock-timeout", "0", *AS_USER, cwd=tmp_path, env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "is locked by `sweepctl apply a.yaml` by ada@skewed (pid 4242)" in " ".join(refused.stderr.split())
    assert trial_names(control_plane, namespace) == []
    # Expired by the server's clock: taken at once by a command that never saw it held (judging by
    # its own observation alone, it would wait another LEASE_SECONDS).
    time.sleep(max(0.0, written + LEASE_SECONDS + 3 - time.monotonic()))
    res = run("apply", spec, "--auto-approve", "--lock-timeout", "0", *AS_USER, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert len(trial_names(control_plane, namespace)) == 2
