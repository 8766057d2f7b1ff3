"""The local backend's sweep lock: one writer plans and writes at a time; it ends with its process."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from local_helpers import SWEEPCTL, cli, spec_text, state, wait_for


def _holder(cwd: Path, spec: Path) -> subprocess.Popen[str]:
    """An apply waiting at its prompt: it holds the sweep's lock, as one left at the prompt does."""
    return subprocess.Popen([*SWEEPCTL, "apply", str(spec)], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _lock_record(cwd: Path) -> str:
    path = cwd / ".sweepctl" / "sweeps" / "tiny" / "sweep.lock"
    return path.read_text() if path.exists() else ""


def test_a_second_writer_is_refused_naming_the_holder_and_the_lock_ends_with_its_process(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text(spec_text("  learningRate: [0.01, 0.02]\n"))
    b = tmp_path / "b.yaml"
    b.write_text(spec_text("  learningRate: [0.03]\n"))
    holder = _holder(tmp_path, a)
    try:
        wait_for(lambda: '"pid"' in _lock_record(tmp_path), timeout=60)
        for command in (("apply", b, "--auto-approve"), ("destroy", b, "--auto-approve"),
                        ("prune", b, "--keep", "best=1", "--auto-approve")):
            res = cli(tmp_path, *command)
            assert res.returncode == 1, res.stdout + res.stderr
            assert "sweep tiny is locked by `sweepctl apply" in res.stderr and f"pid {holder.pid}" in res.stderr
            assert "nothing was changed" in res.stderr and "Traceback" not in res.stderr
        assert state(tmp_path)["trials"] == {}
        assert cli(tmp_path, "plan", b).returncode == 0  # reading takes no lock

        started = time.monotonic()
        holder.send_signal(signal.SIGTERM)  # as a CI timeout would
        holder.wait(timeout=30)
        assert _lock_record(tmp_path) == ""  # let go on the way out
        res = cli(tmp_path, "destroy", b, "--auto-approve", "--lock-timeout", "30s")
        assert res.returncode == 0, res.stderr
        assert time.monotonic() - started < 60
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_no_lock_and_a_waiting_writer_gets_it(tmp_path: Path) -> None:
    spec = tmp_path / "a.yaml"
    spec.write_text(spec_text("  learningRate: [0.01]\n"))
    holder = _holder(tmp_path, spec)
    wait_for(lambda: '"pid"' in _lock_record(tmp_path), timeout=60)
    waiter = subprocess.Popen([*SWEEPCTL, "destroy", str(spec), "--auto-approve", "--lock-timeout", "1m"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    assert waiter.poll() is None  # waiting for the lock
    holder.kill()  # SIGKILL: the kernel drops its flock
    holder.wait()
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    res = cli(tmp_path, "unlock", "tiny", "0123456789abcdef")
    assert res.returncode == 1 and "sweep tiny is not locked" in res.stderr


def test_apply_wait_holds_the_lock_to_plan_each_round_and_never_undoes_a_destroy(tmp_path: Path) -> None:
    # Trainers that sleep: while they run, the waiting apply has let go of the lock (prune and destroy
    # may act). A destroy then stops them; the next round must not train them again.
    (tmp_path / "sleep.py").write_text("import sys, time\ntime.sleep(float(sys.argv[1]))\n")
    spec = tmp_path / "s.yaml"
    spec.write_text("name: tiny\nbackend: local\nlocal: {parallelism: 2}\ncommand: [python, sleep.py, '${secs}']\n"
                    "hyperParamValues:\n  secs: [60, 61]\n")
    waiting = subprocess.Popen([*SWEEPCTL, "apply", str(spec), "--wait", "--auto-approve", "--interval", "1"],
                               cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        wait_for(lambda: [t["state"] for t in state(tmp_path)["trials"].values()] == ["Running"] * 2, timeout=60)
        res = cli(tmp_path, "destroy", spec, "--auto-approve", "--lock-timeout", "30s")
        assert res.returncode == 0, res.stdout + res.stderr
        out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 1, out + err
        assert "2 trials of sweep tiny that this apply ran were deleted by another command meanwhile" in err
        assert "Traceback" not in err
        assert state(tmp_path)["trials"] == {}  # destroyed, and not started again
        assert _lock_record(tmp_path) == ""
    finally:
        waiting.kill()
        waiting.wait()


def test_apply_wait_plans_its_next_round_only_once_it_holds_the_lock_again(tmp_path: Path) -> None:
    # A TPE search, one trial at a time: two rounds. While round one trains, a destroy takes the
    # lock and waits at its prompt. Round two waits for the lock (however long: --lock-timeout is 0),
    # starts nothing meanwhile, and goes on once the destroy is declined.
    (tmp_path / "sleep.py").write_text("import sys, time\ntime.sleep(float(sys.argv[1]))\n")
    spec = tmp_path / "s.yaml"
    spec.write_text("name: tiny\nbackend: local\nlocal: {parallelism: 1}\ncommand: [python, sleep.py, '${secs}']\n"
                    "search: {algorithm: tpe, trials: 2, parallel: 1, seed: 0, startupTrials: 1}\n"
                    "hyperParamValues:\n  secs: {min: 3.0, max: 4.0}\n")
    err_file = tmp_path / "apply.err"
    with err_file.open("w") as err:
        waiting = subprocess.Popen([*SWEEPCTL, "apply", str(spec), "--wait", "--auto-approve", "--interval", "1"],
                                   cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                   text=True)
    destroy = None
    try:
        wait_for(lambda: [t["state"] for t in state(tmp_path)["trials"].values()] == ["Running"], timeout=60)
        destroy = subprocess.Popen([*SWEEPCTL, "destroy", str(spec)], cwd=tmp_path, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: "sweepctl destroy" in _lock_record(tmp_path), timeout=60)  # at its prompt
        wait_for(lambda: "waiting for the lock of sweep tiny, held by `sweepctl destroy" in err_file.read_text(),
                 timeout=60)
        time.sleep(2)
        assert [t["state"] for t in state(tmp_path)["trials"].values()] == ["Succeeded"]  # nothing new started
        out, _ = destroy.communicate("no\n", timeout=60)
        assert destroy.returncode == 1 and "cancelled" in out.lower() + _.lower()
        waiting.wait(timeout=120)
        assert waiting.returncode == 0, err_file.read_text()
        assert [t["state"] for t in state(tmp_path)["trials"].values()] == ["Succeeded"] * 2
        assert _lock_record(tmp_path) == ""
    finally:
        for proc in (waiting, destroy):
            if proc is not None:
                proc.kill()
                proc.wait()
