"""A running test control plane as tests see it: its kubeconfig, and kubectl as one of its users."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ControlPlane:
    kubeconfig: Path
    bin_dir: Path

    def kubectl(self, *args: str, user: str = "admin", check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig),
                "--context", f"{user}@testbed", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=check, input=input)
