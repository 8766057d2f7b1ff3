"""Runs one trial's trainer for the local backend, and records how it ended.

The local backend starts this file by its path, as
`python -P supervisor.py run EXIT_FILE ROOT -- ARGS...`, in a session of its
own, so that it outlives an apply that is killed (kill -9, a closed terminal).
The next apply finds it by its pid and start time (backends/processes.py), and
reads the trainer's exit status from EXIT_FILE: only a parent could learn it
otherwise, and the trainer's parent is this process, not the apply.

The trainer is the `model` package in ROOT (the folder that holds the sweepctl
package that started it), imported from that folder and nowhere else: a
`model.py` or `model/` in the current directory, or elsewhere on the path,
cannot stand in for it. `-P` keeps the current directory off the path of both
processes (the backend also drops it from PYTHONPATH).

Standard library only, and nothing from sweepctl: it must start fast, and it
runs wherever the sweep's current directory is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

__all__ = ["main"]

EXIT_FILE = "exit-code"  # in the trial's log folder: the trainer's exit status, written when it ends


def _supervise(exit_file: str, root: str, args: list[str]) -> int:
    """Run the trainer as a child, pass signals on, and write its exit status to exit_file."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # the apply blocks Ctrl-C while it starts us
    child = subprocess.Popen([sys.executable, "-P", os.path.abspath(__file__), "trainer", root, "--", *args])

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    code = child.wait()
    partial = f"{exit_file}.partial"
    with open(partial, "w", encoding="ascii") as f:
        f.write(f"{code}\n")
    os.replace(partial, exit_file)  # readers see no file or the whole number
    return code if code >= 0 else 128 - code


def _train(root: str, args: list[str]) -> None:
    """Run `python -m model ARGS` with `model` imported from root, whatever sys.path holds."""
    import runpy

    sys.path.insert(0, root)
    try:
        import model
    finally:
        sys.path.remove(root)
    found = os.path.dirname(os.path.abspath(model.__file__ or ""))
    if found != os.path.join(os.path.abspath(root), "model"):
        sys.exit(f"sweepctl: the trainer was found in {found}, not in {root}")
    sys.argv = [os.path.join(found, "__main__.py"), *args]
    runpy.run_module("model", run_name="__main__", alter_sys=True)


def main(argv: list[str]) -> int:
    mode, rest = argv[0], argv[1:]
    cut = rest.index("--")
    if mode == "run":
        exit_file, root = rest[:cut]
        return _supervise(exit_file, root, rest[cut + 1:])
    (root,) = rest[:cut]
    _train(root, rest[cut + 1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
