"""Benchmark one shell <TAB>: what `sweepctl` takes to answer bash's completion request.

Run:  .venv/bin/python bench/completion_bench.py [--repeat 15] [--kubeconfig FILE]

Every <TAB> starts a fresh `sweepctl` process with typer's completion variables
set (COMP_WORDS, COMP_CWORD, _SWEEPCTL_COMPLETE=complete_bash), exactly as the
script of `sweepctl --show-completion bash` does. Measured in the same run:
`python -c pass` (the interpreter's floor) and `sweepctl --help` (the baseline:
the CLI's own start-up). Cases: the command list, spec files in a folder of 50,
`--keep best=`, `--sweep` from 20 local sweeps, and `--sweep` from the local
state and a namespace holding 3 sweeps on the API-only control plane (started
with tests/cluster/up in a temporary folder unless --kubeconfig names one),
listed as the README Role's user. Target: under 150 ms per <TAB>. Python's
bytecode cache is on, as an installed sweepctl has it.
Prints a Markdown table (median and 90th percentile wall time, median CPU time
of the process) for bench/RESULTS.md, with the load before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SWEEPCTL = str(BIN / "sweepctl")
sys.path.insert(0, str(ROOT / "tests"))


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def tab(line: str) -> tuple[list[str], dict[str, str]]:
    words = line.split(" ")
    return [SWEEPCTL], {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1), "_SWEEPCTL_COMPLETE": "complete_bash"}


def kubectl(bin_dir: Path, kubeconfig: Path, *args: str, stdin: str | None = None) -> None:
    subprocess.run([str(bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig), *args], input=stdin, text=True,
                   check=True, capture_output=True)


def namespace_with_sweeps(kubeconfig: Path, bin_dir: Path, work: Path) -> str:
    """A fresh namespace with 3 applied sweeps and the README Role bound to the `restricted` user."""
    from readme_role import readme_role

    ns = f"bench-{uuid.uuid4().hex[:8]}"
    kubectl(bin_dir, kubeconfig, "create", "namespace", ns)
    for name in ("starry-night", "starry-tpe", "lab"):
        spec = work / f"{name}.yaml"
        spec.write_text(f"name: {name}\nbackend: kubernetes\nnamespace: {ns}\nhyperParamValues: "
                        "{learningRate: [0.1, 0.01]}\n")
        subprocess.run([SWEEPCTL, "apply", str(spec), "--auto-approve"], cwd=work, check=True, capture_output=True,
                       env={**os.environ, "KUBECONFIG": str(kubeconfig)})
    kubectl(bin_dir, kubeconfig, "apply", "-n", ns, "-f", "-", stdin=readme_role())
    kubectl(bin_dir, kubeconfig, "create", "rolebinding", "sweepctl", "-n", ns, "--role", "sweepctl",
            "--user", "restricted")
    return ns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--kubeconfig", type=Path, help="a running test control plane (else one is started)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="completion-bench-") as tmp:
        work = Path(tmp)
        for i in range(50):
            (work / "specs").mkdir(exist_ok=True)
            (work / "specs" / f"sweep-{i:02d}.yaml").write_text("")
        for i in range(20):
            (work / ".sweepctl" / "sweeps" / f"local-{i:02d}").mkdir(parents=True)
            (work / ".sweepctl" / "sweeps" / f"local-{i:02d}" / "state.json").write_text("{}")
        run_dir = work / "controlplane"
        kubeconfig = args.kubeconfig
        if kubeconfig is None:
            up = subprocess.run([sys.executable, str(ROOT / "tests" / "cluster" / "up"), "--dir", str(run_dir)],
                                stdout=subprocess.PIPE, text=True, check=True)
            kubeconfig = Path(up.stdout.strip().splitlines()[-1])
        bin_dir = Path(subprocess.run([str(ROOT / "tests" / "cluster" / "build")], capture_output=True, text=True,
                                      check=True).stdout.strip().splitlines()[-1])
        ns = ""
        try:
            ns = namespace_with_sweeps(kubeconfig, bin_dir, work)
            # Bytecode cache on, as an installed sweepctl has it, whatever PYTHONDONTWRITEBYTECODE says here.
            base = {k: v for k, v in os.environ.items()
                    if not k.startswith(("_SWEEPCTL", "_TYPER", "COMP_")) and k != "PYTHONDONTWRITEBYTECODE"}
            no_cluster = {**base, "KUBECONFIG": str(work / "no-kubeconfig")}
            cluster = {**base, "KUBECONFIG": str(kubeconfig)}
            cases: list[tuple[str, list[str], dict[str, str]]] = [
                ("`python -c pass` (floor)", [sys.executable, "-c", "pass"], no_cluster),
                ("`sweepctl --help` (baseline)", [SWEEPCTL, "--help"], no_cluster),
            ]
            for label, line, env in (
                ("<TAB> commands: `sweepctl `", "sweepctl ", no_cluster),
                ("<TAB> spec files (50): `sweepctl plan specs/`", "sweepctl plan specs/", no_cluster),
                ("<TAB> `sweepctl status --keep best=`", "sweepctl status --keep best =", no_cluster),
                ("<TAB> `--sweep`, 20 local sweeps, no kubeconfig", "sweepctl status --sweep ", no_cluster),
                ("<TAB> `--sweep`, 20 local + 3 in the namespace (README Role user)",
                 f"sweepctl status --context restricted@testbed -n {ns} --sweep ", cluster),
            ):
                argv, comp = tab(line)
                cases.append((label, argv, {**env, **comp}))
            load_before = os.getloadavg()[0]
            for _, argv, env in cases:
                timed(argv, env, work)  # warm the page and bytecode caches
            runs: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in cases}
            for _ in range(args.repeat):  # round robin: a change in the machine's load falls on every case alike
                for label, argv, env in cases:
                    runs[label].append(timed(argv, env, work))
            results = []
            for label, measured in runs.items():
                walls = sorted(w for w, _ in measured)
                results.append((label, statistics.median(walls), walls[int(0.9 * (len(walls) - 1))],
                                statistics.median(c for _, c in measured)))
            load_after = os.getloadavg()[0]
        finally:
            if args.kubeconfig is None:
                subprocess.run([sys.executable, str(ROOT / "tests" / "cluster" / "down"), "--dir", str(run_dir)],
                               check=False, capture_output=True)
            elif ns:
                kubectl(bin_dir, kubeconfig, "delete", "namespace", ns, "--wait=false")
    print(f"{args.repeat} runs each; 1-minute load {load_before:.2f} before, {load_after:.2f} after\n")
    print("| what | median ms | p90 ms | CPU ms (median) |\n|---|---|---|---|")
    for label, median, p90, cpu in results:
        print(f"| {label} | {median * 1000:.0f} | {p90 * 1000:.0f} | {cpu * 1000:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
