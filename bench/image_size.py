"""Measure the sweepctl image (Dockerfile.sweepctl) against the trainer image (Dockerfile).

Run as root, under the full-cluster lock (buildah shares the test cluster's storage):
    /work/bin/full-cluster-lock .venv/bin/python bench/image_size.py

Both are built as the full test cluster builds its images (tests/cluster/images.py:
buildah, on the same debootstrap Debian base, cached by what they are built from),
and measured as archived for the cluster: the uncompressed size of each archive
(docker-archive, every layer), with buildah's own listing, where the base they
share is the baseline.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

import images  # noqa: E402
import node  # noqa: E402

import sweepctl  # noqa: E402


def main() -> int:
    builder = images.Builder(node.cache_dir())
    trainer = images.trainer_image(builder, (images.full_name(images.default_images()[0]),))
    cli = images.sweepctl_image(builder, images.full_name(f"sweepctl/sweepctl:{sweepctl.__version__}"))
    base = images.base_image(builder)
    listing = subprocess.run(builder.argv("images", "--format", "{{.Name}}:{{.Tag}} {{.Size}}"), capture_output=True,
                             text=True, check=True).stdout
    mib = 1024 * 1024
    print("| image | archive (uncompressed) MiB |\n|---|---|")
    print(f"| trainer (`Dockerfile`: TensorFlow, Pillow, TensorBoard) | {trainer.archive.stat().st_size / mib:.0f} |")
    print(f"| sweepctl (`Dockerfile.sweepctl`: the CLI, no extras) | {cli.archive.stat().st_size / mib:.0f} |")
    print(f"\nbuildah's listing (the base `{base}` among them):\n{listing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
