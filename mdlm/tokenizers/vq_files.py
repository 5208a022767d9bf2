"""A VQ image tokenizer's files: locate its directory, hash what defines it, copy it into a run.

The SHA-256 of ``config.json`` + the safetensors weights is the tokenizer's identity: image-token
caches and image checkpoints are keyed on it, so codes from one VQ are never decoded by another.
"""

from __future__ import annotations

import hashlib
import os
import shutil

from ..cli import UserError


def resolve_vq_dir(path: str) -> str:
    """The directory holding the VQ's config.json (a diffusers pipeline's ``vqvae/`` is accepted)."""
    if not os.path.isdir(path):
        raise UserError(f"--vq_model {path!r} is not a directory")
    if not os.path.isfile(os.path.join(path, "config.json")) and os.path.isfile(os.path.join(path, "vqvae", "config.json")):
        path = os.path.join(path, "vqvae")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise UserError(f"--vq_model {path!r} has no config.json: not an image tokenizer directory")
    return path


def vq_files(vq_dir: str) -> list[str]:
    """config.json + the safetensors weights (what defines the tokenizer), sorted; whole files only."""
    from ..weights import check_weights_dir

    return ["config.json", *check_weights_dir(vq_dir, what="image tokenizer")]


def vq_sha256(vq_dir: str) -> str:
    """SHA-256 over the names and bytes of :func:`vq_files`."""
    h = hashlib.sha256()
    for name in vq_files(vq_dir):
        h.update(name.encode() + b"\0")
        with open(os.path.join(vq_dir, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def copy_vq(vq_dir: str, out_dir: str, digest: str) -> None:
    """Copy the VQ into ``out_dir/vq`` (staged, then one rename). An existing copy (a resumed run) must
    have the same hash."""
    from ..pipelines.image import VQ_SUBDIR

    dst = os.path.join(out_dir, VQ_SUBDIR)
    if os.path.isdir(dst):
        if vq_sha256(dst) != digest:
            raise UserError(f"{dst} holds another VQ tokenizer than --vq_model; use another --output_dir")
        return
    staging = os.path.join(out_dir, ".vq-staging")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    extra = [f for f in ("metrics.json", "train_vq_args.json") if os.path.isfile(os.path.join(vq_dir, f))]
    for name in vq_files(vq_dir) + extra:
        shutil.copy2(os.path.join(vq_dir, name), os.path.join(staging, name))
    os.replace(staging, dst)
