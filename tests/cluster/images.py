"""Container images for the full test cluster, built with no registry reachable.

- The pause image: the pause binary that `build --full` compiles from the
  kubernetes module's pause.c.
- A Python base image: a Debian root file system made by debootstrap from the
  distribution's packages (the registries' python:* images cannot be pulled).
- The trainer image, built from the repository's own Dockerfile by buildah with
  the base passed as PYTHON_IMAGE and the machine's CA bundle as the Dockerfile's
  optional `pip-ca` build secret. It is loaded as `sweepctl/tf-paint:<version>`,
  the spec's default image, and tagged as the default TensorBoard image too: it
  has the `tensorboard` program, so a spec that keeps both defaults runs as-is.

- An example's image (examples/<name>/Dockerfile), built `FROM` the trainer image
  (passed as TRAINER_IMAGE) by the end-to-end tests that run the examples.

Each image is archived in the cache under a hash of what it is built from, so a
change to the Dockerfile or to model/ rebuilds the trainer image (and with it the
examples' images), a change to an example's folder rebuilds that example's image,
and nothing else does. buildah keeps its storage in the cache too, never in /var/lib.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_SUITE = "bookworm"
BASE_PACKAGES = "python3,python3-pip,python3-venv,ca-certificates,python-is-python3"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def project_version() -> str:
    """sweepctl's version, from the one place it is written (pyproject.toml reads it from there too)."""
    match = re.search(r'^__version__ = "([^"]+)"$', (ROOT / "sweepctl" / "__init__.py").read_text(), re.M)
    assert match, "sweepctl/__init__.py has no __version__"
    return match.group(1)


def default_images() -> tuple[str, str]:
    """The spec's default trainer and TensorBoard images, read from the schema defaults."""
    schema = json.loads((ROOT / "schema" / "sweep.schema.json").read_text())
    props = schema["properties"]
    trainer = props["image"].get("default") or f"sweepctl/tf-paint:{project_version()}"
    trainer = trainer.replace("<version>", project_version())
    tensorboard = props["tensorboard"]["properties"]["image"]["default"]
    return trainer, tensorboard


def full_name(ref: str) -> str:
    """`sweepctl/x:1` -> `docker.io/sweepctl/x:1`: the name the kubelet looks up."""
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    if "." in first or ":" in first or first == "localhost":
        return ref
    return f"docker.io/{ref}"


@dataclass(frozen=True)
class Image:
    """One archive in the cache, and the names it is loaded under."""

    archive: Path
    names: tuple[str, ...]
    key: str


class Builder:
    """buildah with its storage in the cache (as root, like the rest of the node)."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.store = cache / "buildah"
        self.archives = cache / "images"
        self.archives.mkdir(parents=True, exist_ok=True)

    def argv(self, *args: str) -> list[str]:
        return ["buildah", "--root", str(self.store / "root"), "--runroot", str(self.store / "runroot"),
                "--storage-driver", "overlay", *args]

    def buildah(self, *args: str, capture: bool = False) -> str:
        argv = self.argv(*args)
        proc = subprocess.run(argv, stdout=subprocess.PIPE if capture else sys.stderr,
                              stderr=sys.stderr, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"buildah {args[0]} failed with exit {proc.returncode}: {' '.join(argv)}")
        return (proc.stdout or "").strip()

    def has(self, name: str) -> bool:
        return subprocess.run(self.argv("inspect", "--type", "image", name), capture_output=True,
                              check=False).returncode == 0

    def export(self, name: str, archive: Path, names: tuple[str, ...]) -> None:
        """A docker-archive that `ctr images import` loads under its first name."""
        tmp = archive.with_suffix(".partial")
        tmp.unlink(missing_ok=True)
        self.buildah("push", "--quiet", name, f"docker-archive:{tmp}:{names[0]}")
        tmp.rename(archive)

    def from_rootfs(self, name: str, rootfs: Path, *, entrypoint: list[str] | None = None,
                    cmd: list[str] | None = None) -> None:
        """Commit a directory as a one-layer image (`buildah from scratch`)."""
        container = self.buildah("from", "--quiet", "scratch", capture=True)
        try:
            mount = Path(self.buildah("mount", container, capture=True))
            subprocess.run(["cp", "-a", f"{rootfs}/.", str(mount)], check=True)
            self.buildah("umount", container)
            if entrypoint is not None:
                self.buildah("config", "--entrypoint", json.dumps(entrypoint), container)
            if cmd is not None:
                self.buildah("config", "--cmd", json.dumps(cmd), container)
            self.buildah("commit", "--quiet", "--format", "docker", container, name)
        finally:
            subprocess.run(self.argv("rm", container), capture_output=True, check=False)


def _hash(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:16]


def pause_image(builder: Builder, pause_binary: Path, name: str) -> Image:
    key = _hash(pause_binary.read_bytes())
    image = Image(builder.archives / f"pause-{key}.tar", (name,), key)
    if image.archive.is_file():
        return image
    t0 = time.monotonic()
    rootfs = builder.cache / "pause-rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    rootfs.mkdir(parents=True)
    shutil.copy2(pause_binary, rootfs / "pause")
    local = f"localhost/sweepctl/pause:{key}"
    builder.from_rootfs(local, rootfs, entrypoint=["/pause"])
    shutil.rmtree(rootfs)
    builder.export(local, image.archive, image.names)
    log(f"built the pause image in {time.monotonic() - t0:.0f} s")
    return image


def _debian_mirror() -> str:
    """The first Debian mirror this machine's apt sources name."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for block in sources.read_text().split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", block, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", block, re.M)
            if uris and suites and DEBIAN_SUITE in suites.group(1).split():
                return uris.group(1)
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]:
        if path.is_file():
            m = re.search(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{DEBIAN_SUITE}\s", path.read_text(), re.M)
            if m:
                return m.group(1)
    raise RuntimeError(f"no Debian {DEBIAN_SUITE} mirror in /etc/apt/sources*: debootstrap needs one")


def base_image(builder: Builder) -> str:
    """A Debian Python image for the Dockerfile's PYTHON_IMAGE, made once per machine."""
    name = f"localhost/sweepctl/python-base:{DEBIAN_SUITE}"
    if builder.has(name):
        return name
    t0 = time.monotonic()
    rootfs = builder.cache / "python-base-rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    log(f"making a Debian {DEBIAN_SUITE} base image with debootstrap (first run only)...")
    subprocess.run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", DEBIAN_SUITE,
                    str(rootfs), _debian_mirror()], check=True, stdout=subprocess.DEVNULL, stderr=sys.stderr)
    # Debian marks its Python as externally managed; an image's own pip may install into it.
    for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
    builder.from_rootfs(name, rootfs, cmd=["python3"])
    shutil.rmtree(rootfs)
    log(f"made the base image in {time.monotonic() - t0:.0f} s")
    return name


def _build_context_files() -> list[Path]:
    """What the Dockerfile can see: Dockerfile, .dockerignore and model/ less bytecode."""
    files = [ROOT / "Dockerfile", ROOT / ".dockerignore"]
    files += sorted(p for p in (ROOT / "model").rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return files


def _files_key(*prefix: bytes, files: list[Path]) -> str:
    return _hash(*prefix, *(str(p.relative_to(ROOT)).encode() + p.read_bytes() for p in files))


def _bud(builder: Builder, what: str, image: Image, tag: str, context: Path, build_arg: str, *,
         dockerfile: Path | None = None, ignorefile: Path | None = None) -> None:
    """Build a Dockerfile (context's own by default; one build argument) as tag, archive it, and drop the tag."""
    t0 = time.monotonic()
    log(f"building {what} with buildah...")
    args = ["bud", "--pull=never", "--format", "docker", "--network", "host", "--layers=false",
            "--build-arg", build_arg, "-t", tag, "-f", str(dockerfile or context / "Dockerfile")]
    if ignorefile is not None:
        args += ["--ignorefile", str(ignorefile)]
    if HOST_CA_BUNDLE.is_file():
        # The registries are reached through a CA only this machine's bundle has.
        args += ["--secret", f"id=pip-ca,src={HOST_CA_BUNDLE}"]
    builder.buildah(*args, str(context))
    t1 = time.monotonic()
    builder.export(tag, image.archive, image.names)
    builder.buildah("rmi", tag)
    log(f"built {what} in {t1 - t0:.0f} s, exported it in {time.monotonic() - t1:.0f} s")


def trainer_image(builder: Builder, names: tuple[str, ...]) -> Image:
    """The repository's Dockerfile, built as it is (CPU variant)."""
    return _dockerfile_image(builder, "tf-paint", ROOT / "Dockerfile", _build_context_files(), names)


def sweepctl_image(builder: Builder, name: str) -> Image:
    """sweepctl itself (Dockerfile.sweepctl: the CLI, no extras, non-root), for running it in a pod."""
    files = [ROOT / "Dockerfile.sweepctl", ROOT / "Dockerfile.sweepctl.dockerignore", ROOT / "pyproject.toml",
             ROOT / "README.md"]
    files += sorted(p for folder in ("sweepctl", "model") for p in (ROOT / folder).rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return _dockerfile_image(builder, "sweepctl", ROOT / "Dockerfile.sweepctl", files, (name,),
                             ignorefile=ROOT / "Dockerfile.sweepctl.dockerignore")


def _dockerfile_image(builder: Builder, kind: str, dockerfile: Path, files: list[Path], names: tuple[str, ...],
                      *, ignorefile: Path | None = None) -> Image:
    """A Dockerfile of this repository built on the base image, archived under a hash of what it sees."""
    base = base_image(builder)
    base_id = builder.buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", base, capture=True)
    key = _files_key(base_id.encode(), files=files)
    image = Image(builder.archives / f"{kind}-{key}.tar", names, key)
    if not image.archive.is_file():
        _bud(builder, f"the {kind} image from {dockerfile.name}", image, f"localhost/sweepctl/{kind}:{key}", ROOT,
             f"PYTHON_IMAGE={base}", dockerfile=dockerfile, ignorefile=ignorefile)
    return image


def example_image(builder: Builder, example: Path, names: tuple[str, ...], trainer: Image) -> Image:
    """An example folder's Dockerfile, built FROM the trainer image as TRAINER_IMAGE.

    The trainer image is imported from its archive into buildah's storage once, under
    a name with its key, and kept there: the next example builds on it at once.
    """
    files = sorted(p for p in example.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and not any(part.startswith(".") for part in p.relative_to(example).parts))
    key = _files_key(trainer.key.encode(), files=files)
    image = Image(builder.archives / f"example-{example.name}-{key}.tar", names, key)
    if image.archive.is_file():
        return image
    base = f"localhost/sweepctl/tf-paint:{trainer.key}"
    if not builder.has(base):
        t0 = time.monotonic()
        pulled = builder.buildah("pull", "--quiet", f"docker-archive:{trainer.archive}", capture=True)
        builder.buildah("tag", pulled.splitlines()[-1], base)
        log(f"imported the trainer image into buildah in {time.monotonic() - t0:.0f} s")
    _bud(builder, f"the {example.name} example's image", image,
         f"localhost/sweepctl/example-{example.name}:{key}", example, f"TRAINER_IMAGE={base}")
    return image


def load(ctr: list[str], images: list[Image], loaded_file: Path) -> None:
    """Import each archive into containerd's k8s.io namespace unless already there."""
    loaded = json.loads(loaded_file.read_text()) if loaded_file.is_file() else {}
    present = set(subprocess.run([*ctr, "-n", "k8s.io", "images", "ls", "-q"], check=True,
                                 capture_output=True, text=True).stdout.split())
    for image in images:
        if all(loaded.get(n) == image.key and n in present for n in image.names):
            continue
        t0 = time.monotonic()
        subprocess.run([*ctr, "-n", "k8s.io", "images", "import", str(image.archive)],
                       check=True, stdout=subprocess.DEVNULL, stderr=sys.stderr)
        for alias in image.names[1:]:
            subprocess.run([*ctr, "-n", "k8s.io", "images", "rm", alias], capture_output=True, check=False)
            subprocess.run([*ctr, "-n", "k8s.io", "images", "tag", image.names[0], alias], check=True,
                           stdout=subprocess.DEVNULL)
        for n in image.names:
            loaded[n] = image.key
        loaded_file.write_text(json.dumps(loaded, indent=1))
        log(f"loaded {', '.join(image.names)} into the node in {time.monotonic() - t0:.0f} s")
    os.sync()
