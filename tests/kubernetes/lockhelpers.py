"""Running real sweepctl processes side by side, as the README Role's user, for the lock and fault tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from readme_role import readme_role

SWEEPCTL = Path(sys.executable).parent / "sweepctl"
AS_USER = ("--context", "restricted@testbed")

SPEC = """\
name: {name}
backend: kubernetes
namespace: {ns}
hyperParamValues:
  learningRate: {values}
"""


def grant_readme_role(control_plane, ns: str, *, role: str | None = None) -> None:
    control_plane.kubectl("-n", ns, "apply", "-f", "-", input=role or readme_role())
    control_plane.kubectl("-n", ns, "create", "rolebinding", "sweepctl", "--role=sweepctl", "--user=restricted")


def role_without_leases() -> str:
    """The README Role as it was before the lock: every rule but the Lease one."""
    role = readme_role()
    start = role.index("- apiGroups: [coordination.k8s.io]")
    end = role.find("- apiGroups:", start + 1)
    return role[:start] + (role[end:] if end >= 0 else "")


# What a person must never read in sweepctl's output: a traceback, or the HTTP library's words.
RAW = ("Traceback", "urllib3", "MaxRetryError", "ProtocolError", "NewConnectionError")


def values(n: int, start: int = 1) -> list[float]:
    """n distinct learning rates: a sweep of n trials."""
    return [round(0.0001 * i, 6) for i in range(start, start + n)]


def as_user(kubeconfig: Path, cwd: Path, *args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """sweepctl as the README Role's user, in a bare environment (no proxy or kube settings inherited)."""
    return subprocess.run([str(SWEEPCTL), *map(str, args), *AS_USER], cwd=cwd, text=True, capture_output=True,
                          timeout=timeout, env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(kubeconfig),
                                                "COLUMNS": "200", "HOME": str(cwd)}, stdin=subprocess.DEVNULL)


def write_spec(path: Path, ns: str, values: list[float], name: str = "locked") -> Path:
    path.write_text(SPEC.format(name=name, ns=ns, values=json.dumps(values)))
    return path


def start(*args: str | Path, cwd: Path, env: dict[str, str], stdin: int | None = subprocess.DEVNULL,
          ) -> subprocess.Popen[str]:
    return subprocess.Popen([str(SWEEPCTL), *map(str, args)], cwd=cwd, env={**os.environ, **env}, text=True,
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run(*args: str | Path, cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SWEEPCTL), *map(str, args)], cwd=cwd, env={**os.environ, **env}, text=True,
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def lease(control_plane, ns: str, sweep: str = "locked") -> dict | None:
    res = control_plane.kubectl("-n", ns, "get", "lease", f"{sweep}-sweepctl-lock", "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def wait_for_lease(control_plane, ns: str, sweep: str = "locked", timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = lease(control_plane, ns, sweep)
        if found and found["spec"].get("holderIdentity"):
            return found
        time.sleep(0.2)
    raise AssertionError(f"no lease of {sweep} after {timeout} s")


def trial_names(control_plane, ns: str, sweep: str = "locked") -> list[str]:
    out = control_plane.kubectl("-n", ns, "get", "tfjobs", "-l", f"sweepctl.dev/sweep={sweep}", "-o", "json").stdout
    return sorted(i["metadata"]["name"] for i in json.loads(out)["items"])


def trial_uids(control_plane, ns: str, sweep: str = "locked") -> dict[str, str]:
    out = control_plane.kubectl("-n", ns, "get", "tfjobs", "-l", f"sweepctl.dev/sweep={sweep}", "-o", "json").stdout
    return {i["metadata"]["name"]: i["metadata"]["uid"] for i in json.loads(out)["items"]}
