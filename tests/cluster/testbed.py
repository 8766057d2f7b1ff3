"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, the TFJob CRD.

Used by `up` and `down` beside this file and by the pytest fixture. Only the
standard library and the openssl command are needed, so it runs before any
project dependency is installed.

Layout of a run directory (default ~/.cache/sweepctl/testbed/run):
  pki/          CA, serving certificate, service-account key
  etcd/         etcd's data
  tokens.csv    static tokens: admin (system:masters) and restricted (no rights)
  kubeconfig    contexts admin@testbed (current) and restricted@testbed
  pids.json     the processes `down` stops
  *.log         their output
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sweepctl" / "testbed" / "run"
CRD_NAME = "tfjobs.kubeflow.org"
RESTRICTED_USER = "restricted"


class TestbedError(RuntimeError):
    """Something went wrong starting the control plane; the message says what."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build() -> Path:
    """Compile (first run) or find the cached binaries; returns their folder."""
    proc = subprocess.run([str(HERE / "build")], cwd=HERE, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise TestbedError(f"building the control plane failed (exit {proc.returncode}); see the output above")
    return Path(proc.stdout.strip().splitlines()[-1])


def crd_path() -> Path:
    """The TFJob CRD shipped by the training-operator module in the module cache."""
    proc = subprocess.run(
        ["go", "list", "-mod=readonly", "-m", "-f", "{{.Dir}}", "github.com/kubeflow/training-operator"],
        cwd=HERE, stdout=subprocess.PIPE, text=True, check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        subprocess.run(["go", "mod", "download", "github.com/kubeflow/training-operator"], cwd=HERE, check=True)
        proc = subprocess.run(
            ["go", "list", "-mod=readonly", "-m", "-f", "{{.Dir}}", "github.com/kubeflow/training-operator"],
            cwd=HERE, stdout=subprocess.PIPE, text=True, check=True,
        )
    path = Path(proc.stdout.strip()) / "manifests" / "base" / "crds" / "kubeflow.org_tfjobs.yaml"
    if not path.is_file():
        raise TestbedError(f"the TFJob CRD is not at {path}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_pki(pki: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1 and a service-account key (EC P-256: fast)."""
    pki.mkdir(parents=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
            "-days", "30", "-subj", "/CN=sweepctl-testbed-ca")
    openssl("req", *ec, "-keyout", str(pki / "apiserver.key"), "-out", str(pki / "apiserver.csr"),
            "-subj", "/CN=kube-apiserver")
    (pki / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default\n"
        "extendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", str(pki / "apiserver.csr"), "-CA", str(pki / "ca.crt"),
            "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "30",
            "-extfile", str(pki / "san.ext"), "-out", str(pki / "apiserver.crt"))
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", str(pki / "sa.key"))
    openssl("pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))


def start(name: str, argv: list[str], run_dir: Path) -> subprocess.Popen[bytes]:
    """Start a daemon in its own session, so it outlives `up` and is stopped by `down`."""
    logfile = open(run_dir / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def wait_until(what: str, check, timeout: float, procs: dict[str, subprocess.Popen[bytes]], run_dir: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for name, proc in procs.items():
            if proc.poll() is not None:
                tail = (run_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise TestbedError(f"{name} exited with {proc.returncode} while waiting for {what}:\n{tail}")
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TestbedError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def https_ok(url: str, ca: Path, token: str) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
            return resp.status == 200
    except urllib.error.HTTPError:
        return False


def established(url: str, ca: Path, token: str) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
        conditions = json.load(resp).get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def write_kubeconfig(path: Path, server: str, ca: Path, tokens: dict[str, str]) -> None:
    """JSON is YAML: kubectl and the Python client both read it."""
    ca_data = base64.b64encode(ca.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "testbed", "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": user, "user": {"token": token}} for user, token in tokens.items()],
        "contexts": [
            {"name": f"{user}@testbed", "context": {"cluster": "testbed", "user": user, "namespace": "default"}}
            for user in tokens
        ],
        "current-context": "admin@testbed",
    }
    path.write_text(json.dumps(config, indent=1))
    path.chmod(0o600)


def alive(pid: int, binary: str) -> bool:
    """Whether pid is still the process we started (pids get reused)."""
    try:
        return binary in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def running(run_dir: Path) -> bool:
    pids = run_dir / "pids.json"
    if not pids.is_file() or not (run_dir / "kubeconfig").is_file():
        return False
    procs = json.loads(pids.read_text())
    return bool(procs) and all(alive(p["pid"], p["binary"]) for p in procs.values())


def up(run_dir: Path = DEFAULT_DIR) -> Path:
    """Start etcd and kube-apiserver, install the TFJob CRD; returns the kubeconfig path."""
    if running(run_dir):
        log(f"the control plane in {run_dir} is already running")
        return run_dir / "kubeconfig"
    down(run_dir, quiet=True)
    started = time.monotonic()
    bin_dir = build()
    crd = crd_path()
    t0 = time.monotonic()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        run_dir.mkdir(parents=True)
        pki = run_dir / "pki"
        make_pki(pki)
        tokens = {"admin": secrets.token_hex(16), RESTRICTED_USER: secrets.token_hex(16)}
        (run_dir / "tokens.csv").write_text(
            f'{tokens["admin"]},admin,uid-admin,"system:masters"\n'
            f"{tokens[RESTRICTED_USER]},{RESTRICTED_USER},uid-{RESTRICTED_USER}\n"
        )
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        procs["etcd"] = start("etcd", [
            str(bin_dir / "etcd"), "--name", "testbed", "--data-dir", str(run_dir / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"testbed=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync", "--log-level", "warn", "--quota-backend-bytes", str(8 * 2**30),
        ], run_dir)
        _record(run_dir, procs, bin_dir)
        wait_until("etcd", lambda: urllib.request.urlopen(f"{etcd_url}/health", timeout=1).status == 200,
                   30, procs, run_dir)
        server = f"https://127.0.0.1:{api_port}"
        procs["kube-apiserver"] = start("kube-apiserver", [
            str(bin_dir / "kube-apiserver"),
            "--etcd-servers", etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", str(api_port),
            "--tls-cert-file", str(pki / "apiserver.crt"), "--tls-private-key-file", str(pki / "apiserver.key"),
            "--client-ca-file", str(pki / "ca.crt"),
            "--token-auth-file", str(run_dir / "tokens.csv"),
            "--authorization-mode", "RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", str(pki / "sa.pub"),
            "--service-account-signing-key-file", str(pki / "sa.key"),
            "--service-cluster-ip-range", "10.96.0.0/16",
            # No controller-manager creates default ServiceAccounts here.
            "--disable-admission-plugins", "ServiceAccount",
            "--allow-privileged=true", "--profiling=false",
            "--endpoint-reconciler-type", "none",
        ], run_dir)
        _record(run_dir, procs, bin_dir)
        ca = pki / "ca.crt"
        wait_until("kube-apiserver /readyz", lambda: https_ok(f"{server}/readyz", ca, tokens["admin"]),
                   90, procs, run_dir)
        kubeconfig = run_dir / "kubeconfig"
        write_kubeconfig(kubeconfig, server, ca, tokens)
        kubectl = [str(bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig)]
        subprocess.run([*kubectl, "apply", "--server-side", "-f", str(crd)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Polled here, not with `kubectl wait`: that fails outright when it looks
        # before the CRD has any status conditions (seen on a loaded machine).
        crd_url = f"{server}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}"
        wait_until("the TFJob CRD to be Established", lambda: established(crd_url, ca, tokens["admin"]),
                   60, procs, run_dir)
        (run_dir / "bin").symlink_to(bin_dir)
        log(f"control plane up at {server}: {time.monotonic() - t0:.1f} s from start to the TFJob CRD "
            f"Established ({time.monotonic() - started:.1f} s with the build check)")
        return kubeconfig
    except BaseException as err:
        detail = err.stderr.decode(errors="replace") if isinstance(err, subprocess.CalledProcessError) and err.stderr else ""
        log(f"up failed: {err} {detail}".rstrip() + "; cleaning up")
        down(run_dir, quiet=True)
        raise


def _record(run_dir: Path, procs: dict[str, subprocess.Popen[bytes]], bin_dir: Path) -> None:
    data = {name: {"pid": p.pid, "binary": str(bin_dir / name)} for name, p in procs.items()}
    (run_dir / "pids.json").write_text(json.dumps(data))


def down(run_dir: Path = DEFAULT_DIR, *, quiet: bool = False) -> None:
    """Stop what `up` started in run_dir and remove its data. Safe to run twice."""
    pids = run_dir / "pids.json"
    if pids.is_file():
        procs = json.loads(pids.read_text())
        # Stop the API server before etcd, so it never logs a storage outage.
        for name in sorted(procs, key=lambda n: n != "kube-apiserver"):
            pid, binary = procs[name]["pid"], procs[name]["binary"]
            if alive(pid, binary):
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while alive(pid, binary) and time.monotonic() < deadline:
                    _reap(pid)
                    time.sleep(0.05)
                if alive(pid, binary):
                    os.kill(pid, signal.SIGKILL)
                _reap(pid)
    if run_dir.exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        if not quiet:
            log(f"stopped the control plane and removed {run_dir}")
    elif not quiet:
        log(f"nothing to stop in {run_dir}")


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog=Path(argv[0]).name)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"run directory (default {DEFAULT_DIR})")
    args = parser.parse_args(argv[1:])
    try:
        if parser.prog == "down":
            down(args.dir)
            return 0
        print(up(args.dir), flush=True)
        return 0
    except (TestbedError, subprocess.CalledProcessError, OSError) as err:
        log(f"error: {err}")
        return 1
