"""Carry what a GPU run learnt back to a CPU: an adapter dir → bf16 weights → one tar → parts of ≤ ``part_mib`` MiB
with a SHA-256 manifest, and back.

    parts = pack_adapter("runs/smollm2_mdm", "out/smollm2_mdm_adapter")   # out/…tar.part00, .part01, …, .sha256
    unpack_adapter("out/smollm2_mdm_adapter", "runs/smollm2_mdm")          # checks every checksum first

The adapter applies to the base that ``recipes/adapt_ar.py --base_only true`` rebuilds from the same source on any
machine (its weight fingerprint is checked on load), so the parts are all that must outlive the GPU machine.
Weights are written with safetensors only; the tar holds no code and is extracted member by member (regular files
directly inside the target dir, nothing else).
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import torch
from safetensors.torch import load_file, save_file

ADAPTER_WEIGHTS = "adapter_model.safetensors"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def to_bf16(adapter_dir: str) -> int:
    """Rewrite the adapter's float weights in bfloat16 (half the bytes; inference loads them into any dtype).
    Returns the new file size in bytes."""
    path = os.path.join(adapter_dir, ADAPTER_WEIGHTS)
    tensors = load_file(path)
    tensors = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tensors.items()}
    tmp = path + ".tmp"
    save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata={"format": "pt"})
    os.replace(tmp, path)
    return os.path.getsize(path)


def _reproducible(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """No time stamp or owner in the tar: the same files give the same bytes (and SHA-256) on every pack."""
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def pack_adapter(adapter_dir: str, prefix: str, part_mib: int = 15, bf16: bool = True) -> list[str]:
    """Tar the regular files of ``adapter_dir`` into ``prefix.tar.partNN`` pieces of ≤ ``part_mib`` MiB and write
    ``prefix.sha256`` (one ``<sha256>  <file name>`` line per part and one for the whole tar). Returns the parts.
    The same files pack to the same bytes (no time stamps or owners in the tar)."""
    if not os.path.isfile(os.path.join(adapter_dir, "adapter_config.json")):
        raise ValueError(f"{adapter_dir!r} is not an adapter directory (no adapter_config.json)")
    if bf16:
        to_bf16(adapter_dir)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in sorted(os.listdir(adapter_dir)):
            full = os.path.join(adapter_dir, name)
            if os.path.isfile(full):
                tar.add(full, arcname=name, filter=_reproducible)
    data = buf.getvalue()
    size = part_mib << 20
    parts, lines = [], []
    for i in range(0, max(len(data), 1), size):
        part = f"{prefix}.tar.part{i // size:02d}"
        with open(part, "wb") as f:
            f.write(data[i : i + size])
        parts.append(part)
        lines.append(f"{_sha256(part)}  {os.path.basename(part)}")
    lines.append(f"{hashlib.sha256(data).hexdigest()}  {os.path.basename(prefix)}.tar")
    with open(f"{prefix}.sha256", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return parts


def unpack_adapter(prefix: str, out_dir: str) -> str:
    """Check ``prefix.sha256``, join the parts and extract the adapter's files into ``out_dir`` (missing or empty)."""
    manifest = f"{prefix}.sha256"
    if not os.path.isfile(manifest):
        raise ValueError(f"{manifest!r} does not exist (expected beside the .tar.partNN files)")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise ValueError(f"{out_dir!r} is not empty; choose another directory")
    folder = os.path.dirname(prefix) or "."
    with open(manifest, encoding="utf-8") as f:
        entries = [line.split(None, 1) for line in f.read().splitlines() if line.strip()]
    data = b""
    whole = None
    for digest, name in entries:
        name = name.strip()
        if name.endswith(".tar"):
            whole = digest
            continue
        path = os.path.join(folder, name)
        if not os.path.isfile(path) or _sha256(path) != digest:
            raise ValueError(f"{path}: missing or its SHA-256 differs from {manifest}")
        with open(path, "rb") as fh:
            data += fh.read()
    if whole is not None and hashlib.sha256(data).hexdigest() != whole:
        raise ValueError(f"the joined parts of {prefix} do not match the tar checksum in {manifest}")
    os.makedirs(out_dir, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        for member in tar.getmembers():
            if not member.isfile() or os.path.basename(member.name) != member.name:
                raise ValueError(f"{prefix}: unexpected tar member {member.name!r}")
            src = tar.extractfile(member)
            with open(os.path.join(out_dir, member.name), "wb") as out:
                out.write(src.read())
    return out_dir


def restamp_base_fingerprint(adapter_dir: str, base: torch.nn.Module) -> str:
    """Re-write the adapter's base fingerprint for ``base`` when only the architecture-config hash differs (the
    type, vocabulary, width, depth and weight probe all match). For adapters fingerprinted before
    ``CausalBackboneConfig.to_dict`` dropped load-path keys (source dir, transformers version) from the hash.
    Raises ValueError when anything but the hash differs. Returns the fingerprint file's path."""
    from ..lora import base_fingerprint, fingerprint_mismatch, read_fingerprint, write_fingerprint

    old = read_fingerprint(adapter_dir)
    if old is None:
        raise ValueError(f"{adapter_dir!r} has no base fingerprint to re-stamp")
    new = base_fingerprint(base)
    why = fingerprint_mismatch({**old, "config_sha256": new["config_sha256"]}, new)
    if why is not None:
        raise ValueError(f"{adapter_dir!r} was made for another base ({why}); not re-stamping")
    return write_fingerprint(adapter_dir, {**new, "restamped_from_config_sha256": old.get("config_sha256")})
