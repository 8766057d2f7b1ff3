"""Starts the local backend's trainers by fork, from a process that imported TensorFlow once.

Importing TensorFlow takes about 2 s of CPU; a 100x100 trial at the default recipe
trains for about 5. Paid by every trial, it was a third of a sweep's time and more
than half of a trial stopped early. One apply starts one fork server,

    python -P forkserver.py ROOT

which imports the trainer (the `model` package in ROOT, from that folder and nowhere
else) and TensorFlow, without running any TensorFlow op, so that no runtime state or
thread of TensorFlow's exists yet when it forks (numpy's OpenBLAS starts a thread at
import, and registers a fork handler for it). Each trial is then two forks of it:

- the supervisor, in a session of its own (a Ctrl-C in the apply's terminal does not
  reach it, and a killed apply leaves it running, for the next apply to adopt). It
  passes signals on, and writes the trainer's exit status to EXIT_FILE when it ends:
  only a parent could learn it otherwise;
- the trainer, its child, which runs `python -m model ARGS` in-process, with its output
  appended to the trial's stdout.log; or, for a sweep of the user's own trainer (spec
  `command`), execs that COMMAND (argv, never a shell) in CWD with exactly the
  environment ENV, its output going to stdout.log just the same.

Protocol, one JSON document a line, on the server's stdin and stdout:

    -> {"exit_file": PATH, "log": PATH, "args": [...], "env": {...}, "title": "SWEEP TRIAL"}   <- {"pid": PID}
    -> {"exit_file": PATH, "log": PATH, "command": [...], "cwd": PATH, "env": {...}, "title": "SWEEP TRIAL"}   <- {"pid": PID}
    -> {"go": PID} | {"cancel": PID}

`env` is what tf-paint gets on top of the server's environment, and the whole
environment of a command. Started without ROOT, the server imports no trainer:
it only starts commands.

The supervisor and a tf-paint trainer take the process titles `sweepctl-supervisor
SWEEP TRIAL` and `sweepctl-trainer SWEEP TRIAL` (setproctitle), so that `ps`, `top` and
`pkill -f` tell trials apart; a command keeps its own argv. The supervisor waits for
"go" before it starts the trainer: the apply sends it once
the supervisor's pid is recorded in state.json. A supervisor whose apply died before
that never trains (the server exits when its stdin closes, and with it the only
writer of the supervisor's go pipe), so no trial can run without a record, and none
twice. The server answers {"ready": true} once it has imported everything, or
{"error": "..."} and exits.

Standard library only at import, and nothing from sweepctl: it runs as a script.
setproctitle, a dependency of sweepctl, is imported by main(), once, before any fork.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback

__all__ = ["EXIT_FILE", "main"]

EXIT_FILE = "exit-code"  # in the trial's log folder: the trainer's exit status, written when it ends


def _import_trainer(root: str) -> None:
    """Import `model` from root, whatever sys.path holds, then TensorFlow as the trainer does.

    The current directory is off the path already: `-P`, and a PYTHONPATH without it
    (processes.ForkServer).
    """
    sys.path.insert(0, root)
    try:
        import model
    finally:
        sys.path.remove(root)
    found = os.path.dirname(os.path.abspath(model.__file__ or ""))
    if found != os.path.join(os.path.abspath(root), "model"):
        raise RuntimeError(f"the trainer was found in {found}, not in {root}")
    try:
        import model.cli  # noqa: F401  (numpy, Pillow)
        from model.train import import_tensorflow
    except ImportError:
        return  # each trial imports it again, and its stdout.log says what is missing
    import_tensorflow()


def _title(title: str) -> None:
    """Name this process in ps and /proc/PID/cmdline; left as it is without setproctitle."""
    if _setproctitle is not None:
        _setproctitle(title)


_setproctitle = None  # setproctitle.setproctitle, once main() imported it


def _trainer(args: list[str], title: str) -> None:
    """The trainer: `python -m model ARGS`, in this process; never returns."""
    import runpy

    _title(f"sweepctl-trainer {title}")

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code: object = 0
    try:
        sys.argv = [os.path.join(os.path.dirname(sys.modules["model"].__file__ or ""), "__main__.py"), *args]
        runpy.run_module("model", run_name="__main__", alter_sys=True)  # ends with os._exit
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:  # end as a process of its own would: killed by SIGINT
        sys.stdout.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:  # noqa: BLE001  (any error ends this trial only, as it would a process of its own)
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exec(command: list[str], cwd: str, env: dict[str, str]) -> None:
    """The user's trainer: exec its argv, looked up on env's PATH, in cwd; never returns."""
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    try:
        os.chdir(cwd)
        os.execvpe(command[0], command, env)
    except OSError as err:  # as a shell would say it, and with its exit status
        print(f"sweepctl: cannot run {command[0]!r} in {cwd}: {err.strerror}", file=sys.stderr, flush=True)
        os._exit(127 if isinstance(err, FileNotFoundError) else 126)


def _supervisor(go: int, exit_file: str, log: str, request: dict) -> None:
    """The supervisor: wait for "go", run the trainer as a child, record how it ended; never returns."""
    os.setsid()
    title = request.get("title", "")
    _title(f"sweepctl-supervisor {title}")
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # this process waits for its own child
    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    os.close(null)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # the apply blocks Ctrl-C while it starts us
    if os.read(go, 1) != b"1":
        os._exit(0)  # the apply died or gave up before it recorded this process: never train unrecorded
    os.close(go)
    child = os.fork()
    if child == 0:
        if "command" in request:
            _exec(request["command"], request["cwd"], request["env"])
        os.environ.update(request.get("env", {}))
        _trainer(request["args"], title)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)  # -N when signal N ended it
    partial = f"{exit_file}.partial"
    with open(partial, "w", encoding="ascii") as f:
        f.write(f"{code}\n")
    os.replace(partial, exit_file)  # readers see no file or the whole number
    os._exit(code if code >= 0 else 128 - code)


def _reap(_signum: int, _frame: object) -> None:
    """Reap ended supervisors at once (the apply watches them in /proc), adding their CPU time to ours.

    Not SIG_IGN, which would reap them too but drop their CPU time: `time sweepctl apply` counts it.
    """
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _serve(requests, replies: int) -> None:
    """Fork a supervisor per request; release or cancel it when told; end when the apply closes stdin."""
    waiting: dict[int, int] = {}  # supervisor pid -> the write end of its go pipe

    def reply(document: dict[str, object]) -> None:
        os.write(replies, (json.dumps(document) + "\n").encode())

    for line in requests:
        request = json.loads(line)
        if "go" in request or "cancel" in request:
            go = waiting.pop(int(request.get("go", request.get("cancel"))), None)
            if go is not None:
                if "go" in request:
                    try:
                        os.write(go, b"1")
                    except BrokenPipeError:
                        pass  # it was stopped (a prune) before it was released: nothing to start
                os.close(go)
            continue
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(write_end)
            os.close(replies)
            for other in waiting.values():  # else a sibling would keep another's pipe open
                os.close(other)
            try:
                _supervisor(read_end, request["exit_file"], request["log"], request)
            except BaseException:  # noqa: BLE001
                traceback.print_exc()  # into the trial's stdout.log once it is open
            os._exit(70)
        os.close(read_end)
        waiting[pid] = write_end
        reply({"pid": pid})


def main(argv: list[str]) -> int:
    global _setproctitle
    root = argv[0] if argv else None  # None: commands only, no trainer to import
    try:
        from setproctitle import setproctitle as _setproctitle
    except ImportError:  # a trainer without a title still trains
        pass
    signal.signal(signal.SIGCHLD, _reap)
    replies = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # stray prints must not break the protocol
    os.close(null)
    try:
        if root is not None:
            _import_trainer(root)
    except Exception as exc:  # noqa: BLE001  (told to the apply, which says it to the user)
        os.write(replies, (json.dumps({"error": str(exc)}) + "\n").encode())
        return 1
    sys.stdout.flush()  # else every fork would inherit what the imports printed, and write it to its log
    sys.stderr.flush()
    os.write(replies, b'{"ready": true}\n')
    _serve(sys.stdin.buffer, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
