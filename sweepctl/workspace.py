"""The `.sweepctl/` workspace: the last saved plan, the last sweep, and the local state folders.

Every name that comes from a flag, a saved plan or a state file is checked
here, as a DNS label, before it becomes part of a path: a crafted name such as
`../../x` never reaches the file system. Files are written atomically, so a
reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.schema import DNS1035_SWEEP, DNS1123_LABEL

if TYPE_CHECKING:
    from sweepctl.core.plan import Plan

__all__ = [
    "BACKENDS",
    "DEFAULT_PLAN",
    "DEFAULT_STATE_DIR",
    "LAST_SWEEP",
    "LastSweep",
    "check_sweep_name",
    "cache_dir",
    "check_trial_name",
    "is_saved_plan",
    "last_sweep",
    "lock_file",
    "read_plan",
    "remember_sweep",
    "save_plan",
    "state_file",
    "state_lock_file",
    "sweep_dir",
    "sweeps_in",
    "trial_dir",
    "trial_dirs",
    "write_atomically",
]

DEFAULT_PLAN = Path(".sweepctl") / "plan.json"
# The sweep of the last apply or destroy, for commands run without a spec (status, prune).
LAST_SWEEP = Path(".sweepctl") / "last-sweep.json"
# The local backend's state and logs, as Terraform keeps .terraform/.
DEFAULT_STATE_DIR = Path(".sweepctl")
BACKENDS = ("local", "kubernetes")

_SWEEP = re.compile(DNS1035_SWEEP)
_TRIAL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")  # a TFJob name: DNS-1035, 63 characters
_NAMESPACE = re.compile(DNS1123_LABEL)


def check_sweep_name(name: object, *, source: str = "--sweep") -> str:
    """A sweep name, or an error: it names folders and label selectors."""
    if isinstance(name, str) and _SWEEP.match(name):
        return name
    raise SweepctlError(f"{source}: {name!r} is not a sweep name",
                        hint="a sweep name is a DNS-1035 label of at most 40 characters, e.g. starry-night")


def check_trial_name(name: object, *, source: str) -> str:
    """A trial name, or an error: it names the trial's log folder."""
    if isinstance(name, str) and _TRIAL.match(name):
        return name
    raise SweepctlError(f"{source}: {name!r} is not a trial name",
                        hint="trial names are DNS-1035 labels of at most 63 characters; was the file edited?")


# -- local state -------------------------------------------------------------------------

def sweep_dir(state_dir: Path, sweep: str) -> Path:
    return state_dir / "sweeps" / check_sweep_name(sweep, source="sweep")


def state_file(state_dir: Path, sweep: str) -> Path:
    """Every trial of the sweep: params, args, state; and its pruned trials."""
    return sweep_dir(state_dir, sweep) / "state.json"


def lock_file(state_dir: Path, sweep: str) -> Path:
    """Held by the apply that starts the sweep's trainers, while it runs."""
    return sweep_dir(state_dir, sweep) / "lock"


def state_lock_file(state_dir: Path, sweep: str) -> Path:
    """Held while a command rewrites the sweep's state.json."""
    return sweep_dir(state_dir, sweep) / "state.lock"


def cache_dir(state_dir: Path, sweep: str) -> Path:
    """What status last read of the sweep's event files; beside the sweeps, which only apply writes."""
    return state_dir / "cache" / check_sweep_name(sweep, source="sweep")


def trial_dir(state_dir: Path, sweep: str, trial: str) -> Path:
    """A trial's TensorBoard logs and stdout."""
    return sweep_dir(state_dir, sweep) / "logs" / check_trial_name(trial, source=f"sweep {sweep}")


def trial_dirs(state_dir: Path, sweep: str, trials: Iterable[str]) -> dict[str, Path]:
    """trial_dir of many trials (a thousand for a status), the sweep's folder built once."""
    logs = sweep_dir(state_dir, sweep) / "logs"
    return {t: logs / check_trial_name(t, source=f"sweep {sweep}") for t in trials}


def sweeps_in(state_dir: Path) -> list[str]:
    """The sweeps that have state in a folder (others' folders there are ignored)."""
    return sorted(p.parent.name for p in (state_dir / "sweeps").glob("*/state.json") if _SWEEP.match(p.parent.name))


# -- saved plans and the last sweep --------------------------------------------------------

def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file, then rename: readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_plan(plan: Plan, path: Path) -> None:
    """A half-written plan must never be applied; an unwritable path is a plain error."""
    from sweepctl.core import planfile  # here, not at the top: shell completion lists sweeps_in without it

    try:
        if path.is_dir() or not path.name:
            raise IsADirectoryError(21, "is a folder", str(path))
        write_atomically(path, planfile.dumps(plan))
    except OSError as err:
        raise SweepctlError(f"cannot save the plan to {path}: {err.strerror or err}",
                            hint="pass a writable file with -out FILE") from None


def read_plan(path: Path) -> Plan:
    from sweepctl.core import planfile

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if path == DEFAULT_PLAN:
            raise SweepctlError(
                f"no saved plan at {path}",
                hint="run `sweepctl plan SPEC` first, or `sweepctl apply SPEC` to plan and apply in one go",
            ) from None
        raise SweepctlError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SweepctlError(f"{path}: cannot read the plan: {err}") from None
    plan = planfile.loads(text, source=str(path))
    check_sweep_name(plan.sweep, source=str(path))
    for change in plan.trials:
        check_trial_name(change.name, source=str(path))
    return plan


def is_saved_plan(path: Path) -> bool:
    """A saved plan is JSON with a format version; anything else is read as a spec."""
    try:
        with path.open("rb") as f:
            head = f.read(64).lstrip()
    except OSError:
        return False
    return head.startswith(b"{") and b"format_version" in head


@dataclass(frozen=True, kw_only=True)
class LastSweep:
    """The sweep of the last plan or apply here: what commands without a spec act on."""

    sweep: str
    backend: str
    namespace: str | None
    spec_path: str | None


def remember_sweep(plan: Plan) -> None:
    """Note the sweep a plan was applied to, so that `status` and `prune` work without a spec."""
    data = {"sweep": plan.sweep, "backend": plan.backend, "namespace": plan.namespace, "spec_path": plan.spec_path}
    try:
        write_atomically(LAST_SWEEP, json.dumps(data).encode())
    except OSError:
        pass  # only a convenience: commands can still be given the spec or --sweep


def _last(data: object) -> LastSweep | None:
    """A record checked field by field; a crafted or broken one counts as none."""
    if not isinstance(data, dict):
        return None
    sweep, backend, namespace, spec_path = (data.get(k) for k in ("sweep", "backend", "namespace", "spec_path"))
    if not (isinstance(sweep, str) and _SWEEP.match(sweep) and backend in BACKENDS):
        return None
    if not (namespace is None or namespace == "" or (isinstance(namespace, str) and _NAMESPACE.match(namespace))):
        return None
    return LastSweep(sweep=sweep, backend=str(backend), namespace=namespace or None,
                     spec_path=spec_path if isinstance(spec_path, str) and spec_path else None)


def last_sweep() -> LastSweep | None:
    """The most recent of the last saved plan and the last apply."""
    found: list[tuple[float, LastSweep]] = []
    try:
        last = _last(json.loads(LAST_SWEEP.read_text()))
        if last:
            found.append((LAST_SWEEP.stat().st_mtime, last))
    except (OSError, ValueError):
        pass
    if DEFAULT_PLAN.is_file():
        try:
            plan = read_plan(DEFAULT_PLAN)
            found.append((DEFAULT_PLAN.stat().st_mtime, LastSweep(
                sweep=plan.sweep, backend=plan.backend, namespace=plan.namespace or None, spec_path=plan.spec_path)))
        except (OSError, SweepctlError):
            pass
    return max(found, key=lambda f: f[0])[1] if found else None
