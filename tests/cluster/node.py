"""The full test cluster's node: what `up --full` adds to the API-only control plane.

One real node (kubelet over containerd, runc and a CNI bridge, from the
distribution's packages), the controller manager and scheduler from the same
kubernetes module as the API server, the real Kubeflow training operator (v1)
as a process, and kwok running three fake GPU nodes beside the real one.

Everything it changes on the host is written to a journal (`host.json` in the
run directory) before it is changed, so `down` undoes it even after a crash:
sysctls the kubelet and the bridge plugin set, the bridge, cgroups, mounts, and
folders that some tools create outside the run directory whatever they are told.
Only one full cluster runs on a machine at a time: they would share the bridge.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

NODE = "sweepctl-node"
GPU_NODES = tuple(f"sweepctl-gpu-{i}" for i in range(3))
BRIDGE = "swpctl0"
POD_SUBNET = "10.244.77.0/24"
# The bridge's own address: the pods' gateway, and the node's address, on which
# the kubelet listens for the API server (`logs`, `exec`). A kubelet refuses a
# loopback node IP, and nothing outside this machine's test network is used.
NODE_IP = "10.244.77.1"
FAKE_POD_SUBNET = "10.244.78.0/24"  # kwok's pods: addresses on paper only
CGROUP_ROOT = "sweepctl-testbed"
CNI_NETWORK = "sweepctl-testbed"
PAUSE_IMAGE = "localhost/sweepctl/pause:testbed"
PACKAGES = ("containerd", "runc", "containernetworking-plugins", "buildah", "debootstrap", "iproute2")
CNI_BIN = Path("/usr/lib/cni")
# The one full cluster of this machine, so a second `up --full` can say where it runs.
HOST_RECORD = Path("/run/sweepctl-testbed-node.json")
# Values the kubelet (protectKernelDefaults off) and the bridge plugin change.
SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops", "net/ipv4/ip_forward")
# Folders that these tools write whatever their configuration says.
FOREIGN_DIRS = (
    Path("/var/lib/kubelet"),  # device-plugin and pod-resources sockets
    Path("/var/log/containers"),  # the kubelet's links to container logs
    Path("/var/log/pods"),
    Path("/var/lib/cni"),  # libcni's result cache
    Path("/run/containerd"),  # shim sockets
    Path("/tmp/k8s-webhook-server"),  # the training operator's hard-coded certificate folder
)
OPERATOR_CERTS = Path("/tmp/k8s-webhook-server/serving-certs")


class NodeError(RuntimeError):
    """The full cluster cannot start here; the message says why and what to do."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("SWEEPCTL_CACHE") or
                Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sweepctl") / "testbed" / "node"


# ---------------------------------------------------------------------------
# Preconditions and packages

def why_not_here() -> str | None:
    """None when this machine can run the full cluster, else the reason."""
    if os.geteuid() != 0:
        return "the full cluster needs root (containers, cgroups, a bridge); run the tests as root"
    if not Path("/sys/fs/cgroup/memory").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").is_file():
        return "no cgroup file system at /sys/fs/cgroup"
    if sys.platform != "linux":
        return "the full cluster runs on Linux only"
    return None


def ensure_packages() -> None:
    """containerd, runc, the CNI plugins, buildah and debootstrap, from the distribution."""
    missing = [p for p in PACKAGES if subprocess.run(["dpkg-query", "-W", "-f", "${Status}", p],
                                                     capture_output=True, text=True).stdout
               != "install ok installed"]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise NodeError(f"missing packages {', '.join(missing)} and no apt-get to install them")
    log(f"installing {' '.join(missing)} from the distribution (first run only)...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env,
                   stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------------------
# The host journal: every change recorded before it is made

class Journal:
    """What `down` must undo, kept in run_dir/host.json."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "host.json"
        self.data: dict = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)

    def record_sysctls(self) -> None:
        self.data["sysctls"] = {k: Path("/proc/sys", k).read_text().strip() for k in SYSCTLS}
        self.save()

    def record_dirs(self) -> None:
        """Which foreign folders existed, and what they held, before the node started."""
        self.data["dirs"] = {str(d): (sorted(_walk(d)) if d.exists() else None) for d in FOREIGN_DIRS}
        self.save()

    def add(self, key: str, value: str) -> None:
        self.data.setdefault(key, [])
        if value not in self.data[key]:
            self.data[key].append(value)
        self.save()


def _walk(root: Path, depth: int = 3) -> set[str]:
    found: set[str] = set()
    if depth == 0 or not root.is_dir() or root.is_symlink():
        return found
    try:
        entries = list(root.iterdir())
    except OSError:
        return found
    for entry in entries:
        found.add(str(entry))
        if entry.is_dir() and not entry.is_symlink():
            found |= _walk(entry, depth - 1)
    return found


def _cgroup_dirs() -> list[Path]:
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").is_file():  # cgroup v2: one hierarchy
        return [base / CGROUP_ROOT]
    dirs = []
    for hierarchy in sorted(base.iterdir()):
        if hierarchy.is_dir() and not hierarchy.is_symlink() and (hierarchy / "cgroup.procs").is_file():
            dirs.append(hierarchy / CGROUP_ROOT)
    return dirs


def make_cgroups(journal: Journal) -> None:
    """The kubelet's cgroupRoot, made beforehand in every hierarchy, so that pod
    cgroups of other runs are never taken for this node's orphans."""
    for d in _cgroup_dirs():
        journal.add("cgroups", str(d))
        d.mkdir(exist_ok=True)
        if d.parent.name == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                (d / f).write_text((d.parent / f).read_text())


def _unmount_under(prefixes: list[Path]) -> None:
    """Unmount, deepest first, every mount point under these folders."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(p) or point.startswith(f"{p}/") for p in prefixes):
            points.append(point)
    for point in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _kill_cgroup_tree(d: Path) -> None:
    """Stop whatever still runs in a cgroup tree, then remove it, leaves first."""
    if not d.is_dir():
        return
    for _ in range(50):
        pids = [int(p) for f in d.rglob("cgroup.procs") for p in f.read_text().split()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            sub.rmdir()
        except OSError:
            pass
    try:
        d.rmdir()
    except OSError as err:
        log(f"could not remove cgroup {d}: {err}")


def undo_host(run_dir: Path) -> None:
    """Undo what the journal says was changed. Safe to run twice."""
    if HOST_RECORD.is_file():
        try:
            if json.loads(HOST_RECORD.read_text()).get("run_dir") == str(run_dir):
                HOST_RECORD.unlink()
        except (OSError, ValueError):
            pass
    journal = Journal(run_dir)
    data = journal.data
    if not data:
        return
    _unmount_under([run_dir, *[Path(p) for p in data.get("mount_roots", [])]])
    for d in data.get("cgroups", []):
        _kill_cgroup_tree(Path(d))
    for link in data.get("links", []):
        subprocess.run(["ip", "link", "delete", link], capture_output=True, check=False)
    for key, value in data.get("sysctls", {}).items():
        path = Path("/proc/sys", key)
        if path.read_text().strip() != value:
            path.write_text(value)
    for d, before in (data.get("dirs") or {}).items():
        _restore_dir(Path(d), before)
    journal.path.unlink(missing_ok=True)


def _restore_dir(d: Path, before: list[str] | None) -> None:
    """Remove what appeared in a foreign folder since it was recorded."""
    if not d.exists() and not d.is_symlink():
        return
    _unmount_under([d])
    if before is None:
        shutil.rmtree(d, ignore_errors=True)
        return
    keep = set(before)
    for entry in sorted(_walk(d), key=len, reverse=True):
        if entry in keep or any(k.startswith(f"{entry}/") for k in keep):
            continue
        p = Path(entry)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            try:
                p.unlink()
            except OSError:
                pass


# ---------------------------------------------------------------------------
# Configuration files

def make_bridge(journal: Journal) -> None:
    """The pods' bridge with the gateway address, made before the kubelet starts so
    that it can take the address as the node's; the bridge plugin reuses it."""
    journal.add("links", BRIDGE)
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0:
        subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
    prefix = POD_SUBNET.split("/")[1]
    subprocess.run(["ip", "addr", "replace", f"{NODE_IP}/{prefix}", "dev", BRIDGE], check=True)
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)


def containerd_config(run_dir: Path, root: Path) -> Path:
    state = run_dir / "containerd"
    config = f"""version = 2
root = "{root}"
state = "{state}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{state}/containerd.sock"
[ttrpc]
  address = "{state}/containerd.sock.ttrpc"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{state}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # Root here lacks CAP_SYS_RESOURCE: a sandbox may not lower its oom_score_adj.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{state}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{run_dir}/cni"
"""
    path = state / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config)
    return path


def cni_config(run_dir: Path) -> None:
    """A bridge with the gateway on the host, so the host and the API server reach pods."""
    conf = {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [{
            "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET}]],
                     "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(run_dir / "cni-ipam")},
        }],
    }
    (run_dir / "cni").mkdir(exist_ok=True)
    (run_dir / "cni" / "10-sweepctl.conflist").write_text(json.dumps(conf, indent=1))


def kubelet_config(run_dir: Path, sock: Path, port: int, healthz: int) -> Path:
    """JSON is YAML. Settings that keep the kubelet off the rest of the host."""
    kubelet = run_dir / "kubelet"
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz,
        # Only the API server reaches it, on the test network's bridge.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": f"unix://{sock}",
        "imageServiceEndpoint": f"unix://{sock}",
        # containerd 1.6 has no RuntimeConfig, so the kubelet's own driver counts.
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_ROOT}",
        "failCgroupV1": False,
        "failSwapOn": False,
        # Root here lacks CAP_SYS_RESOURCE: nothing may lower oom_score_adj.
        "oomScoreAdj": 0,
        # Else it writes host iptables chains, a DROP rule for 127.0.0.0/8 among them.
        "makeIPTablesUtilChains": False,
        "volumePluginDir": str(kubelet / "volume-plugins"),
        "podLogsDir": str(run_dir / "pod-logs"),
        "staticPodPath": "",
        "serializeImagePulls": False,
        # The images are loaded by hand and never pulled: never collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "maxPods": 60,
        "registerNode": True,
    }
    path = kubelet / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=1))
    return path


def kubeconfig_for(path: Path, server: str, ca_data: str, token: str) -> Path:
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "testbed", "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "testbed", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def gpu_node(name: str) -> dict:
    """A kwok node with one GPU, tainted like real GPU nodes so CPU pods stay off it."""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                     "labels": {"type": "kwok", "kubernetes.io/hostname": name,
                                "sweepctl.dev/fake-gpu-node": "true"}},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
        "status": {
            "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "1"},
            "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "1"},
        },
    }


# kwok's own stages: nodes become Ready and keep a heartbeat; pods are created,
# become Running, and are deleted. Its pod-complete stage only ends pods owned by
# Jobs, so a TFJob's pod on a fake node stays Running, holding its GPU.
KWOK_STAGES = ("node/fast/node-initialize.yaml", "node/heartbeat/node-heartbeat.yaml",
               "pod/general/pod-create.yaml", "pod/general/pod-init-container-running.yaml",
               "pod/general/pod-init-container-completed.yaml", "pod/general/pod-ready.yaml",
               "pod/general/pod-complete.yaml", "pod/general/pod-delete.yaml")


def kwok_stages(module: Path, out: Path) -> Path:
    """kwok's stages from its module in the module cache, as one config file."""
    out.write_text("\n---\n".join((module / "kustomize" / "stage" / f).read_text() for f in KWOK_STAGES))
    return out


def self_signed(directory: Path, cn: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(directory / "tls.key"), "-out", str(directory / "tls.crt"),
                    "-days", "30", "-subj", f"/CN={cn}"], check=True, capture_output=True)


def jobset_config(run_dir: Path, webhook: int, metrics: int, health: int) -> Path:
    """JobSet out of the cluster: its own certificates off, no leader election."""
    certs = run_dir / "jobset-certs"
    self_signed(certs, "jobset-webhook")
    config = {
        "apiVersion": "config.jobset.x-k8s.io/v1alpha1", "kind": "Configuration",
        "leaderElection": {"leaderElect": False}, "internalCertManagement": {"enable": False},
        "webhook": {"port": webhook, "host": "127.0.0.1", "certDir": str(certs)},
        "metrics": {"bindAddress": f"127.0.0.1:{metrics}"},
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health}"},
    }
    path = run_dir / "jobset-config.json"
    path.write_text(json.dumps(config, indent=1))
    return path


def trainer_config(run_dir: Path, webhook: int, metrics: int, health: int) -> Path:
    """Trainer v2 out of the cluster; it reads its certificate from $TMPDIR/k8s-webhook-server."""
    self_signed(run_dir / "trainer-tmp" / "k8s-webhook-server" / "serving-certs", "trainer-webhook")
    config = {
        "apiVersion": "config.trainer.kubeflow.org/v1alpha1", "kind": "Configuration",
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health}", "readinessEndpointName": "readyz",
                   "livenessEndpointName": "healthz"},
        "metrics": {"bindAddress": f"127.0.0.1:{metrics}", "secureServing": False},
        "webhook": {"port": webhook, "host": "127.0.0.1"},
        "leaderElection": {"leaderElect": False},
        "certManagement": {"enable": False},
    }
    path = run_dir / "trainer-config.json"
    path.write_text(json.dumps(config, indent=1))
    return path


def ctr(run_dir: Path) -> list[str]:
    return ["ctr", "--address", str(run_dir / "containerd" / "containerd.sock")]


def clear_containers(run_dir: Path) -> None:
    """Stop and remove every container in the node's namespace (left by a crash, or at down)."""
    base = [*ctr(run_dir), "-n", "k8s.io"]
    tasks = subprocess.run([*base, "tasks", "ls", "-q"], capture_output=True, text=True, check=False).stdout.split()
    for task in tasks:
        subprocess.run([*base, "tasks", "kill", "-s", "SIGKILL", task], capture_output=True, check=False)
    deadline = time.monotonic() + 10
    for task in tasks:
        while time.monotonic() < deadline:
            if subprocess.run([*base, "tasks", "rm", "-f", task], capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.1)
    ids = subprocess.run([*base, "containers", "ls", "-q"], capture_output=True, text=True, check=False).stdout.split()
    if ids:
        subprocess.run([*base, "containers", "rm", *ids], capture_output=True, check=False)


def stop_shims(run_dir: Path) -> None:
    """containerd's shims outlive it by design; stop the ones of this node."""
    address = str(run_dir / "containerd" / "containerd.sock")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"containerd-shim-runc-v2") and address.encode() in cmdline:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def log_volume(namespace: str, folder: Path, claim: str = "sweepctl-logs") -> list[dict]:
    """A PersistentVolume on a host folder, bound to the claim a sweep mounts.

    The folder is made writable by uid 1000, the trainer image's user: a
    host path ignores fsGroup, as NFS and Azure Files do."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chown(folder, 1000, 1000)
    folder.chmod(0o775)
    pv = {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": namespace, "labels": {"sweepctl.dev/testbed": "true"}},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
            "hostPath": {"path": str(folder), "type": "Directory"},
            "claimRef": {"namespace": namespace, "name": claim},
        },
    }
    pvc = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": namespace,
                 "resources": {"requests": {"storage": "1Gi"}}},
    }
    return [pv, pvc]
