"""A real Kubernetes cluster on loopback for the tests.

`up` starts the API-only control plane: etcd, kube-apiserver, the TFJob CRD and
Kubeflow Trainer v2's CRDs (TrainJob, its runtimes, JobSet).
`up --full` makes it a real one-node cluster (see node.py): controller manager,
scheduler, a kubelet over containerd, the Kubeflow training operator, three
fake GPU nodes (kwok), and the trainer image built from the Dockerfile.

Used by `up` and `down` beside this file and by the pytest fixtures. Only the
standard library and the openssl command are needed, so it runs before any
project dependency is installed.

Layout of a run directory (default ~/.cache/sweepctl/testbed/run):
  pki/          CA, serving certificate, service-account key
  etcd/         etcd's data
  tokens.csv    static tokens: admin (system:masters) and restricted (no rights)
  kubeconfig    contexts admin@testbed (current) and restricted@testbed
  pids.json     the processes `down` stops
  *.log         their output
  host.json     (full) what `down` must undo on the host: sysctls, bridge, cgroups
  containerd/ kubelet/ cni/ volumes/   (full) the node's state
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
sys.path.insert(0, str(HERE))
import images  # noqa: E402
import node  # noqa: E402

DEFAULT_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sweepctl" / "testbed" / "run"
CRD_NAME = "tfjobs.kubeflow.org"
RESTRICTED_USER = "restricted"


class TestbedError(RuntimeError):
    """Something went wrong starting the control plane; the message says what."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    """The pins in the `versions` file beside this one."""
    pins = {}
    for line in (HERE / "versions").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pins[key.strip()] = value.strip()
    return pins


def build(*, full: bool = False) -> Path:
    """Compile (first run) or find the cached binaries; returns their folder."""
    proc = subprocess.run([str(HERE / "build"), *(["--full"] if full else [])], cwd=HERE,
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise TestbedError(f"building the control plane failed (exit {proc.returncode}); see the output above")
    return Path(proc.stdout.strip().splitlines()[-1])


def module_dir(path: str, version_key: str) -> Path:
    """A module pinned in `versions`, in the Go module cache (downloaded if missing)."""
    module = f"{path}@{versions()[version_key]}"
    proc = subprocess.run(["go", "mod", "download", "-json", module], cwd=HERE, stdout=subprocess.PIPE,
                          text=True, check=False)
    if proc.returncode != 0:
        raise TestbedError(f"go mod download {module} failed (exit {proc.returncode})")
    return Path(json.loads(proc.stdout)["Dir"])


def operator_module() -> Path:
    return module_dir("github.com/kubeflow/training-operator", "TRAINING_OPERATOR_VERSION")


def crd_path() -> Path:
    """The TFJob CRD shipped by the training-operator module: never a committed copy."""
    path = operator_module() / "manifests" / "base" / "crds" / "kubeflow.org_tfjobs.yaml"
    if not path.is_file():
        raise TestbedError(f"the TFJob CRD is not at {path}")
    return path


def trainer_crds() -> dict[str, Path]:
    """Kubeflow Trainer v2's CRDs and JobSet's, by name, from their modules in the module cache."""
    trainer = module_dir("github.com/kubeflow/trainer/v2", "TRAINER_VERSION") / "manifests" / "base" / "crds"
    jobset = module_dir("sigs.k8s.io/jobset", "JOBSET_VERSION") / "config" / "components" / "crd" / "bases"
    return {
        **{f"{kind}.trainer.kubeflow.org": trainer / f"trainer.kubeflow.org_{kind}.yaml"
           for kind in ("trainjobs", "trainingruntimes", "clustertrainingruntimes")},
        "jobsets.jobset.x-k8s.io": jobset / "jobset.x-k8s.io_jobsets.yaml",
    }


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


def api_get(server: str, path: str, ca: Path, token: str) -> dict:
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(f"{server}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
        return json.load(resp)


def node_ready(server: str, name: str, ca: Path, token: str) -> bool:
    try:
        conditions = api_get(server, f"/api/v1/nodes/{name}", ca, token).get("status", {}).get("conditions") or []
    except urllib.error.HTTPError:
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def alive(pid: int, binary: str) -> bool:
    """Whether pid is still the process we started (pids get reused)."""
    try:
        return binary in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def running(run_dir: Path, *, full: bool = False) -> bool:
    pids = run_dir / "pids.json"
    if not pids.is_file() or not (run_dir / "kubeconfig").is_file():
        return False
    procs = json.loads(pids.read_text())
    if full and "kubelet" not in procs:
        return False
    return bool(procs) and all(alive(p["pid"], p["binary"]) for p in procs.values())


class Processes(dict):
    """The daemons started so far, recorded in pids.json as soon as each starts."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        logfile = open(self.run_dir / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
        self[name] = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True, env=env)
        data = {n: {"pid": p.pid, "binary": p.args[0]} for n, p in self.items()}
        (self.run_dir / "pids.json").write_text(json.dumps(data))


def up(run_dir: Path = DEFAULT_DIR, *, full: bool = False) -> Path:
    """Start the control plane (and with full, the node); returns the kubeconfig path."""
    if running(run_dir, full=full):
        log(f"the {'full cluster' if full else 'control plane'} in {run_dir} is already running")
        return run_dir / "kubeconfig"
    down(run_dir, quiet=True)
    started = time.monotonic()
    if full:
        reason = node.why_not_here()
        if reason:
            raise TestbedError(f"cannot start the full cluster here: {reason}")
        node.ensure_packages()
        _claim_host(run_dir)
    bin_dir = build(full=full)
    crd = crd_path()
    built_images = _images(bin_dir) if full else []
    t0 = time.monotonic()
    procs = Processes(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        pki = run_dir / "pki"
        make_pki(pki)
        tokens = {"admin": secrets.token_hex(16), RESTRICTED_USER: secrets.token_hex(16)}
        (run_dir / "tokens.csv").write_text(
            f'{tokens["admin"]},admin,uid-admin,"system:masters"\n'
            f"{tokens[RESTRICTED_USER]},{RESTRICTED_USER},uid-{RESTRICTED_USER}\n"
        )
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        procs.start("etcd", [
            str(bin_dir / "etcd"), "--name", "testbed", "--data-dir", str(run_dir / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"testbed=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync", "--log-level", "warn", "--quota-backend-bytes", str(8 * 2**30),
        ])
        wait_until("etcd", lambda: urllib.request.urlopen(f"{etcd_url}/health", timeout=1).status == 200,
                   30, procs, run_dir)
        server = f"https://127.0.0.1:{api_port}"
        admission = (
            # GPU pods get the toleration for the GPU nodes' taint, as on real GPU clusters;
            # the kubelet is reached by its address (there is no DNS for its host name).
            ["--enable-admission-plugins", "ExtendedResourceToleration",
             "--kubelet-preferred-address-types", "InternalIP,Hostname"] if full
            # No controller manager creates default ServiceAccounts here.
            else ["--disable-admission-plugins", "ServiceAccount"]
        )
        procs.start("kube-apiserver", [
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
            *admission,
            "--allow-privileged=true", "--profiling=false",
            "--endpoint-reconciler-type", "none",
        ])
        ca = pki / "ca.crt"
        wait_until("kube-apiserver /readyz", lambda: https_ok(f"{server}/readyz", ca, tokens["admin"]),
                   90, procs, run_dir)
        kubeconfig = run_dir / "kubeconfig"
        write_kubeconfig(kubeconfig, server, ca, tokens)
        kubectl = [str(bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig)]
        # Kubeflow Trainer v2's CRDs too, so that TrainJob sweeps are planned and
        # applied against the API-only control plane; in the full cluster they
        # must exist before the controller manager starts, whose garbage
        # collector only learns kinds that exist then (else it waits for its 30 s resync).
        crds = {CRD_NAME: crd, **trainer_crds()}
        for path in dict.fromkeys(crds.values()):
            subprocess.run([*kubectl, "apply", "--server-side", "-f", str(path)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Polled here, not with `kubectl wait`: that fails outright when it looks
        # before the CRD has any status conditions (seen on a loaded machine).
        for name in crds:
            crd_url = f"{server}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            wait_until(f"the CRD {name} to be Established",
                       lambda url=crd_url: established(url, ca, tokens["admin"]), 60, procs, run_dir)
        (run_dir / "bin").symlink_to(bin_dir)
        what = "the TFJob and Trainer v2 CRDs Established"
        if full:
            _start_node(run_dir, bin_dir, procs, server, ca, tokens["admin"], kubectl, built_images)
            what = "the node Ready, the training operator running and the CRDs Established"
        log(f"{'cluster' if full else 'control plane'} up at {server}: {time.monotonic() - t0:.1f} s from start "
            f"to {what} ({time.monotonic() - started:.1f} s with the build and image checks)")
        return kubeconfig
    except BaseException as err:
        detail = err.stderr.decode(errors="replace") if isinstance(err, subprocess.CalledProcessError) and err.stderr else ""
        log(f"up failed: {err} {detail}".rstrip() + "; cleaning up")
        down(run_dir, quiet=True)
        raise


def _claim_host(run_dir: Path) -> None:
    """One full cluster per machine: they would share the bridge and the node's paths."""
    record = node.HOST_RECORD
    if record.is_file():
        other = Path(json.loads(record.read_text())["run_dir"])
        if other != run_dir and running(other, full=True):
            raise TestbedError(f"a full test cluster already runs from {other}; stop it first with "
                               f"tests/cluster/down --dir {other}")
        if other != run_dir:
            down(other, quiet=True)
    record.write_text(json.dumps({"run_dir": str(run_dir)}))


def _images(bin_dir: Path) -> list[images.Image]:
    """Build (first run) the pause and trainer images; loaded once containerd runs."""
    builder = images.Builder(node.cache_dir())
    trainer, tensorboard = images.default_images()
    return [
        images.pause_image(builder, bin_dir / "pause", node.PAUSE_IMAGE),
        images.trainer_image(builder, (images.full_name(trainer), images.full_name(tensorboard))),
    ]


def _start_node(run_dir: Path, bin_dir: Path, procs: Processes, server: str, ca: Path, token: str,
                kubectl: list[str], built_images: list[images.Image]) -> None:
    versions_ = versions()
    journal = node.Journal(run_dir)
    journal.record_sysctls()
    journal.record_dirs()
    ca_data = base64.b64encode(ca.read_bytes()).decode()
    admin_kc = node.kubeconfig_for(run_dir / "admin.kubeconfig", server, ca_data, token)
    pki = run_dir / "pki"

    # containerd, with the images loaded
    root = node.cache_dir() / "containerd"
    journal.add("mount_roots", str(root))
    node.make_bridge(journal)
    node.make_cgroups(journal)
    node.cni_config(run_dir)
    config = node.containerd_config(run_dir, root)
    procs.start("containerd", ["containerd", "--config", str(config)])
    sock = run_dir / "containerd" / "containerd.sock"
    wait_until("containerd", lambda: subprocess.run([*node.ctr(run_dir), "version"], capture_output=True)
               .returncode == 0, 30, procs, run_dir)
    node.clear_containers(run_dir)
    images.load(node.ctr(run_dir), built_images, root / "sweepctl-loaded.json")

    # the controller manager and the scheduler
    for name, extra in (
        ("kube-controller-manager", [
            "--service-account-private-key-file", str(pki / "sa.key"), "--root-ca-file", str(ca),
            "--flex-volume-plugin-dir", str(run_dir / "kcm" / "flex"), "--controllers", "*",
            "--use-service-account-credentials=false",
        ]),
        ("kube-scheduler", []),
    ):
        procs.start(name, [
            str(bin_dir / name), "--kubeconfig", str(admin_kc),
            "--authentication-kubeconfig", str(admin_kc), "--authorization-kubeconfig", str(admin_kc),
            "--bind-address", "127.0.0.1", "--secure-port", str(free_port()),
            "--cert-dir", str(run_dir / name), "--leader-elect=false", *extra,
        ])

    # the kubelet
    kubelet_conf = node.kubelet_config(run_dir, sock, free_port(), free_port())
    procs.start("kubelet", [
        str(bin_dir / "kubelet"), "--config", str(kubelet_conf), "--kubeconfig", str(admin_kc),
        "--root-dir", str(run_dir / "kubelet"), "--cert-dir", str(run_dir / "kubelet" / "pki"),
        "--hostname-override", node.NODE, "--node-ip", node.NODE_IP, "--v", "1",
    ])
    wait_until(f"node {node.NODE} to be Ready", lambda: node_ready(server, node.NODE, ca, token), 90, procs, run_dir)

    # the training operator, with its own service account and the module's RBAC
    module = operator_module()
    def k(*args: str) -> None:
        subprocess.run([*kubectl, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    k("create", "namespace", "kubeflow")
    k("apply", "--server-side", "-f", str(module / "manifests" / "base" / "rbac" / "role.yaml"))
    k("create", "serviceaccount", "training-operator", "-n", "kubeflow")
    k("create", "clusterrolebinding", "training-operator", "--clusterrole", "training-operator",
      "--serviceaccount", "kubeflow:training-operator")
    # Out of the cluster it still waits for its webhook certificate: an (empty)
    # Secret, and a certificate at its hard-coded path. No webhook is registered.
    k("create", "secret", "generic", "training-operator-webhook-cert", "-n", "kubeflow")
    node.self_signed(node.OPERATOR_CERTS, "training-operator")
    sa_token = subprocess.run([*kubectl, "create", "token", "training-operator", "-n", "kubeflow",
                               "--duration", "48h"], check=True, capture_output=True, text=True).stdout.strip()
    operator_kc = node.kubeconfig_for(run_dir / "operator.kubeconfig", server, ca_data, sa_token)
    procs.start("training-operator", [
        str(bin_dir / f"training-operator-{versions_['TRAINING_OPERATOR_VERSION']}"),
        "--kubeconfig", str(operator_kc), "--enable-scheme", "tfjob",
        "--metrics-bind-address", f"127.0.0.1:{free_port()}",
        "--health-probe-bind-address", f"127.0.0.1:{free_port()}",
        "--webhook-server-port", str(free_port()), "--leader-elect=false",
    ], env={**os.environ, "MY_POD_NAMESPACE": "kubeflow"})
    wait_until("the training operator's TFJob controller",
               lambda: b"Starting workers" in (run_dir / "training-operator.log").read_bytes(), 120, procs, run_dir)

    # Kubeflow Trainer v2 and the JobSet controller it drives (TrainJob). They run
    # without their webhooks, so runtimes spell out what JobSet's defaulting would.
    for name, key, config in (
        ("jobset-controller", "JOBSET_VERSION", node.jobset_config(run_dir, free_port(), free_port(), free_port())),
        ("trainer-controller-manager", "TRAINER_VERSION",
         node.trainer_config(run_dir, free_port(), free_port(), free_port())),
    ):
        procs.start(name, [str(bin_dir / f"{name}-{versions_[key]}"), "--kubeconfig", str(admin_kc),
                           "--config", str(config)],
                    # Trainer reads its serving certificate under $TMPDIR.
                    env={**os.environ, "TMPDIR": str(run_dir / "trainer-tmp")})
    for name in ("jobset-controller", "trainer-controller-manager"):
        wait_until(f"the {name}'s controllers", lambda name=name: b"Starting workers" in
                   (run_dir / f"{name}.log").read_bytes(), 120, procs, run_dir)

    # kwok and its three GPU nodes, with the stages its module ships
    stages = node.kwok_stages(module_dir("sigs.k8s.io/kwok", "KWOK_VERSION"), run_dir / "kwok.yaml")
    procs.start("kwok", [
        str(bin_dir / f"kwok-{versions_['KWOK_VERSION']}"), "--kubeconfig", str(admin_kc), "--config", str(stages),
        "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
        "--server-address", f"127.0.0.1:{free_port()}", "--cidr", node.FAKE_POD_SUBNET,
    ])
    nodes = "\n".join(json.dumps(node.gpu_node(n)) for n in node.GPU_NODES)
    subprocess.run([*kubectl, "create", "-f", "-"], input=nodes.encode(), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    for n in node.GPU_NODES:
        wait_until(f"fake GPU node {n} to be Ready", lambda n=n: node_ready(server, n, ca, token), 60, procs, run_dir)


def volume(run_dir: Path, namespace: str) -> None:
    """The claim `sweepctl-logs` in namespace, on a host folder under run_dir/volumes."""
    kubectl = [str(run_dir / "bin" / "kubectl"), "--kubeconfig", str(run_dir / "kubeconfig")]
    if not running(run_dir, full=True):
        raise TestbedError(f"no full cluster runs from {run_dir}: start one with tests/cluster/up --full")
    subprocess.run([*kubectl, "create", "namespace", namespace], capture_output=True, check=False)
    objects = node.log_volume(namespace, run_dir / "volumes" / namespace)
    subprocess.run([*kubectl, "create", "-f", "-"], input="\n".join(json.dumps(o) for o in objects).encode(),
                   check=True, stdout=subprocess.DEVNULL)
    log(f"namespace {namespace} has the claim sweepctl-logs on {run_dir / 'volumes' / namespace}")


# Stopped in this order: the node's clients first, then the node, then the API.
STOP_ORDER = ("kwok", "trainer-controller-manager", "jobset-controller", "training-operator", "kubelet", "containerd", "kube-scheduler",
              "kube-controller-manager", "kube-apiserver", "etcd")


def down(run_dir: Path = DEFAULT_DIR, *, quiet: bool = False) -> None:
    """Stop what `up` started in run_dir, undo its host changes, remove its data. Safe to run twice."""
    pids = run_dir / "pids.json"
    if pids.is_file():
        procs = json.loads(pids.read_text())
        for name in sorted(procs, key=lambda n: STOP_ORDER.index(n) if n in STOP_ORDER else -1):
            pid, binary = procs[name]["pid"], procs[name]["binary"]
            if name == "containerd" and alive(pid, binary):
                node.clear_containers(run_dir)  # the pods' processes go before containerd
            _stop(pid, binary)
    node.stop_shims(run_dir)
    node.undo_host(run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        if not quiet:
            log(f"stopped the cluster and removed {run_dir}")
    elif not quiet:
        log(f"nothing to stop in {run_dir}")


def _stop(pid: int, binary: str) -> None:
    if not alive(pid, binary):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while alive(pid, binary) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if alive(pid, binary):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog=Path(argv[0]).name)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"run directory (default {DEFAULT_DIR})")
    if parser.prog == "volume":
        parser.add_argument("namespace", help="the namespace to give the claim sweepctl-logs")
    if parser.prog == "up":
        parser.add_argument("--full", action="store_true",
                            help="a real one-node cluster: node, scheduler, controller manager, training operator, "
                                 "fake GPU nodes and the trainer image (needs root)")
    args = parser.parse_args(argv[1:])
    try:
        if parser.prog == "down":
            down(args.dir)
            return 0
        if parser.prog == "volume":
            volume(args.dir, args.namespace)
            return 0
        print(up(args.dir, full=args.full), flush=True)
        return 0
    except (TestbedError, node.NodeError, subprocess.CalledProcessError, OSError, RuntimeError) as err:
        log(f"error: {err}")
        return 1
